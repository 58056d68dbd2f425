"""Maps the names used in `.snn` training blocks (`data = yinyang(train = 5000)`) to loaders.

Each entry names its loader and the keyword arguments it accepts, so that a misspelt data set or
argument becomes a diagnostic with a 'did you mean' hint rather than a Python TypeError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from snnc.ir.diagnostics import Span
from snnc.runtime.datasets.analog import analog
from snnc.runtime.datasets.digits import digits
from snnc.runtime.datasets.evidence import evidence
from snnc.runtime.datasets.npzdata import npz
from snnc.runtime.datasets.pattern import sine_pattern
from snnc.runtime.datasets.shd import shd, ssc
from snnc.runtime.datasets.spikes import Dataset
from snnc.runtime.datasets.yinyang import yinyang
from snnc.runtime.errors import RuntimeConfigError, check_args, unknown_name


class DatasetError(RuntimeConfigError):
    """A data set could not be built from the training block's `data = …` (a ValueError too)."""


DATASETS: dict[str, Callable[..., Dataset]] = {
    "yinyang": yinyang,
    "digits": digits,
    "evidence": evidence,
    "npz": npz,
    "analog": analog,
    "shd": shd,
    "ssc": ssc,
    "sine_pattern": sine_pattern,
}
#: loaders whose relative paths are resolved against the `.snn` file's folder
_TAKES_BASE_DIR = {"npz", "analog", "shd", "ssc"}
#: loaders that also look in `--data-dir`
_TAKES_DATA_DIR = {"shd", "ssc"}


def dataset_args(name: str) -> tuple[str, ...]:
    """The keyword arguments data set `name` accepts (what `.snn` files may write)."""
    params = inspect.signature(DATASETS[name]).parameters
    return tuple(p for p in params if p not in ("base_dir", "data_dir"))


def load_dataset(
    name: str,
    args: Mapping[str, Any] | None = None,
    span: Span | None = None,
    base_dir: str | None = None,
    data_dir: str | None = None,
) -> Dataset:
    """Build data set `name` with `args`; every user mistake is a `DatasetError` diagnostic."""
    if name not in DATASETS:
        e = unknown_name("dataset", name, DATASETS, span)
        raise DatasetError(e.code, str(e), e.hint, span)
    args = dict(args or {})
    try:
        check_args("dataset", name, args, dataset_args(name), span)
    except RuntimeConfigError as e:
        raise DatasetError(e.code, str(e), e.hint, span) from None
    if name in _TAKES_BASE_DIR and base_dir is not None:
        args["base_dir"] = base_dir
    if name in _TAKES_DATA_DIR and data_dir is not None:
        args["data_dir"] = data_dir
    try:
        return DATASETS[name](**args)
    except DatasetError:
        raise
    except RuntimeConfigError as e:
        raise DatasetError(e.code, str(e), e.hint, span) from None
    except (TypeError, ValueError) as e:
        raise DatasetError("E-DATASET-ARG", f"data set '{name}': {e}", None, span) from None
