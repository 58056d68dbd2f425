"""`File(...)` weights are checked by `snnc check` as param files are: shape, every value present,
every value finite; each mistake at the `File(...)` with file:line:col."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.frontend import check_file

HERE = Path(__file__).parent
SOURCE = (HERE / "invalid" / "weight_file_shape.snn").read_text().split("\n", 1)[1]  # 4 -> 10 Dense


def errors(tmp_path: Path, write) -> list[str]:
    write(tmp_path / "weights_3x10.npy")  # the name the source reads
    path = tmp_path / "net.snn"
    path.write_text(SOURCE)
    found = [d for d in check_file(str(path)) if d.severity == "error"]
    assert all((d.code, d.span.line, d.span.col) == ("E-WEIGHT-FILE", 27, 29) for d in found), found
    return [d.message for d in found]


def truncated(path: Path) -> None:
    np.save(path, np.ones((4, 10)))
    path.write_bytes(path.read_bytes()[:-8])


@pytest.mark.parametrize(
    "write, words",
    [
        (lambda p: np.save(p, np.ones((10, 4))), "has shape (10, 4), but Dense needs (4, 10)"),
        (lambda p: np.save(p, np.ones((2, 20))), "has shape (2, 20), but Dense needs (4, 10)"),
        (lambda p: np.save(p, np.full((4, 10), np.nan)), "holds values that are not finite"),
        (lambda p: np.save(p, np.full((4, 10), np.inf)), "holds values that are not finite"),
        (truncated, "(is it truncated?)"),
    ],
)
def test_a_bad_weight_file_is_an_error_at_the_file_call(tmp_path, write, words):
    messages = errors(tmp_path, write)
    assert len(messages) == 1 and words in messages[0], messages


@pytest.mark.parametrize(
    "write",
    [
        lambda p: np.save(p, np.ones((4, 10))),
        lambda p: np.save(p, np.ones(40)),  # flat, in [pre, post] order
        lambda p: np.save(p, np.ones((4, 10, 1))),
        lambda p: np.save(p, np.ones((4, 10), np.int32)),
        lambda p: np.save(p, np.asfortranarray(np.ones((4, 10)))),
    ],
)
def test_weight_files_of_the_right_shape_check_clean(tmp_path, write):
    assert errors(tmp_path, write) == []
