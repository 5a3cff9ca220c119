"""Models of the VAE family and the label-conditioned models, each reporting every term of its objective.

Each model is one module with the ELBO of its derivation in the docstring, built on :class:`VariationalModel`
(:mod:`.base`). Calling a model on a :class:`Batch` returns an ordered mapping of batch-mean terms named as in its
derivation (``model.term_names``); ``objective`` is what training maximises and ``elbo`` the true bound beside it.

Data sets (:mod:`.datasets`): ``digits``, ``rotated_digits``, ``swiss_roll``, ``sprites``, ``dsprites`` (local
``.npz``) and ``mnist`` (local idx files). Training (:mod:`.trainer`): :func:`train` / :func:`resume`, with
checkpoints every epoch, CSV and JSONL logs (and any :class:`RunLogger`, :mod:`.loggers`), guards against NaN and
divergence, locked run directories (:mod:`.run_directory`), and the same code path on CPU and CUDA.
"""

from .base import VariationalModel
from .beta_tcvae import BetaTCVAE
from .beta_vae import BetaVAE
from .cdvae import CDVAE
from .condvae import CondVAE
from .condvae_info import CondVAEInfo
from .csvae import CSVAE
from .data.core import Batch, DataSet, DataSpec
from .data.catalog import DATASETS, load_dataset
from .diva import DIVA
from .errors import (CheckpointError, DivergenceError, NonFiniteTermError, RunDirectoryBusyError, RunDirectoryError,
                     RunDirectoryOccupiedError, RunDirectoryWriteError)
from .infovae import InfoVAE
from .loggers import RunInfo, RunLogger, TensorBoardLogger, metrics
from .registry import MODELS, build_model
from .trainer import TrainConfig, Trainer, TrainResult, resume, train
from .vae import VAE

__all__ = [
    "Batch",
    "BetaTCVAE",
    "BetaVAE",
    "CDVAE",
    "CSVAE",
    "CheckpointError",
    "CondVAE",
    "CondVAEInfo",
    "DATASETS",
    "DIVA",
    "DataSet",
    "DataSpec",
    "DivergenceError",
    "InfoVAE",
    "MODELS",
    "NonFiniteTermError",
    "RunDirectoryBusyError",
    "RunDirectoryError",
    "RunDirectoryOccupiedError",
    "RunDirectoryWriteError",
    "RunInfo",
    "RunLogger",
    "TensorBoardLogger",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "VAE",
    "VariationalModel",
    "build_model",
    "load_dataset",
    "metrics",
    "resume",
    "train",
]
