"""The backend registry: names, capabilities read by `snnc check --backend`, and one C generator for
`--emit c` and training."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from snnc.backends import NAMES, check_supported, get_backend
from snnc.backends.capabilities import CODE
from snnc.ir.diagnostics import DiagnosticError

from snnc.api import build_compiled, compile_network, emit, load_network, lower

ROOT = Path(__file__).resolve().parents[2]
DELAYED = ROOT / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn"
CONV = ROOT / "tests" / "golden" / "sources" / "conv_pool.snn"
EPROP = ROOT / "examples" / "eprop_pattern.snn"


def snnc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnc", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def trained_conv(tmp_path: Path) -> Path:
    """conv_pool with its convolution trainable: the C backend's EventProp trains conv2d kernels, the
    genn backend's does not."""
    path = tmp_path / "conv_trained.snn"
    path.write_text(CONV.read_text().replace(", trainable = false", ""))
    return path


def eprop_delayed(tmp_path: Path) -> Path:
    """eprop_pattern with a delay on its recurrent projection: e-prop trains through it on both
    backends (tests/backends/test_genn_eprop_delays.py)."""
    old = "h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.0625))"
    src = EPROP.read_text()
    assert old in src
    path = tmp_path / "eprop_delayed.snn"
    path.write_text(src.replace(old, old[:-1] + ", delay = 2 ms)"))
    return path


def test_registry_names_and_unknown_backend() -> None:
    assert NAMES == ("c", "genn")
    assert [get_backend(n).name for n in NAMES] == ["c", "genn"]
    with pytest.raises(DiagnosticError) as info:
        get_backend("fpga")
    assert info.value.diagnostics[0].code == "E-BACKEND"
    caps = get_backend("c").capabilities
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.gradients = frozenset()  # type: ignore[misc]
    assert caps.trainable["eprop"] == {"dense", "csr"}


def test_a_backend_without_delays_on_the_eprop_gradient_path_refuses_them_at_the_projection(
    tmp_path: Path,
) -> None:
    """Both backends train through delays with EventProp and e-prop; a backend that declares it
    cannot (`no_gradient_delays`) is refused at the delayed projection."""
    from snnc.backends.capabilities import unsupported

    assert check_supported(lower(DELAYED), "genn") == []  # EventProp trains through delays on GeNN
    network = lower(eprop_delayed(tmp_path))
    assert check_supported(network, "c") == [] and check_supported(network, "genn") == []
    caps = dataclasses.replace(get_backend("genn").capabilities, no_gradient_delays=frozenset({"eprop"}))
    (d,) = unsupported(network, "genn", caps)
    assert d.code == CODE and "h_to_h" in d.message and "delay" in d.message
    assert (Path(d.span.file).name, d.span.line, d.span.col) == ("eprop_delayed.snn", 13, 5)


CONDUCTANCE_NET = """use std.{SpikeInput, LeakyIntegrate, Exponential}
neuron CondLIF {
    param tau_mem = 20 ms
    param e_rev = 5.0
    state v = 0.0
    input i_syn
    dv/dt = (-v + i_syn * (e_rev - v)) / tau_mem
    spike when v >= 1.0
    reset { v = 0.0 }
}
network cond {
    input  x   = SpikeInput(4)
    hidden h   = CondLIF(10)
    output out = LeakyIntegrate(3, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 0.5, sd = 0.2)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.9, sd = 0.1)), Exponential(tau = 5 ms)
}
train cond {
    algorithm = eventprop(max_spikes = 100)
    loss      = sparse_categorical_crossentropy
}
"""


def test_non_linear_eventprop_dynamics_are_refused_at_the_population_by_a_backend_without_euler(
    tmp_path: Path,
) -> None:
    """Both backends step non-linear adjoints back with Euler on the recorded trajectory (GeNN:
    tests/backends/test_genn_euler.py), so `snnc check --backend genn` passes; a backend with only
    the exact step (`exact_backward_only`) says so at the population."""
    from snnc.backends.capabilities import unsupported

    path = tmp_path / "cond.snn"
    path.write_text(CONDUCTANCE_NET)
    network = lower(path)
    assert network.training.populations["h"].method == "euler"
    assert check_supported(network, "c") == check_supported(network, "genn") == []
    assert snnc("check", "--backend", "genn", str(path)).returncode == 0
    exact_only = dataclasses.replace(
        get_backend("genn").capabilities, exact_backward_only=frozenset({"eventprop"})
    )
    (d,) = unsupported(network, "exact", exact_only)
    assert d.code == CODE and "population 'h' has non-linear dynamics" in d.message
    assert (d.span.line, d.span.col) == (13, 5)


