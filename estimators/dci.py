"""Disentanglement, completeness and informativeness (DCI; Eastwood & Williams 2018, "A Framework for the Quantitative
Evaluation of Disentangled Representations", ICLR).

For each of the K factors v_j, a predictor from the D code dimensions c_i is fitted; its importance weights form the
(D, K) matrix R (R_ij: how much c_i matters for predicting v_j). With P_ij = R_ij / sum_k R_ik,

    disentanglement  D = sum_i rho_i (1 - H_K(P_i.)),   rho_i = sum_j R_ij / sum_ij R_ij,
    completeness     C = sum_j rho~_j (1 - H_D(P~_.j)), P~_ij = R_ij / sum_i R_ij,  rho~_j = sum_i R_ij / sum_ij R_ij,

with H_K the entropy in base K (so each term lies in [0, 1]); informativeness is the predictors' error on held-out
points. (The paper averages completeness over factors without weights; the factor-importance weighting is
disentanglement_lib's, used here so that the two implementations agree; ``completeness_unweighted`` is the plain mean.)

Predictors (``regressor``):

* ``"gradient_boosting"`` (default): scikit-learn's GradientBoostingClassifier on each factor's discrete values,
  importances from its impurity decrease; informativeness = held-out accuracy (higher is better). This is
  disentanglement_lib's choice, so scores compare with its published ones.
* ``"lasso"``: the paper's linear predictor, Lasso (alpha 0.02) on standardised codes and factors, importance
  |weight|; informativeness = held-out normalised RMSE (RMSE / standard deviation; lower is better).
* ``"random_forest"``: the paper's non-linear predictor, a random forest regressor (100 trees) on standardised
  codes and factors, impurity importances; informativeness = held-out normalised RMSE.

A code with one dimension per factor scores D = C = 1; mixing two factors equally into two dimensions (a 45 degree
rotation) gives those dimensions 1 - log 2 / log K. Codes are posterior means, as in disentanglement_lib (10,000
training and 5,000 test points there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

__all__ = ["DCIResult", "REGRESSORS", "dci", "dci_from_importance", "dci_score", "importance_matrix"]

REGRESSORS = ("gradient_boosting", "lasso", "random_forest")
LASSO_ALPHA = 0.02
FOREST_TREES = 100


@dataclass(frozen=True)
class DCIResult:
    disentanglement: float
    completeness: float
    completeness_unweighted: float
    informativeness_train: float
    informativeness_test: float
    informativeness_kind: str  # "accuracy" (higher is better) or "nrmse" (lower is better)
    importance: np.ndarray  # (D, K)
    disentanglement_per_code: np.ndarray  # (D,)
    completeness_per_factor: np.ndarray  # (K,)


def _entropy(probabilities: np.ndarray, base: int, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    return -terms.sum(axis=axis) / math.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """(D, C, C unweighted, D per code, C per factor) from an importance matrix (D codes, K factors), entries >= 0.

    A code (factor) with zero total importance has weight 0 and is given a per-code (per-factor) score of 0."""
    importance = np.asarray(importance, dtype=np.float64)
    if importance.ndim != 2 or importance.shape[0] < 2 or importance.shape[1] < 2:
        raise ValueError(f"argument 'importance' must have shape (D, K) with D, K >= 2 (entropies in base D and K); "
                         f"got {importance.shape}")
    if not np.isfinite(importance).all() or (importance < 0).any():
        raise ValueError("argument 'importance' must hold finite, non-negative importances")
    total = importance.sum()
    if total == 0:
        return 0.0, 0.0, 0.0, np.zeros(importance.shape[0]), np.zeros(importance.shape[1])
    codes, factors = importance.shape
    row_sums, column_sums = importance.sum(1), importance.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = np.where(row_sums > 0, 1.0 - _entropy(importance / row_sums[:, None], factors, axis=1), 0.0)
        per_factor = np.where(column_sums > 0, 1.0 - _entropy(importance / column_sums[None, :], codes, axis=0), 0.0)
    disentanglement = float((per_code * row_sums / total).sum())
    completeness = float((per_factor * column_sums / total).sum())
    return disentanglement, completeness, float(per_factor.mean()), per_code, per_factor


def importance_matrix(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
                      factors_test: np.ndarray, *, regressor: str = "gradient_boosting", seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(R (D, K), informativeness on the training points (K,), on the test points (K,), kind) for one predictor
    per factor (see the module docstring)."""
    if regressor not in REGRESSORS:
        raise ValueError(f"argument 'regressor' must be one of {list(REGRESSORS)}; got {regressor!r}")
    codes_train, factors_train = check_codes_and_factors(codes_train, factors_train, "codes_train", "factors_train")
    codes_test, factors_test = check_codes_and_factors(codes_test, factors_test, "codes_test", "factors_test")
    if codes_test.shape[1] != codes_train.shape[1] or factors_test.shape[1] != factors_train.shape[1]:
        raise ValueError("the test codes and factors must have the columns of the training ones")
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    importance = np.zeros((num_codes, num_factors))
    train_scores, test_scores = np.zeros(num_factors), np.zeros(num_factors)
    code_mean, code_std = codes_train.mean(0), codes_train.std(0)
    code_std = np.where(code_std > 0, code_std, 1.0)
    x_train, x_test = (codes_train - code_mean) / code_std, (codes_test - code_mean) / code_std
    for j in range(num_factors):
        if regressor == "gradient_boosting":
            from sklearn.ensemble import GradientBoostingClassifier

            model = GradientBoostingClassifier(random_state=seed).fit(codes_train, factors_train[:, j])
            importance[:, j] = np.abs(model.feature_importances_)
            train_scores[j] = np.mean(model.predict(codes_train) == factors_train[:, j])
            test_scores[j] = np.mean(model.predict(codes_test) == factors_test[:, j])
            continue
        target_mean, target_std = factors_train[:, j].mean(), factors_train[:, j].std()
        target_std = target_std if target_std > 0 else 1.0
        y_train = (factors_train[:, j] - target_mean) / target_std
        y_test = (factors_test[:, j] - target_mean) / target_std
        if regressor == "lasso":
            from sklearn.linear_model import Lasso

            model = Lasso(alpha=LASSO_ALPHA, random_state=seed).fit(x_train, y_train)
            importance[:, j] = np.abs(model.coef_)
        else:
            from sklearn.ensemble import RandomForestRegressor

            model = RandomForestRegressor(n_estimators=FOREST_TREES, random_state=seed, n_jobs=1).fit(x_train, y_train)
            importance[:, j] = model.feature_importances_
        train_scores[j] = _normalised_rmse(model.predict(x_train), y_train)
        test_scores[j] = _normalised_rmse(model.predict(x_test), y_test)
    kind = "accuracy" if regressor == "gradient_boosting" else "nrmse"
    return importance, train_scores, test_scores, kind


