"""Bad input found by a sweep of the `snnc` command and the Python API (odd paths, empty files, flag
values, output places): each is exit 1 with a located message, never a traceback or exit 3, and
never costs the user a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.losses import get_loss
from snnc.runtime.optimisers import get_optimiser
from snnc.runtime.schedules import get_schedule

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


# -------------------------------------------------------------------------- sizes, seeds, damage


def tiny(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """A small Yin-Yang network (20 hidden neurons, 64 training examples) with one edit."""
    text = (
        YINYANG.read_text()
        .replace("LIF(100", "LIF(20")
        .replace("train = 5000, test = 1000", "train = 64, test = 32")
    )
    text = text.replace("epochs     = 40", "epochs     = 1")
    path = tmp_path / "yy.snn"
    path.write_text(text.replace(old, new, 1) if old else text)
    return path


def test_a_network_too_large_to_allocate_is_a_user_error(tmp_path, capsys):
    path = tiny(tmp_path, "eventprop(max_spikes = 500)", "eventprop(max_spikes = 1000000000000)")
    code, err = run(capsys, "train", str(path), "--out", str(tmp_path / "run"), "--quiet")
    assert code == 1
    assert f"error: out of memory for {path}" in err and "max_spikes" in err, err
    # at the population whose spike buffer is too large (line 10: hidden h = LIF(20, ...))
    assert f"{path}:10:5: error: out of memory" in err, err
    assert "ev_h__times [32 x 20 x 1000000000000] (2.27 PiB), belongs to population 'h'" in err, err


def test_the_api_names_the_population_of_a_network_too_large(tmp_path):
    path = tiny(tmp_path, "eventprop(max_spikes = 500)", "eventprop(max_spikes = 1000000000000)")
    with pytest.raises(MemoryError, match="belongs to population 'h'") as info:
        snnc.compile(str(path), batch_size=4)
    assert (info.value.span.file, info.value.span.line, info.value.span.col) == (str(path), 10, 5)


def test_a_negative_seed_is_an_option_error(tmp_path, capsys):
    code, err = run(capsys, "train", str(tiny(tmp_path)), "--seed", "-1", "--out", str(tmp_path / "run"))
    assert code == 1
    assert "--seed must be at least 0 (got -1)" in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("target", ["onto-a-file", "below-a-file"])
def test_plots_that_cannot_be_written_name_the_place(tmp_path, capsys, target):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"epochs": [{"epoch": 0, "train": {"loss": 1.0}}]}')
    blocker = tmp_path / "afile"
    blocker.write_text("keep me")
    out = blocker if target == "onto-a-file" else blocker / "sub"
    code, err = run(capsys, "plot", str(run_dir), "-o", str(out))
    assert code == 1
    assert "error: cannot write the plots into" in err and str(blocker) in err, err
    assert blocker.read_text() == "keep me"


def test_a_checkpoint_with_a_damaged_optimiser_state_stops_resume_and_is_kept(tmp_path, capsys):
    import zipfile

    import numpy as np

    path = tiny(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    ckpt = run_dir / "epoch-0000.npz"
    member = next(n for n in zipfile.ZipFile(ckpt).namelist() if n.startswith("optimiser/hyper/"))
    np.save(tmp_path / "bad.npy", np.array(["x"]))
    damaged = tmp_path / "damaged.npz"
    with zipfile.ZipFile(ckpt) as zin, zipfile.ZipFile(damaged, "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, (tmp_path / "bad.npy").read_bytes() if n == member else zin.read(n))
    damaged.replace(ckpt)
    before = ckpt.read_bytes()
    code, err = run(capsys, "train", str(path), "--out", str(run_dir), "--epochs", "2", "--resume", "--quiet")
    assert code == 1
    assert f"checkpoint '{ckpt}' holds a damaged optimiser state" in err, err
    assert ckpt.read_bytes() == before and not (run_dir / "epoch-0001.npz").exists()


# -------------------------------------------------------------------------- outputs onto inputs


def test_log_json_onto_the_snn_file_is_refused_and_the_file_kept(tmp_path, capsys):
    path = tiny(tmp_path)
    text = path.read_text()
    for command in (["train", "--out", str(tmp_path / "run")], ["evaluate", "--no-checkpoint"]):
        code, err = run(capsys, command[0], str(path), *command[1:], "--log-json", str(path), "--quiet")
        assert code == 1
        assert f"cannot write the --log-json file '{path}': it is the input" in err, err
        assert path.read_text() == text


def test_log_json_onto_the_checkpoint_is_refused_and_the_checkpoint_kept(tmp_path, capsys):
    path = tiny(tmp_path)
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    ckpt = tmp_path / "run" / "epoch-0000.npz"
    before = ckpt.read_bytes()
    code, err = run(capsys, "evaluate", str(path), "--checkpoint", str(ckpt), "--log-json", str(ckpt))
    assert code == 1 and "it is the input" in err, err
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize("output", ["same", "dir"])
def test_compile_o_onto_the_snn_file_is_refused_and_the_file_kept(tmp_path, capsys, output):
    path = tiny(tmp_path)
    text = path.read_text()
    # "dir": -o names the folder the .snn is in, and the dump would be DIR/<default name>: no clash
    out = str(path) if output == "same" else str(tmp_path)
    code, err = run(capsys, "compile", str(path), "--emit", "ir", "-o", out)
    assert path.read_text() == text
    if output == "same":
        assert code == 1 and f"cannot write the output '{path}': it is the input" in err, err
    else:
        assert code == 0 and (tmp_path / "ir.txt").is_file()


def test_import_o_onto_the_nir_file_is_refused_and_the_file_kept(tmp_path, capsys):
    nir = pytest.importorskip("nir")
    import numpy as np

    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=np.ones((2, 3))), nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))
    )
    src = tmp_path / "g.nir"
    nir.write(str(src), graph)
    before = src.read_bytes()
    code, err = run(capsys, "import", str(src), "-o", str(src))
    assert code == 1 and f"cannot write the .snn file '{src}': it is the input" in err, err
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [["--validation-split", "1.5"], ["--validation-split", "-0.1"], ["--validation-split", "nan"]],
)
def test_a_bad_option_keeps_the_checkpoints_of_the_run_in_the_folder(tmp_path, capsys, args):
    path = tiny(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run_dir.glob("epoch-*.npz")}
    code, err = run(capsys, "train", str(path), "--out", str(run_dir), "--quiet", *args)
    assert code == 1 and f"--validation-split must be a fraction in [0, 1) (got {args[1]})" in err, err
    assert {p.name: p.read_bytes() for p in run_dir.glob("epoch-*.npz")} == before != {}


def test_data_that_do_not_fit_the_network_keep_the_checkpoints_in_the_folder(tmp_path, capsys):
    path = tiny(tmp_path)
    run_dir = tmp_path / "run"
    assert main(["train", str(path), "--out", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run_dir.glob("epoch-*.npz")}
    path.write_text(path.read_text().replace("bias = true", "bias = false"))  # 4 inputs for 5 neurons
    code, err = run(capsys, "train", str(path), "--out", str(run_dir), "--quiet")
    assert code == 1 and "input channels" in err, err
    assert {p.name: p.read_bytes() for p in run_dir.glob("epoch-*.npz")} == before != {}


def test_a_validation_split_that_leaves_no_training_example_is_refused(tmp_path, capsys):
    path = tiny(tmp_path)
    code, err = run(capsys, "train", str(path), "--out", str(tmp_path / "run"), "--validation-split", "0.999")
    assert code == 1, err
    assert f"{path}:" in err and "nothing to train on: validation split 0.999 leaves none of its 64" in err, (
        err
    )
    assert not list((tmp_path / "run").glob("epoch-*.npz"))


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"dt": 0}, "dt must be a positive time in ms, not 0.0"),
        ({"dt": -1}, "dt must be a positive time in ms, not -1.0"),
        ({"dt": float("nan")}, "dt must be a positive time in ms, not nan"),
        ({"dt": float("inf")}, "dt must be a positive time in ms, not inf"),
        ({"duration": 0}, "duration must be a positive time in ms, not 0.0"),
        ({"dt": 50}, "dt = 50 ms is longer than the duration of 30 ms"),
        ({"dt": 1e-300}, "steps; snnc runs at most 2147483647"),
    ],
)
def test_the_apis_dt_and_duration_get_the_train_blocks_checks(overrides, words):
    with pytest.raises(DiagnosticError, match=words.replace("(", r"\(").replace(")", r"\)")):
        snnc.compile(str(YINYANG), **overrides)


# -------------------------------------------------------------------------- train-block values


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda s: get_loss("sparse_categorical_crossentropy", {"temperature": 0}, s), "temperature must be"),
        (lambda s: get_optimiser("adam", {"lr": "fast"}, s), "optimiser 'adam': could not convert"),
        (lambda s: get_schedule("step_decay", {"step_size": 0, "gamma": 0.5}, s), "step_size must be"),
    ],
)
def test_bad_loss_optimiser_and_schedule_values_are_diagnostics_at_the_setting(make, words):
    """They were bare ValueErrors (exit 3 from snnc train), or a diagnostic without a location."""
    from snnc.ir.diagnostics import Span
    from snnc.runtime.errors import RuntimeConfigError

    span = Span("net.snn", 14, 18)
    with pytest.raises(RuntimeConfigError, match=words) as info:
        make(span)
    assert info.value.diagnostics[0].span == span


# -------------------------------------------------------------------------- the Python API


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import numpy as np
    from snnc.runtime.session import load_data, xy
    from snnc.runtime.trainer import take

    net = snnc.compile(str(tiny(tmp_path_factory.mktemp("api"))), batch_size=4)
    x, y = xy(net.network, load_data(net.network).train)
    return net, {k: take(v, np.arange(8)) for k, v in x.items()}, {k: v[:8] for k, v in y.items()}


def test_evaluate_checks_labels_as_train_does(compiled):
    import numpy as np

    net, x, _ = compiled
    with pytest.raises(ValueError, match=r"population 'out': labels must lie in \[0, 3\); got 9..9"):
        net.evaluate(x, {"out": np.full(8, 9)})
    with pytest.raises(ValueError, match="whole numbers"):
        net.evaluate(x, {"out": np.full(8, 0.5)})


@pytest.mark.parametrize("call", ["train", "evaluate"])
def test_labels_for_a_population_that_is_not_an_output_are_a_key_error(compiled, call):
    net, x, y = compiled
    with pytest.raises(KeyError, match=r"'h' is not an output population; outputs are \['out'\]"):
        if call == "train":
            net.train(x, {"h": y["out"]}, num_epochs=1, callbacks=())
        else:
            net.evaluate(x, {"h": y["out"]})


@pytest.mark.parametrize("source", [None, 5, b"network x {}"])
def test_compile_of_something_that_is_neither_path_nor_text_is_a_type_error(source):
    with pytest.raises(TypeError, match="a .snn path or .snn source text is needed"):
        snnc.compile(source)


def test_set_weights_of_something_that_is_not_a_dict_is_a_type_error(compiled):
    net, _, _ = compiled
    with pytest.raises(TypeError, match="weights are a dict of projection -> array, not list"):
        net.set_weights([1, 2])
