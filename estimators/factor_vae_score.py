"""The FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", ICML, Sec. 4).

Definition. Normalise each code dimension by its standard deviation over the data. One *vote*: choose a factor k
uniformly, draw ``batch_size`` factor vectors with factor k fixed to one common value and the others free, encode the
observations, and take the code dimension d with the smallest variance of the normalised codes,

    d = argmin_j  Var_batch(c_j) / Var_data(c_j)        over the active dimensions j,

which gives one training example (d -> k) for a majority-vote classifier: each code dimension predicts the factor
that voted for it most often on ``num_train`` votes. The score is the classifier's accuracy on ``num_eval`` fresh
votes. Dimensions whose standard deviation over the data is below ``prune_threshold`` (collapsed to the prior) are
left out (disentanglement_lib's ``prune_dims``, threshold 0.05 in its studies); with none left the score is 0.

A perfectly disentangled code (one dimension per factor, any order) scores 1; a code of K factors that ignores them
scores about 1/K; rotating two factors' dimensions by 45 degrees makes each of the two a coin flip.

Codes are posterior means (the representation disentanglement_lib evaluates). Defaults are disentanglement_lib's
(``unsupervised_study_v1``): 10,000 points for the variances, 10,000 training and 5,000 evaluation votes of batches
of 64. Memory: every encoding goes through :func:`.ground_truth.encode_factors` in chunks (disentanglement_lib #11).
The standard error is over ``repeats`` independent repetitions of the whole procedure.
"""

from __future__ import annotations

import numpy as np

from .ground_truth import (
    DEFAULT_CHUNK_SIZE,
    GroundTruthFactors,
    Representation,
    RepeatedScore,
    check_positive,
    encode_factors,
    factor_sizes_of,
    repeated,
)

__all__ = ["factor_vae_score", "factor_vae_votes", "majority_vote_accuracy"]


def majority_vote_accuracy(train_votes: np.ndarray, eval_votes: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(train accuracy, eval accuracy, classifier) of the majority-vote classifier: ``votes[k, d]`` counts the votes
    of factor k for code dimension d; each dimension predicts ``argmax_k train_votes[k, d]``."""
    train_votes, eval_votes = np.asarray(train_votes), np.asarray(eval_votes)
    if train_votes.ndim != 2 or train_votes.shape != eval_votes.shape:
        raise ValueError(f"the vote matrices must have one shape (factors, dimensions); got {train_votes.shape} "
                         f"and {eval_votes.shape}")
    classifier = np.argmax(train_votes, axis=0)
    columns = np.arange(train_votes.shape[1])
    train = float(train_votes[classifier, columns].sum() / max(train_votes.sum(), 1))
    evaluation = float(eval_votes[classifier, columns].sum() / max(eval_votes.sum(), 1))
    return train, evaluation, classifier


def factor_vae_votes(source: GroundTruthFactors, representation: Representation, num_votes: int, batch_size: int,
                     global_std: np.ndarray, active: np.ndarray, rng: np.random.Generator, *,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """``num_votes`` votes, counted in a (K, D) matrix; several votes' batches share one chunked encoding."""
    sizes = factor_sizes_of(source)
    active_index = np.flatnonzero(active)
    votes = np.zeros((len(sizes), len(global_std)), dtype=np.int64)
    per_call = max(1, chunk_size // batch_size)
    done = 0
    while done < num_votes:
        count = min(per_call, num_votes - done)
        fixed = rng.integers(len(sizes), size=count)
        factors = np.stack([_batch_with_fixed_factor(source, batch_size, int(k), rng) for k in fixed])
        codes = encode_factors(source, representation, factors.reshape(count * batch_size, -1), rng,
                               chunk_size=chunk_size).reshape(count, batch_size, -1)
        local_variance = codes[:, :, active_index].var(axis=1, ddof=1) / global_std[active_index] ** 2
        chosen = active_index[np.argmin(local_variance, axis=1)]
        np.add.at(votes, (fixed, chosen), 1)
        done += count
    return votes


def _batch_with_fixed_factor(source: GroundTruthFactors, batch_size: int, factor: int, rng: np.random.Generator
                             ) -> np.ndarray:
    """Factor values (batch_size, K) with ``factor`` fixed to one common value and the others drawn freely: by the
    source's own ``sample_factors_fixing`` where it has one (a finite table, where not every combination exists),
    else by overwriting the column with its first value (a source that renders any combination)."""
    sample_fixing = getattr(source, "sample_factors_fixing", None)
    if sample_fixing is not None:
        return np.asarray(sample_fixing(batch_size, factor, rng), dtype=np.int64)
    factors = np.asarray(source.sample_factors(batch_size, rng), dtype=np.int64)
    factors[:, factor] = factors[0, factor]
    return factors


def factor_vae_score(
    source: GroundTruthFactors,
    representation: Representation,
    *,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    batch_size: int = 64,
    prune_threshold: float = 0.05,
    repeats: int = 1,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> dict[str, RepeatedScore]:
    """The FactorVAE score (``"factor_vae_score"``, the evaluation accuracy), with ``"train_accuracy"`` and
    ``"num_active_dims"``, each over ``repeats`` repetitions. ``details``: the first repetition's vote matrices
    (``train_votes``, ``eval_votes``, (K, D)), ``global_std`` and ``active`` dimensions."""
    for name, value, minimum in (("num_train", num_train, 1), ("num_eval", num_eval, 1),
                                 ("num_variance_estimate", num_variance_estimate, 2), ("batch_size", batch_size, 2)):
        check_positive(value, name, minimum)
    if not prune_threshold >= 0:
        raise ValueError(f"argument 'prune_threshold' must be >= 0; got {prune_threshold}")
    factor_sizes_of(source)

    def once(rng: np.random.Generator):
        factors = np.asarray(source.sample_factors(num_variance_estimate, rng), dtype=np.int64)
        codes = encode_factors(source, representation, factors, rng, chunk_size=chunk_size)
        global_std = codes.std(axis=0, ddof=1)
        active = global_std >= prune_threshold
        if not active.any():
            return {"factor_vae_score": 0.0, "train_accuracy": 0.0, "num_active_dims": 0}, {
                "global_std": global_std, "active": active}
        train_votes = factor_vae_votes(source, representation, num_train, batch_size, global_std, active, rng,
                                       chunk_size=chunk_size)
        eval_votes = factor_vae_votes(source, representation, num_eval, batch_size, global_std, active, rng,
                                      chunk_size=chunk_size)
        train, evaluation, _ = majority_vote_accuracy(train_votes, eval_votes)
        return ({"factor_vae_score": evaluation, "train_accuracy": train, "num_active_dims": int(active.sum())},
                {"train_votes": train_votes, "eval_votes": eval_votes, "global_std": global_std, "active": active})

    return repeated("factor_vae_score", once, repeats, seed)
