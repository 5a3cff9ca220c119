import math

import torch

from elbocheck.models.data.core import DataSpec
from elbocheck.models.likelihoods import (
    BernoulliLikelihood,
    CategoricalLikelihood,
    GaussianLikelihood,
    build_likelihood,
)


def test_bernoulli_log_prob_is_the_summed_binary_log_likelihood():
    likelihood = BernoulliLikelihood((1, 2, 2))
    logits = torch.randn(3, 1, 2, 2, 1)
    x = torch.randint(0, 2, (3, 1, 2, 2)).float()
    p = torch.sigmoid(logits.squeeze(-1))
    expected = (x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(1)
    torch.testing.assert_close(likelihood.log_prob(logits, x), expected, rtol=1e-5, atol=1e-5)


def test_gaussian_log_prob_uses_the_learned_scale():
    likelihood = GaussianLikelihood((3,), init_scale=0.5)
    torch.testing.assert_close(likelihood.scale, torch.full((3,), 0.5), rtol=1e-5, atol=1e-6)
    mean = torch.randn(4, 3, 1)
    x = torch.randn(4, 3)
    s = 0.5
    expected = (-0.5 * ((x - mean.squeeze(-1)) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)).sum(1)
    torch.testing.assert_close(likelihood.log_prob(mean, x), expected, rtol=1e-5, atol=1e-5)
    assert likelihood.raw_scale.requires_grad


def test_categorical_log_prob_picks_the_level_of_each_pixel():
    likelihood = CategoricalLikelihood((1, 2, 2), num_levels=5)
    logits = torch.randn(2, 1, 2, 2, 5)
    levels = torch.randint(0, 5, (2, 1, 2, 2))
    x = levels.float() / 4
    log_probs = logits.log_softmax(-1)
    expected = log_probs.gather(-1, levels.unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)
    torch.testing.assert_close(likelihood.log_prob(logits, x), expected)
    mean = likelihood.mean(logits)
    torch.testing.assert_close(mean, (logits.softmax(-1) * torch.arange(5) / 4).sum(-1))


def test_build_likelihood_follows_the_spec():
    assert isinstance(build_likelihood(DataSpec((1, 8, 8), "categorical", num_levels=17)), CategoricalLikelihood)
    assert build_likelihood(DataSpec((1, 8, 8), "categorical", num_levels=17)).outputs_per_element == 17
    assert isinstance(build_likelihood(DataSpec((3,), "gaussian")), GaussianLikelihood)
    assert isinstance(build_likelihood(DataSpec((1, 4, 4), "bernoulli")), BernoulliLikelihood)