def one_to_one_eprop(tmp_path: Path) -> Path:
    """eprop_pattern with its recurrent projection OneToOne: the C backend's e-prop trains Dense and
    sparse (CSR) weights only."""
    src = EPROP.read_text()
    assert "h -> h   : Dense(" in src
    path = tmp_path / "one_to_one_eprop.snn"
    path.write_text(src.replace("h -> h   : Dense(", "h -> h   : OneToOne("))
    return path


def test_compile_network_refuses_before_generating_code(tmp_path: Path) -> None:
    """The C backend's own refusal comes after rendering; the capability check comes first."""
    with pytest.raises(DiagnosticError) as info:
        compile_network(one_to_one_eprop(tmp_path), cache_dir=tmp_path / "cache")
    (d,) = info.value.diagnostics
    assert d.code == CODE and "'h_to_h' is one_to_one" in d.message and d.span.line == 13
    assert not (tmp_path / "cache").exists()


def test_c_eprop_refuses_a_one_to_one_trained_projection(tmp_path: Path) -> None:
    path = one_to_one_eprop(tmp_path)
    network = lower(path)
    (d,) = check_supported(network, "c")
    assert d.code == CODE and "eprop" in d.message and d.span.file == str(path)
    with pytest.raises(DiagnosticError) as info:
        emit(network, tmp_path / "out")
    assert info.value.diagnostics[0].code == CODE
    assert not (tmp_path / "out").exists()


def test_cli_check_reports_the_backend_refusal_at_its_line(tmp_path: Path) -> None:
    delayed = eprop_delayed(tmp_path)
    for backend in ("c", "genn"):  # e-prop through a delay: both
        plain = snnc("check", str(delayed), "--backend", backend)
        assert plain.returncode == 0, plain.stderr
    conv_path = trained_conv(tmp_path)
    conv = snnc("check", str(conv_path), "--backend", "genn")
    assert conv.returncode == 1 and f"{conv_path}:9:5: error: the genn backend trains" in conv.stderr
    assert "Traceback" not in conv.stderr
    assert snnc("check", str(conv_path)).returncode == 0  # the c backend trains conv2d
    assert snnc("check", str(DELAYED), "--backend", "fpga").returncode == 2


def test_cli_check_examples_on_every_backend() -> None:
    """Every backend runs every example (GeNN trains shd_delays' per-neuron tau_mem and delays too)."""
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.snn"))
    assert any(Path(e).name == "shd_delays.snn" for e in examples)
    for name in NAMES:
        result = snnc("check", "--backend", name, *examples)
        assert result.returncode == 0, (name, result.stderr)


def test_emit_c_of_eprop_is_what_training_builds(tmp_path: Path) -> None:
    out = tmp_path / "emitted"
    result = snnc("compile", str(EPROP), "--emit", "c", "-o", str(out))
    assert result.returncode == 0, result.stderr
    code = (out / "pattern.c").read_text()
    assert "snnc_eprop_run" in code
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["eprop"]["outputs"] and manifest["eprop"]["projections"]
    network = lower(EPROP)
    built = get_backend("c").build(network, cache_dir=tmp_path / "cache")
    assert built.source.read_text() == code
    assert built.manifest["code_sha256"] == manifest["code_sha256"]
    net = build_compiled(network, cache_dir=tmp_path / "cache")
    assert type(net.artefact).__name__ == "EpropArtefact"


def test_emit_c_of_eventprop_is_what_training_builds(tmp_path: Path) -> None:
    """EventProp training builds with spike buffers of max_spikes; `--emit c` writes the same code."""
    source = ROOT / "examples" / "yinyang_eventprop.snn"
    result = snnc("compile", str(source), "--emit", "c", "-o", str(tmp_path / "emitted"))
    assert result.returncode == 0, result.stderr
    code = (tmp_path / "emitted" / "yinyang.c").read_text()
    assert "snnc_backward" in code
    built = get_backend("c").build(lower(source), cache_dir=tmp_path / "cache")
    assert built.source.read_text() == code


