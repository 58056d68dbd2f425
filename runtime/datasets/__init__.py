"""Data sets for training: spike data held as flat arrays, generators and loaders, and the registry
that maps `.snn` names to them."""

from snnc.runtime.datasets.digits import digits
from snnc.runtime.datasets.npzdata import npz, save_npz
from snnc.runtime.datasets.registry import DATASETS, DatasetError, dataset_args, load_dataset
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.datasets.yinyang import encode_yinyang, yinyang, yinyang_points

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetError",
    "SpikeDataset",
    "dataset_args",
    "digits",
    "encode_yinyang",
    "load_dataset",
    "npz",
    "save_npz",
    "yinyang",
    "yinyang_points",
]
