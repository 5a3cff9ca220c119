"""The separated attribute predictability score (SAP; Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", ICLR, Sec. 3).

A (D, K) score matrix S: S_ij is how well factor j is predicted from code dimension i *alone* -- for continuous
factors the R^2 of a linear regression (the squared correlation cov(c_i, v_j)^2 / (var c_i var v_j)), for discrete
factors the held-out accuracy of a classifier on that one dimension. SAP is the mean over factors of the gap between
the two largest entries of the factor's column: high when each factor is predicted by one dimension much better than
by any other.

Discrete factors: a linear SVM per (dimension, factor), C = 0.01 with class-balanced weights (disentanglement_lib's
choice), scored by balanced accuracy as the paper says (``accuracy="balanced"``, default) or by plain accuracy as
disentanglement_lib does (``accuracy="plain"``). For a code independent of a factor with n values the accuracy is
near chance (1/n for balanced accuracy), not 0, so discrete SAP stays below 1 even for a perfect code; the
continuous form gives 1 for one dimension per factor and 0 when two factors are mixed equally. Codes are posterior
means (disentanglement_lib: 10,000 training and 5,000 test points, discrete factors).
"""

from __future__ import annotations

import warnings

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

__all__ = ["sap", "sap_from_score_matrix", "sap_score", "sap_score_matrix"]

ACCURACIES = ("balanced", "plain")


def sap_score_matrix(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray | None = None,
                     factors_test: np.ndarray | None = None, *, continuous: bool = False,
                     accuracy: str = "balanced") -> np.ndarray:
    """S (D, K): squared correlations on the training points (``continuous``), or held-out accuracies of one-
    dimensional linear SVMs (discrete; the test points are then required)."""
    codes_train, factors_train = check_codes_and_factors(codes_train, factors_train, "codes_train", "factors_train")
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    scores = np.zeros((num_codes, num_factors))
    if continuous:
        for i in range(num_codes):
            for j in range(num_factors):
                covariance = np.cov(codes_train[:, i], factors_train[:, j], ddof=1)
                variance_code, variance_factor = covariance[0, 0], covariance[1, 1]
                if variance_code > 1e-12 and variance_factor > 0:
                    scores[i, j] = covariance[0, 1] ** 2 / (variance_code * variance_factor)
        return scores
    if accuracy not in ACCURACIES:
        raise ValueError(f"argument 'accuracy' must be one of {list(ACCURACIES)}; got {accuracy!r}")
    if codes_test is None or factors_test is None:
        raise ValueError("arguments 'codes_test' and 'factors_test' are needed for discrete factors (held-out accuracy)")
    codes_test, factors_test = check_codes_and_factors(codes_test, factors_test, "codes_test", "factors_test")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.svm import LinearSVC

    for i in range(num_codes):
        for j in range(num_factors):
            if len(np.unique(factors_train[:, j])) < 2:
                continue  # a constant factor is predicted by nothing
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                classifier = LinearSVC(C=0.01, class_weight="balanced").fit(codes_train[:, i : i + 1],
                                                                            factors_train[:, j])
            predicted = classifier.predict(codes_test[:, i : i + 1])
            if accuracy == "balanced":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # classes absent from the test points
                    scores[i, j] = balanced_accuracy_score(factors_test[:, j], predicted)
            else:
                scores[i, j] = np.mean(predicted == factors_test[:, j])
    return scores


def sap_from_score_matrix(scores: np.ndarray) -> float:
    """Mean over factors (columns) of the largest minus the second largest score."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 2:
        raise ValueError(f"argument 'scores' must have shape (D, K) with D >= 2 code dimensions; got {scores.shape}")
    ordered = np.sort(scores, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def sap(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray | None = None,
        factors_test: np.ndarray | None = None, *, continuous: bool = False, accuracy: str = "balanced") -> float:
    return sap_from_score_matrix(sap_score_matrix(codes_train, factors_train, codes_test, factors_test,
                                                  continuous=continuous, accuracy=accuracy))


def sap_score(source: GroundTruthFactors, representation: Representation, *, num_train: int = 10000,
              num_test: int = 5000, continuous: bool = False, accuracy: str = "balanced", repeats: int = 1,
              seed: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE, test_source: GroundTruthFactors | None = None
              ) -> dict[str, RepeatedScore]:
    """SAP (``"sap"``) on fresh draws from a ground-truth source (the test points from ``test_source`` when given,
    e.g. held-out examples of a finite data set), over ``repeats``; ``details``: the score matrix of the first
    repetition."""
    check_positive(num_train, "num_train", 2)
    check_positive(num_test, "num_test", 2)

    def once(rng: np.random.Generator):
        codes_train, factors_train = sample_codes(source, representation, num_train, rng, chunk_size=chunk_size)
        codes_test, factors_test = sample_codes(test_source or source, representation, num_test, rng,
                                                chunk_size=chunk_size)
        scores = sap_score_matrix(codes_train, factors_train, codes_test, factors_test, continuous=continuous,
                                  accuracy=accuracy)
        return {"sap": sap_from_score_matrix(scores)}, {"score_matrix": scores}

    return repeated("sap", once, repeats, seed)
