"""Data sets: the shared batch and split types (:mod:`.core`), one loader per data set, and the catalog by name."""

from .catalog import DATASETS, dataset_options, load_dataset
from .core import Batch, DataSet, DataSpec

__all__ = ["DATASETS", "dataset_options", "load_dataset", "Batch", "DataSet", "DataSpec"]
