"""Verified estimators for VAE objectives (installed as ``elbocheck.estimators``).

Every estimator is tested against a closed form, a numeric integral or an exact enumeration (``tests/estimators``).

* :mod:`.kl` -- analytic KL (torch's registry plus the Independent(Normal)/MultivariateNormal pairs), Monte-Carlo KL
  with a standard error, "analytic if registered, else sampled".
* :mod:`.bounds` -- ELBO (single/multi-sample, sampled or analytic KL), IWAE-K, importance-sampled log p(x).
* :mod:`.decomposition`, :mod:`.exact_decomposition`, :mod:`.minibatch_decomposition` -- mutual information, total
  correlation and dimension-wise KL: exact over a data set, minibatch weighted (MWS) and stratified (MSS) sampling,
  MSS with a jackknife bias correction; bias estimates, warnings and intervals.
* :mod:`.minibatch_mixture` -- the fused minibatch mixture log densities with a hand-written backward pass.
* :mod:`.aggregate_posterior` -- the exact aggregate-posterior log density, chunked.
* :mod:`.label_information` -- plug-in I(latent; y) and the probe accuracy with a Wilson interval.
* :mod:`.mig` -- the mutual information gap.
* :mod:`.testbeds` -- the linear-Gaussian model with exact log p(x) and posterior; Gaussian encoder outputs.
"""

from .aggregate_posterior import AggregatePosteriorLogDensity, aggregate_posterior_log_density
from .base import MonteCarloEstimate, diagonal_normal_log_density
from .bounds import ELBOEstimate, elbo, iwae_bound, log_importance_weights, log_marginal_likelihood
from .decomposition import KLDecomposition
from .exact_decomposition import exact_kl_decomposition
from .kl import analytic_kl, kl_analytic_or_sampled, monte_carlo_kl
from .label_information import LabelInformation, ProbeResult, label_mutual_information, probe_accuracy, wilson_interval
from .mig import MIGResult, mutual_information_gap
from .minibatch_decomposition import (
    MinibatchKLTerms,
    log_importance_weight_matrix,
    minibatch_kl_terms,
    minibatch_stratified_sampling,
    minibatch_weighted_sampling,
)
from .testbeds import LinearGaussianModel, gaussian_posteriors

__all__ = [
    "AggregatePosteriorLogDensity",
    "ELBOEstimate",
    "KLDecomposition",
    "LabelInformation",
    "LinearGaussianModel",
    "MIGResult",
    "MinibatchKLTerms",
    "MonteCarloEstimate",
    "ProbeResult",
    "aggregate_posterior_log_density",
    "analytic_kl",
    "diagonal_normal_log_density",
    "elbo",
    "exact_kl_decomposition",
    "gaussian_posteriors",
    "iwae_bound",
    "kl_analytic_or_sampled",
    "label_mutual_information",
    "log_importance_weight_matrix",
    "log_importance_weights",
    "log_marginal_likelihood",
    "minibatch_kl_terms",
    "minibatch_stratified_sampling",
    "minibatch_weighted_sampling",
    "monte_carlo_kl",
    "mutual_information_gap",
    "probe_accuracy",
    "wilson_interval",
]