SHD = ROOT / "examples" / "shd_eventprop.snn"


@pytest.mark.parametrize(
    ("source", "inference"), [(EPROP, False), (DELAYED, False), (SHD, False), (SHD, True), (DELAYED, True)]
)
def test_the_loader_finds_every_array_it_fills_by_role(source: Path, inference: bool) -> None:
    """The loader looks arrays up by (role, owner, var), in the kernel IR's vocabulary: each key it
    uses names exactly one array, and every array has a role; for the template renderer of EventProp
    and for the printed kernel of e-prop and of a network without training alike."""
    import dataclasses

    from snnc.backends.c.backend import generate
    from snnc.ir.kernel import Role

    network = lower(source)
    if inference:
        network = dataclasses.replace(network, training=None)
    rendered, _, _ = generate(network, event_buffer=4)
    assert "Printed from the kernel IR" in rendered.code  # every network, trained or not
    arrays = rendered.manifest["arrays"]
    assert all(Role(a["role"]) for a in arrays)
    keys = [(a["role"], a["owner"], a["var"]) for a in arrays]
    looked_up = [("input", network.name, "example")]
    for pop in network.populations.values():
        looked_up.append(("record", pop.name, None))
        if network.models[pop.model].generator == "spike_source":
            looked_up += [("input", pop.name, k) for k in ("end", "times", "ids")]
            looked_up.append(("counter", pop.name, "cursor"))
        elif network.models[pop.model].generator is None:
            looked_up += [
                ("record", pop.name, s) for s in rendered.manifest["populations"][pop.name]["states"]
            ]
            if network.models[pop.model].spikes:
                looked_up += [("spike_list", pop.name, "times"), ("spike_list", pop.name, "count")]
    if source == EPROP:
        looked_up += [("target", p.name, "label") for p in network.outputs()]
    for key in looked_up:
        assert keys.count(key) == 1, key


def test_numeric_conv_padding_runs_on_c_and_genn_refuses_it_at_check(tmp_path: Path) -> None:
    """Conv2D(padding = (1, 1)) is the C path's (PyTorch/NIR padding); GeNN's capabilities refuse it
    at `snnc check` with the projection's location, before any code is generated."""
    path = tmp_path / "padded.snn"
    path.write_text(
        "use std.{SpikeInput, LIF, Exponential}\n"
        "network padded {\n"
        "    input x = SpikeInput((5, 5, 1))\n"
        "    output c = LIF((3, 3, 2), readout = spike_count)\n"
        "    x -> c : Conv2D(filters = 2, kernel = 3, stride = 2, padding = (1, 1), weight = 0.5), Exponential\n"
        "}\n"
    )
    network = load_network(path)  # the frontend's IR carries all the capability check reads
    assert check_supported(network, "c") == []
    (d,) = check_supported(network, "genn")
    assert d.code == CODE and 'pads Conv2D only "valid" or "same"' in d.message and "(1, 1)" in d.message
    assert d.span is not None and (d.span.line, d.span.col) == (5, 14)  # at the Conv2D call


def test_dilated_grouped_conv_runs_on_c_and_genn_refuses_it_at_check(tmp_path: Path) -> None:
    """Conv2D(dilation = ..., groups = ...) is printed by the C backend only; GeNN's capabilities
    refuse it at `snnc check` at the Conv2D call, naming both values."""
    path = tmp_path / "dilated.snn"
    path.write_text(
        "use std.{SpikeInput, LIF, Exponential}\n"
        "network dilated {\n"
        "    input x = SpikeInput((7, 7, 2))\n"
        "    output c = LIF((3, 3, 4), readout = spike_count)\n"
        "    x -> c :   Conv2D(filters = 4, kernel = 3, dilation = 2, groups = 2, weight = 0.5), Exponential\n"
        "}\n"
    )
    network = load_network(path)
    assert check_supported(network, "c") == []
    (d,) = check_supported(network, "genn")
    assert d.code == CODE and "dilation = (2, 2), groups = 2" in d.message and "'x_to_c'" in d.message
    assert d.span is not None and (d.span.line, d.span.col) == (5, 16)
