"""`snnc train/evaluate --log-json`: JSON Lines for machines, one record per event, stdout kept clean."""

from __future__ import annotations

import json
import math

import pytest
from snnc.runtime.progress import JsonLinesLog, open_log

from snnc.cli import main
from tests.test_cli_train import snnc, write


def records(text: str) -> list[dict]:
    lines = text.splitlines()
    assert lines, "no JSON lines written"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def check_epochs(recs: list[dict], epochs: list[int], total: int) -> None:
    got = [r for r in recs if r["event"] == "epoch"]
    assert [r["epoch"] for r in got] == epochs
    for r in got:
        assert r["epochs"] == total
        assert set(r["train"]) == {"loss", "accuracy"} and 0.0 <= r["train"]["accuracy"] <= 1.0
        assert set(r["validation"]) == {"loss", "accuracy"}
        assert r["seconds"] > 0 and r["lr"] == pytest.approx(0.003)
        assert r["checkpoint"].endswith(f"epoch-{r['epoch']:04d}.npz")


def test_log_json_to_stdout_keeps_stdout_parseable(tmp_path, capsys):
    path, out = write(tmp_path), tmp_path / "run"
    args = ["train", str(path), "--out", str(out), "--quiet", "--validation-split", "0.25", "--log-json", "-"]
    args.append("--plot")
    assert main(args) == 0
    captured = capsys.readouterr()
    recs = records(captured.out)
    assert [r["event"] for r in recs] == ["start", "epoch", "epoch", "test", "done"]
    start = recs[0]
    assert start["network"] == "small" and start["epochs"] == 2 and start["start_epoch"] == 0
    assert start["train_examples"] == 48 and start["validation_examples"] == 16
    assert start["resumed_from"] is None and start["seed"] == 1
    check_epochs(recs, [0, 1], 2)
    test = recs[3]["test"]
    assert test["examples"] == 48 and set(test) == {"loss", "accuracy", "examples"}
    done = recs[4]
    assert done["out"] == str(out) and done["checkpoint"] == str(out / "epoch-0001.npz")
    # --plot drew the curves at the end, as `snnc plot DIR` would
    assert sorted(done["plots"]) == [str(out / "plots" / n) for n in ("accuracy.png", "loss.png")]
    assert all((out / "plots" / n).stat().st_size > 10_000 for n in ("accuracy.png", "loss.png"))
    # the records agree with metrics.json, and the human summary went to stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["train"] for r in recs[1:3]] == [e["train"] for e in metrics["epochs"]]
    assert test == metrics["test"]
    assert "epoch 1/2" in captured.err and "test:" in captured.err

    # evaluate: one test record for the checkpoint
    assert main(["evaluate", str(path), "--checkpoint", str(out), "--quiet", "--log-json", "-"]) == 0
    captured = capsys.readouterr()
    recs = records(captured.out)
    assert [r["event"] for r in recs] == ["test", "done"]
    assert recs[0]["epoch"] == 1 and recs[0]["checkpoint"] == str(out / "epoch-0001.npz")
    assert recs[0]["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert "test loss" in captured.err


def test_log_json_file_is_appended_on_resume(tmp_path):
    """The process as a user runs it: human lines on stdout, JSON in the file, --resume continues it."""
    path, out, log = write(tmp_path), tmp_path / "run", tmp_path / "logs" / "train.jsonl"
    first = snnc("train", path, "--out", out, "--quiet", "--epochs", "1", "--log-json", log)
    assert first.returncode == 0, first.stderr
    assert "epoch 1/1" in first.stdout and '"event"' not in first.stdout
    more = snnc("train", path, "--out", out, "--quiet", "--epochs", "2", "--resume", "--log-json", log)
    assert more.returncode == 0, more.stderr
    recs = records(log.read_text())
    events = [r["event"] for r in recs]
    assert events == ["start", "epoch", "test", "done", "start", "epoch", "test", "done"]
    assert recs[4]["resumed_from"] == str(out / "epoch-0000.npz") and recs[4]["start_epoch"] == 1
    assert [r["epoch"] for r in recs if r["event"] == "epoch"] == [0, 1]
    # a run without --resume starts the file afresh
    again = snnc("train", path, "--out", out, "--quiet", "--epochs", "1", "--log-json", log)
    assert again.returncode == 0, again.stderr
    assert [r["event"] for r in records(log.read_text())] == ["start", "epoch", "test", "done"]


def test_errors_are_records_too(tmp_path, capsys):
    path = write(tmp_path, data='npz(path = "nowhere.npz")')
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet", "--log-json", "-"]) == 1
    captured = capsys.readouterr()
    (rec,) = records(captured.out)
    assert rec["event"] == "error" and rec["code"].startswith("E-") and "nowhere.npz" in rec["message"]
    assert "nowhere.npz" in captured.err  # the diagnostic is still printed for people


def test_unwritable_log_file_is_a_diagnostic(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["train", str(write(tmp_path)), "--quiet", "--log-json", str(blocker / "log.jsonl")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--log-json" in err
    assert f"'{blocker}' is a file, not a folder" in err, "the message names what is in the way"


def test_records_are_strict_json(tmp_path):
    """NaN and Inf (a diverged loss) become null: strict parsers reject bare NaN."""
    import numpy as np

    target = tmp_path / "log.jsonl"
    with open_log(str(target)) as log:
        assert isinstance(log, JsonLinesLog)
        log.write(
            "epoch", train={"loss": float("nan"), "accuracy": np.float32(0.5)}, lr=math.inf, n=np.int64(3)
        )
    (rec,) = records(target.read_text())
    assert rec == {"event": "epoch", "train": {"loss": None, "accuracy": 0.5}, "lr": None, "n": 3}
    assert "NaN" not in target.read_text()


def test_plot_without_matplotlib_fails_before_training(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = tmp_path / "run"
    assert main(["train", str(write(tmp_path)), "--out", str(out), "--quiet", "--plot"]) == 1
    assert "matplotlib" in capsys.readouterr().err
    assert not out.exists()  # nothing trained, nothing written