def _normalised_rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    spread = target.std()
    return float(np.sqrt(np.mean((predicted - target) ** 2)) / (spread if spread > 0 else 1.0))


def dci(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray, *,
        regressor: str = "gradient_boosting", seed: int = 0) -> DCIResult:
    """DCI of codes (N, D) with respect to discrete factors (N, K), fitted on the training points."""
    importance, train, test, kind = importance_matrix(codes_train, factors_train, codes_test, factors_test,
                                                      regressor=regressor, seed=seed)
    disentanglement, completeness, unweighted, per_code, per_factor = dci_from_importance(importance)
    return DCIResult(disentanglement, completeness, unweighted, float(train.mean()), float(test.mean()), kind,
                     importance, per_code, per_factor)


def dci_score(source: GroundTruthFactors, representation: Representation, *, num_train: int = 10000,
              num_test: int = 5000, regressor: str = "gradient_boosting", repeats: int = 1, seed: int = 0,
              chunk_size: int = DEFAULT_CHUNK_SIZE, test_source: GroundTruthFactors | None = None
              ) -> dict[str, RepeatedScore]:
    """DCI on fresh draws from a ground-truth source (the test points from ``test_source`` when given, e.g. held-out
    examples of a finite data set): ``"disentanglement"``, ``"completeness"`` and ``"informativeness"`` (held-out;
    accuracy or normalised RMSE by ``regressor``), over ``repeats``."""
    check_positive(num_train, "num_train", 2)
    check_positive(num_test, "num_test", 2)
    if regressor not in REGRESSORS:
        raise ValueError(f"argument 'regressor' must be one of {list(REGRESSORS)}; got {regressor!r}")

    def once(rng: np.random.Generator):
        codes_train, factors_train = sample_codes(source, representation, num_train, rng, chunk_size=chunk_size)
        codes_test, factors_test = sample_codes(test_source or source, representation, num_test, rng,
                                                chunk_size=chunk_size)
        result = dci(codes_train, factors_train, codes_test, factors_test, regressor=regressor,
                     seed=int(rng.integers(2**31)))
        return ({"disentanglement": result.disentanglement, "completeness": result.completeness,
                 "informativeness": result.informativeness_test},
                {"importance": result.importance, "informativeness_kind": result.informativeness_kind})

    return repeated("dci", once, repeats, seed)
