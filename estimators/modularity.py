"""Modularity (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the F-Statistic Loss", NeurIPS,
Sec. 3).

With m_if the mutual information between code dimension i and factor f, theta_i = max_f m_if, and the ideal template
t_if = theta_i for the factor attaining the maximum and 0 for the others,

    delta_i = sum_f (m_if - t_if)^2 / (theta_i^2 (K - 1)),     modularity = (1/D) sum_i (1 - delta_i),

so a dimension that carries information about one factor only scores 1, one that carries equal information about
all K factors scores 0 (and a dimension with no information at all is given 0, as in disentanglement_lib).

m_if is estimated, as in disentanglement_lib, by the plug-in mutual information of the factor's values and the code
dimension discretised into ``num_bins`` equal-width bins over its range (20 there); the plug-in estimate is biased
upward by about (bins - 1)(values - 1) / (2 N) nats, so independent dimensions do not show exactly 0. Codes are
posterior means (10,000 points there).
"""

from __future__ import annotations

import numpy as np

from .ground_truth import (
    DEFAULT_CHUNK_SIZE,
    GroundTruthFactors,
    Representation,
    RepeatedScore,
    check_codes_and_factors,
    check_positive,
    repeated,
    sample_codes,
)

__all__ = ["discrete_mutual_information", "histogram_discretize", "modularity", "modularity_from_mutual_information",
           "modularity_score"]


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column of ``codes`` (N, D) mapped to the index (1..num_bins) of its equal-width bin over its range."""
    check_positive(num_bins, "num_bins", 2)
    codes = np.asarray(codes, dtype=np.float64)
    discrete = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1]
        discrete[:, i] = np.digitize(codes[:, i], edges[:-1])
    return discrete


def discrete_mutual_information(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats), (D, K), between each discrete code column and each factor column."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(factors[:, f], discrete_codes[:, i]) for f in range(factors.shape[1])]
                     for i in range(discrete_codes.shape[1])])


def modularity_from_mutual_information(mutual_information: np.ndarray) -> tuple[float, np.ndarray]:
    """(modularity, per-dimension 1 - delta_i) from the (D, K) mutual-information matrix, K >= 2."""
    mutual_information = np.asarray(mutual_information, dtype=np.float64)
    if mutual_information.ndim != 2 or mutual_information.shape[1] < 2:
        raise ValueError("argument 'mutual_information' must have shape (D, K) with K >= 2 factors; got "
                         f"{mutual_information.shape}")
    squared = mutual_information**2
    largest = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - largest) / (largest * (squared.shape[1] - 1))
    per_code = np.where(largest > 0, 1.0 - delta, 0.0)
    return float(per_code.mean()), per_code


def modularity(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> float:
    codes, factors = check_codes_and_factors(codes, factors)
    information = discrete_mutual_information(histogram_discretize(codes, num_bins), factors)
    return modularity_from_mutual_information(information)[0]


def modularity_score(source: GroundTruthFactors, representation: Representation, *, num_train: int = 10000,
                     num_bins: int = 20, repeats: int = 1, seed: int = 0,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, RepeatedScore]:
    """Modularity (``"modularity"``) on fresh draws from a ground-truth source, over ``repeats``; ``details``: the
    mutual-information matrix of the first repetition."""
    check_positive(num_train, "num_train", 2)
    check_positive(num_bins, "num_bins", 2)

    def once(rng: np.random.Generator):
        codes, factors = sample_codes(source, representation, num_train, rng, chunk_size=chunk_size)
        information = discrete_mutual_information(histogram_discretize(codes, num_bins), factors)
        return {"modularity": modularity_from_mutual_information(information)[0]}, {
            "mutual_information": information}

    return repeated("modularity", once, repeats, seed)
