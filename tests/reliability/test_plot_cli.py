"""`snnc plot DIR`: curves from metrics.json, rasters from spike recordings, clear errors otherwise."""

from __future__ import annotations

import builtins
import json
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from snnc.runtime.plot import (  # noqa: E402
    DPI,
    FIGSIZE,
    PlotError,
    curves,
    load_spike_recording,
    plot_run,
    save_spike_recording,
)
from snnc.runtime.recording import SpikeRecorder  # noqa: E402
from snnc.runtime.trainer import write_metrics_json  # noqa: E402

from snnc.cli import main  # noqa: E402


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _history(n=6, validation=True):
    out = []
    for e in range(n):
        rec = {"epoch": e, "train": {"loss": 1.0 / (e + 1), "accuracy": 0.5 + 0.08 * e}}
        if validation:
            rec["validation"] = {"loss": 1.2 / (e + 1), "accuracy": 0.45 + 0.07 * e}
        out.append(rec)
    out[2]["train"]["loss"] = float("nan")  # written as null: a gap, not a crash
    return out


@pytest.fixture
def run_dir(tmp_path):
    write_metrics_json(tmp_path / "metrics.json", _history(), {"loss": 0.3, "accuracy": 0.9})
    return tmp_path


def test_plot_writes_curves_and_rasters(run_dir, capsys):
    rng = np.random.default_rng(0)
    rec = SpikeRecorder("h")
    rec.spikes = [(np.sort(rng.uniform(0, 30, 40)), rng.integers(0, 20, 40)) for _ in range(3)]
    rec.examples = [5, 6, 7]
    save_spike_recording(run_dir / "spikes-h.npz", rec.spikes, rec.examples, num_neurons=20)
    np.savez(run_dir / "epoch-0000.npz", **{"weights/a": np.ones(3)})  # a checkpoint: skipped

    assert main(["plot", str(run_dir)]) == 0
    out = run_dir / "plots"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["accuracy.png", "loss.png", "raster-spikes-h.png"]
    assert "wrote" in capsys.readouterr().out
    for name in ("accuracy.png", "loss.png"):
        assert png_size(out / name) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
        assert 10_000 < (out / name).stat().st_size < 500_000
    w, h = png_size(out / "raster-spikes-h.png")
    assert w == round(FIGSIZE[0] * DPI) and h == round((1.0 + 1.6 * 3) * DPI)
    assert (out / "raster-spikes-h.png").stat().st_size > 5_000


def test_plot_output_folder_and_several_populations(tmp_path):
    hist = [{"epoch": e, "train": {"loss": 1.0, "accuracy/out": 0.5, "accuracy/aux": 0.4}} for e in range(3)]
    write_metrics_json(tmp_path / "metrics.json", hist, None)
    written = plot_run(tmp_path, tmp_path / "pngs")
    assert sorted(p.name for p in written) == ["accuracy_aux.png", "accuracy_out.png", "loss.png"]
    assert all(p.parent == tmp_path / "pngs" for p in written)


def test_curves_read_the_trainer_format(run_dir):
    doc = json.loads((run_dir / "metrics.json").read_text())
    c = curves(doc)
    assert set(c) == {"loss", "accuracy"} and set(c["loss"]) == {"train", "validation"}
    xs, ys = c["loss"]["train"]
    assert xs == [1, 2, 3, 4, 5, 6] and np.isnan(ys[2]) and ys[1] == pytest.approx(0.5)


def test_recording_round_trip(tmp_path):
    spikes = [(np.array([1.0, 2.5]), np.array([3, 0])), (np.array([]), np.array([], int))]
    path = save_spike_recording(tmp_path / "r.npz", spikes, [4, 9])
    rec = load_spike_recording(path)
    assert rec["times"].tolist() == [1.0, 2.5] and rec["ids"].tolist() == [3, 0]
    assert rec["examples"].tolist() == [4, 4]
    np.savez(tmp_path / "obj.npz", times=np.array([object()], dtype=object), ids=np.array([1]))
    with pytest.raises(PlotError):  # object arrays would need pickle: refused
        load_spike_recording(tmp_path / "obj.npz")


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no metrics.json"),
        ("{not json", "not valid JSON"),
        ('{"epochs": 3}', "no list of per-epoch results"),
        ('{"epochs": []}', "holds no epochs"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_missing_or_corrupt_metrics_exit_1(tmp_path, capsys, content, words):
    if isinstance(content, str):
        (tmp_path / "metrics.json").write_text(content)
    elif isinstance(content, bytes):
        (tmp_path / "metrics.json").write_bytes(content)
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "plots").exists()


def test_missing_folder_exit_1(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_missing_matplotlib_is_one_clear_sentence(run_dir, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_mpl(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    assert main(["plot", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "snnc plot needs matplotlib, which is not installed" in err
    assert "snnc[plot]" in err and "Traceback" not in err


def test_a_sweep_folder_plots_accuracy_against_timesteps(tmp_path: Path) -> None:
    from snnc.runtime.plot import save_sweep

    series = {"mlp data_norm": [(200, 0.99), (25, 0.97), (50, 0.98)], "mlp few_spike": [(9, 0.98)]}
    save_sweep(tmp_path / "accuracy_vs_timesteps.sweep.json", "timesteps", "test accuracy", series)
    assert main(["plot", str(tmp_path)]) == 0  # no metrics.json needed beside sweeps
    png = tmp_path / "plots" / "accuracy_vs_timesteps.png"
    assert png_size(png) == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def test_a_malformed_sweep_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.sweep.json").write_text('{"x": "timesteps", "series": {"a": [[1]]}}')
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bad.sweep.json' is not a sweep" in err and "Traceback" not in err
