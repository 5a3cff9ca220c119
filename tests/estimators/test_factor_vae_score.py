import math

import numpy as np
import pytest

from elbocheck.estimators.factor_vae_score import factor_vae_score, majority_vote_accuracy
from metric_testing import FactorsAsObservations, dlib_factor_vae_accuracy, identity, noise, permuted, rotated

SMALL = {"num_train": 300, "num_eval": 300, "num_variance_estimate": 1000, "batch_size": 32}


def _tolerance(score, num_eval, repeats):
    """5 standard errors: the larger of the spread over repeats and the binomial error of the mean accuracy."""
    p = score.value
    binomial = math.sqrt(max(p * (1 - p), 1e-12) / (num_eval * repeats))
    return 5 * max(score.standard_error, binomial)


def test_one_dimension_per_factor_scores_one_in_any_order():
    source = FactorsAsObservations()
    for representation in (identity(source), permuted((2, 0, 1))):
        scores = factor_vae_score(source, representation, **SMALL, repeats=2)
        assert scores["factor_vae_score"].value == 1.0 and scores["factor_vae_score"].per_repeat == (1.0, 1.0)
        assert scores["num_active_dims"].value == 3


def test_two_factors_rotated_into_each_other_score_two_thirds():
    # fixing factor 0 or 1 lowers both rotated dimensions' variances alike: their votes are a coin flip, and the
    # majority vote gets, in expectation, 1/3 (factor 2) + 1/3 (one of factors 0, 1 through either dimension)
    source = FactorsAsObservations()
    score = factor_vae_score(source, rotated(), **SMALL, repeats=4, seed=1)["factor_vae_score"]
    assert abs(score.value - 2 / 3) < _tolerance(score, SMALL["num_eval"], 4)


def test_noise_scores_one_over_the_number_of_factors():
    source = FactorsAsObservations()
    score = factor_vae_score(source, noise(dim=4), **SMALL, repeats=4, seed=2)["factor_vae_score"]
    assert abs(score.value - 1 / 3) < _tolerance(score, SMALL["num_eval"], 4)


def test_collapsed_dimensions_are_pruned_and_a_fully_collapsed_code_scores_zero():
    source = FactorsAsObservations()

    def with_collapsed(x):  # the three factors, then two dimensions with standard deviation 0.01 < 0.05
        return np.concatenate([x.numpy(), 0.01 * np.ones((x.shape[0], 2))], axis=1)

    import torch

    scores = factor_vae_score(source, lambda x: torch.as_tensor(with_collapsed(x)), **SMALL)
    assert scores["num_active_dims"].value == 3 and scores["factor_vae_score"].value == 1.0
    votes = scores["factor_vae_score"].details["train_votes"]
    assert votes[:, 3:].sum() == 0  # pruned dimensions never get a vote
    collapsed = factor_vae_score(source, lambda x: 0.001 * x, **SMALL)
    assert collapsed["factor_vae_score"].value == 0.0 and collapsed["num_active_dims"].value == 0


def test_encoding_is_chunked_whatever_the_number_of_points():
    # disentanglement_lib #11: its variance estimate encoded 10,000 images in one call
    source = FactorsAsObservations()
    representation = identity(source)
    factor_vae_score(source, representation, num_train=20, num_eval=20, num_variance_estimate=10000, batch_size=64,
                     chunk_size=256)
    assert max(source.calls) <= 256
    assert sum(source.calls) == 10000 + 40 * 64


def test_the_majority_vote_matches_disentanglement_libs_formula():
    rng = np.random.default_rng(0)
    for _ in range(20):
        train_votes = rng.integers(0, 30, size=(4, 6))
        eval_votes = rng.integers(0, 30, size=(4, 6))
        train, evaluation, _ = majority_vote_accuracy(train_votes, eval_votes)
        assert (train, evaluation) == pytest.approx(dlib_factor_vae_accuracy(train_votes, eval_votes))


@pytest.mark.parametrize(("arguments", "message"), [
    ({"num_train": 0}, "argument 'num_train' must be an int of at least 1"),
    ({"batch_size": 1}, "argument 'batch_size' must be an int of at least 2"),
    ({"prune_threshold": -1.0}, "argument 'prune_threshold' must be >= 0"),
    ({"repeats": 0}, "argument 'repeats' must be a positive int"),
    ({"chunk_size": 0}, "argument 'chunk_size' must be a positive int"),
])
def test_bad_arguments_are_named(arguments, message):
    source = FactorsAsObservations()
    with pytest.raises(ValueError, match=message):
        factor_vae_score(source, identity(source), **{**SMALL, **arguments})


def test_a_representation_of_the_wrong_shape_is_named():
    source = FactorsAsObservations()
    with pytest.raises(ValueError, match="argument 'representation' must map a batch of"):
        factor_vae_score(source, lambda x: x[:, 0], **SMALL)
