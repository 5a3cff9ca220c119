"""The mutual information gap (:mod:`.mig`, Chen et al. 2018) on draws from a ground-truth source, with its standard
error over repeats, like the other disentanglement metrics (:mod:`.ground_truth`).

MIG needs the posteriors, not only their means (its I(z_j; v_k) integrates over posterior samples): the
representation here maps observations to ``(mean, log_var)``, each (B, D). Factors that take a single value among
the drawn points are left out (their entropy is 0).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .ground_truth import DEFAULT_CHUNK_SIZE, GroundTruthFactors, RepeatedScore, check_positive, repeated
from .mig import mutual_information_gap

__all__ = ["mig_score"]


def mig_score(source: GroundTruthFactors, posterior_parameters: Callable[[Tensor], tuple[Tensor, Tensor]], *,
              num_points: int = 10000, repeats: int = 1, seed: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE
              ) -> dict[str, RepeatedScore]:
    """MIG (``"mig"``) of ``num_points`` fresh draws per repeat; ``details``: the first repeat's gap per factor."""
    check_positive(num_points, "num_points", 2)
    check_positive(chunk_size, "chunk_size")

    def once(rng: np.random.Generator):
        factors = np.asarray(source.sample_factors(num_points, rng), dtype=np.int64)
        means, log_vars = [], []
        with torch.no_grad():
            for start in range(0, num_points, chunk_size):
                mean, log_var = posterior_parameters(source.observations(factors[start : start + chunk_size], rng))
                means.append(mean.detach().double().cpu())
                log_vars.append(log_var.detach().double().cpu())
        varying = [k for k in range(factors.shape[1]) if len(np.unique(factors[:, k])) > 1]
        result = mutual_information_gap(torch.cat(means), torch.cat(log_vars), torch.as_tensor(factors[:, varying]),
                                        generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
        return {"mig": float(result.mig)}, {"gap_per_factor": result.gap_per_factor.numpy(), "factors": varying}

    return repeated("mig", once, repeats, seed)
