"""elbocheck: checked ELBO derivations, verified estimators, and VAE models that report every term.

The derivation engine lives in :mod:`elbocheck.derivations`, the estimators in :mod:`elbocheck.estimators`, the
models in :mod:`elbocheck.models`; this package holds the command line and shared plumbing.
"""

__version__ = "0.1.0"
