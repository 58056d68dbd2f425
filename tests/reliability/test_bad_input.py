"""Bad input found by a sweep of the `snnc` command and the Python API (odd paths, empty files, flag
values, output places): each is exit 1 with a located message, never a traceback or exit 3, and
never costs the user a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from snnc.ir.diagnostics import DiagnosticError

import snnc
from snnc.cli import main

ROOT = Path(__file__).resolve().parents[2]
YINYANG = ROOT / "examples" / "yinyang_eventprop.snn"


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err and "internal error" not in err, err
    return code, err


# -------------------------------------------------------------------------- what names the network


@pytest.mark.parametrize("command", [["train"], ["evaluate", "--no-checkpoint"]])
def test_a_folder_given_as_the_file_is_read_as_a_file(tmp_path, capsys, command):
    code, err = run(capsys, command[0], str(tmp_path), *command[1:])
    assert code == 1
    assert f"cannot read '{tmp_path}'" in err and "<string>" not in err, err


def test_a_file_not_ending_in_snn_is_read_not_parsed_as_its_name(tmp_path, capsys):
    path = tmp_path / "net.txt"
    path.write_text("network broken {\n    hidden h = \n}\n")
    code, err = run(capsys, "train", str(path))
    assert code == 1
    assert f"{path}:2:15: error: missing value" in err and "<string>" not in err, err


def test_the_api_reads_a_one_line_name_of_a_file_that_exists(tmp_path):
    path = tmp_path / "net.txt"
    path.write_text("network broken {\n    hidden h = \n}\n")
    with pytest.raises(DiagnosticError) as info:
        snnc.compile(str(path))
    assert info.value.diagnostics[0].span.file == str(path)


@pytest.mark.parametrize(
    "command",
    [["train"], ["evaluate", "--no-checkpoint"], ["compile"], ["compile", "--emit", "c"], ["export"]],
)
def test_a_file_without_a_network_is_refused_where_something_is_built(tmp_path, capsys, command):
    path = tmp_path / "models.snn"
    path.write_text("neuron N {\n    state v = 0.0\n    dv/dt = -v / (1 ms)\n}\n")
    extra = ["-o", str(tmp_path / "out")] if command[0] in ("export",) or "--emit" in command else []
    code, err = run(capsys, command[0], str(path), *command[1:], *extra)
    assert code == 1
    assert f"{path}:1:1: error: {path} defines no network" in err, err
    assert main(["check", str(path)]) == 0  # a file of models only still checks clean


@pytest.mark.parametrize("text", ["", "use std.{LIF}\n"])
def test_the_api_refuses_source_without_a_network(text):
    with pytest.raises(DiagnosticError, match="defines no network"):
        snnc.compile(text)
