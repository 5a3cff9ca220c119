"""Shared pieces of the disentanglement-metric tests: a ground-truth source whose observations are the factor values
themselves (so a representation is any function of the factors, and its score is known), the constructed
representations, and disentanglement_lib's formulas written out from its code (google-research/disentanglement_lib,
``evaluation/metrics/{dci,sap_score,modularity_explicitness,factor_vae,utils}.py``) to compare with on the same
inputs."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats
import sklearn.metrics
import torch


class FactorsAsObservations:
    """K uniform discrete factors; an observation is the vector of factor values, standardised to mean 0, var 1."""

    def __init__(self, sizes=(6, 8, 10)):
        self.factor_sizes = tuple(sizes)
        self.factor_names = tuple(f"f{k}" for k in range(len(sizes)))
        self.calls: list[int] = []  # batch sizes the representation saw (the memory bound)

    def sample_factors(self, num, rng):
        return np.stack([rng.integers(size, size=num) for size in self.factor_sizes], axis=1)

    def observations(self, factors, rng):
        sizes = np.asarray(self.factor_sizes, dtype=np.float64)
        standardised = (factors - (sizes - 1) / 2) / np.sqrt((sizes**2 - 1) / 12)  # uniform on 0..n-1
        return torch.as_tensor(standardised, dtype=torch.float32)


def identity(source):
    def represent(x):
        source.calls.append(x.shape[0])
        return x

    return represent


def permuted(order):
    return lambda x: x[:, list(order)]


def rotated(angle=math.pi / 4, pair=(0, 1)):
    """Codes: the factors with the two of ``pair`` rotated by ``angle`` into each other."""
    cos, sin = math.cos(angle), math.sin(angle)

    def represent(x):
        codes = x.clone()
        a, b = pair
        codes[:, a] = cos * x[:, a] + sin * x[:, b]
        codes[:, b] = -sin * x[:, a] + cos * x[:, b]
        return codes

    return represent


def noise(dim=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return lambda x: torch.randn(x.shape[0], dim, generator=generator)


# --- disentanglement_lib's formulas, as written there ------------------------------------------------------------
def dlib_disentanglement(importance_matrix):
    per_code = 1.0 - scipy.stats.entropy(importance_matrix.T + 1e-11, base=importance_matrix.shape[1])
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    code_importance = importance_matrix.sum(axis=1) / importance_matrix.sum()
    return np.sum(per_code * code_importance)


def dlib_completeness(importance_matrix):
    per_factor = 1.0 - scipy.stats.entropy(importance_matrix + 1e-11, base=importance_matrix.shape[0])
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    factor_importance = importance_matrix.sum(axis=0) / importance_matrix.sum()
    return np.sum(per_factor * factor_importance)


def dlib_sap_score_matrix(mus, ys, mus_test, ys_test, continuous_factors):
    """mus (D, N), ys (K, N), as disentanglement_lib lays them out."""
    from sklearn import svm

    num_latents, num_factors = mus.shape[0], ys.shape[0]
    score_matrix = np.zeros([num_latents, num_factors])
    for i in range(num_latents):
        for j in range(num_factors):
            mu_i, y_j = mus[i, :], ys[j, :]
            if continuous_factors:
                cov_mu_i_y_j = np.cov(mu_i, y_j, ddof=1)
                cov_mu_y = cov_mu_i_y_j[0, 1] ** 2
                var_mu, var_y = cov_mu_i_y_j[0, 0], cov_mu_i_y_j[1, 1]
                score_matrix[i, j] = cov_mu_y * 1.0 / (var_mu * var_y) if var_mu > 1e-12 else 0.0
            else:
                classifier = svm.LinearSVC(C=0.01, class_weight="balanced")
                classifier.fit(mu_i[:, np.newaxis], y_j)
                pred = classifier.predict(mus_test[i, :][:, np.newaxis])
                score_matrix[i, j] = np.mean(pred == ys_test[j, :])
    return score_matrix


def dlib_avg_diff_top_two(matrix):
    sorted_matrix = np.sort(matrix, axis=0)
    return np.mean(sorted_matrix[-1, :] - sorted_matrix[-2, :])


def dlib_histogram_discretize(target, num_bins=20):
    """target (D, N)."""
    discretized = np.zeros_like(target)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def dlib_discrete_mutual_info(mus, ys):
    m = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            m[i, j] = sklearn.metrics.mutual_info_score(ys[j, :], mus[i, :])
    return m


def dlib_modularity(mutual_information):
    squared_mi = np.square(mutual_information)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero row: 0/0, set to 0 below (as there)
        delta = numerator / denominator
    modularity_score = 1.0 - delta
    index = max_squared_mi == 0.0
    modularity_score[index] = 0.0
    return np.mean(modularity_score)


def dlib_factor_vae_accuracy(training_votes, eval_votes):
    classifier = np.argmax(training_votes, axis=0)
    other_index = np.arange(training_votes.shape[1])
    train_accuracy = np.sum(training_votes[classifier, other_index]) * 1.0 / np.sum(training_votes)
    eval_accuracy = np.sum(eval_votes[classifier, other_index]) * 1.0 / np.sum(eval_votes)
    return train_accuracy, eval_accuracy
