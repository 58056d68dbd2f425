"""The README's worked round trip (examples/nir_roundtrip.py): snnTorch -> NIR -> snnc train with
EventProp -> NIR -> snnTorch, shortened to 3 epochs. Needs the interop extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.nir.interop import needs

needs("torch")
needs("snntorch")
needs("nirtorch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nir_roundtrip.py"


@pytest.mark.slow  # ~60 s on a shared 2-core machine: three epochs of Yin-Yang and two 1000-example snnTorch runs
def test_the_readme_round_trip_learns_and_snntorch_reads_back_what_snnc_trained(tmp_path):
    spec = importlib.util.spec_from_file_location("nir_roundtrip", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    got = example.run(tmp_path, epochs=3)
    snnc_test = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert got["before"] < 0.45 and snnc_test > 0.6  # it learns, from about chance
    # snnTorch simulates snnc's trained export as snnc evaluated it (same test set, same readout)
    assert abs(got["after"] - snnc_test) <= 0.005
