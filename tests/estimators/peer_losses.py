"""Reimplementations, written here for the audit tests, of minibatch beta-TCVAE loss terms as published by others
(the project does not depend on them), with their known bugs; and of a correct estimator written independently of
``elbocheck.estimators``.

* ``disvae_log_densities``: disentangling-vae, ``disvae/models/losses.py::_get_log_pz_qz_prodzi_qzCx`` with
  ``disvae/utils/math.py`` (``log_density_gaussian``, ``matrix_log_density_gaussian``,
  ``log_importance_weight_matrix``). Two bugs: the weight matrix is filled with stride M on the flattened M x M
  matrix, which sets columns 0 and 1 instead of the diagonal (issue #58), and the log weights are added to every
  latent dimension before the sum over dimensions, so that log q(z) carries D log W (issue #60); with
  ``is_mss=False`` no weights at all (log q(z) too high by log M against MWS, issue #60).
* ``pythae_terms``: pythae (clementchadebec/benchmark_VAE), ``BetaTCVAE.loss_function`` terms: MSS with the same
  columns-set matrix (weights added once), MWS normalised by 1/(M N) (log q(z) shifted by -log N).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal


# --- disentangling-vae -------------------------------------------------------------------------------------------
def _disvae_log_density_gaussian(x, mu, logvar):
    normalization = -0.5 * (math.log(2 * math.pi) + logvar)
    inv_var = torch.exp(-logvar)
    return normalization - 0.5 * ((x - mu) ** 2 * inv_var)


def _disvae_matrix_log_density_gaussian(x, mu, logvar):
    batch_size, dim = x.shape
    x = x.view(batch_size, 1, dim)
    mu = mu.view(1, batch_size, dim)
    logvar = logvar.view(1, batch_size, dim)
    return _disvae_log_density_gaussian(x, mu, logvar)


def _reference_log_importance_weight_matrix(batch_size, dataset_size):
    """rtqichen/beta-tcvae's matrix as copied by disentangling-vae and pythae (the stride M + 1 = batch size)."""
    n = dataset_size
    m = batch_size - 1
    strat_weight = (n - m) / (n * m)
    weights = torch.Tensor(batch_size, batch_size).fill_(1 / m)
    weights.view(-1)[:: m + 1] = 1 / n
    weights.view(-1)[1 :: m + 1] = strat_weight
    weights[m - 1, 0] = strat_weight
    return weights.log()


def disvae_log_densities(latent_sample, latent_dist, n_data, is_mss=True):
    batch_size = latent_sample.shape[0]
    log_q_zCx = _disvae_log_density_gaussian(latent_sample, *latent_dist).sum(dim=1)
    zeros = torch.zeros_like(latent_sample)
    log_pz = _disvae_log_density_gaussian(latent_sample, zeros, zeros).sum(1)
    mat_log_qz = _disvae_matrix_log_density_gaussian(latent_sample, *latent_dist)
    if is_mss:
        log_iw_mat = _reference_log_importance_weight_matrix(batch_size, n_data).to(latent_sample.device)
        mat_log_qz = mat_log_qz + log_iw_mat.view(batch_size, batch_size, 1)
    log_qz = torch.logsumexp(mat_log_qz.sum(2), dim=1, keepdim=False)
    log_prod_qzi = torch.logsumexp(mat_log_qz, dim=1, keepdim=False).sum(1)
    return log_pz, log_qz, log_prod_qzi, log_q_zCx


# --- pythae ------------------------------------------------------------------------------------------------------
def _pythae_log_gauss_density(z, mu, log_var):
    return -0.5 * (torch.log(torch.tensor([2 * math.pi])) + log_var + (z - mu) ** 2 * torch.exp(-log_var))


def pythae_terms(z, mu, log_var, dataset_size, use_mss=True):
    log_q_z_given_x = _pythae_log_gauss_density(z, mu, log_var).sum(dim=-1)
    log_prior = _pythae_log_gauss_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=-1)
    log_q_batch_perm = _pythae_log_gauss_density(z.reshape(z.shape[0], 1, -1), mu.reshape(1, z.shape[0], -1),
                                                 log_var.reshape(1, z.shape[0], -1))
    if use_mss:
        logiw_mat = _reference_log_importance_weight_matrix(z.shape[0], dataset_size)
        log_q_z = torch.logsumexp(logiw_mat + log_q_batch_perm.sum(dim=-1), dim=-1)
        log_prod_q_z = torch.logsumexp(logiw_mat.reshape(z.shape[0], z.shape[0], -1) + log_q_batch_perm,
                                       dim=1).sum(dim=-1)
    else:
        normaliser = torch.log(torch.tensor([z.shape[0] * dataset_size]))
        log_q_z = torch.logsumexp(log_q_batch_perm.sum(dim=-1), dim=-1) - normaliser
        log_prod_q_z = (torch.logsumexp(log_q_batch_perm, dim=1) - normaliser).sum(dim=-1)
    return {"mutual_info_loss": log_q_z_given_x - log_q_z, "TC_loss": log_q_z - log_prod_q_z,
            "dimension_wise_KL": log_prod_q_z - log_prior}


# --- correct, written independently ------------------------------------------------------------------------------
def stratified_log_densities(z, mean, log_var, dataset_size):
    """log q(z|x), log q^(z), sum_j log q^(z_j), log p(z) per example, with the unbiased stratified weights
    1/N (own) and (N - 1)/(N (M - 1)) (others), from torch.distributions."""
    batch_size = z.shape[0]
    std = torch.exp(0.5 * log_var)
    pairwise = Normal(mean.unsqueeze(0), std.unsqueeze(0)).log_prob(z.unsqueeze(1))  # (M, M, D): [i, k, j]
    weights = torch.full((batch_size, batch_size), (dataset_size - 1) / (dataset_size * (batch_size - 1)),
                         dtype=z.dtype)
    weights.fill_diagonal_(1.0 / dataset_size)
    log_weights = weights.log()
    log_qz = torch.logsumexp(pairwise.sum(-1) + log_weights, dim=1)
    log_prod_qzi = torch.logsumexp(pairwise + log_weights.unsqueeze(-1), dim=1).sum(-1)
    log_q_zCx = Normal(mean, std).log_prob(z).sum(-1)
    log_pz = Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(-1)
    return log_q_zCx, log_qz, log_prod_qzi, log_pz


def stratified_terms(z, mean, log_var, dataset_size):
    log_q_zCx, log_qz, log_prod_qzi, log_pz = stratified_log_densities(z, mean, log_var, dataset_size)
    return {"mutual_information": (log_q_zCx - log_qz).mean(), "total_correlation": (log_qz - log_prod_qzi).mean(),
            "dimensionwise_kl": (log_prod_qzi - log_pz).mean()}
