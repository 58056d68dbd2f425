"""The IR printer: one deterministic text form, pinned by a golden file (refresh: --update-golden)."""

from __future__ import annotations

import io
from pathlib import Path

from small_network import small_network
from snnc.ir.printer import print_network
from snnc.passes import discretise as D
from snnc.passes.pipeline import compile_ir

GOLDEN = Path(__file__).parent / "golden" / "small_network.txt"


def dump_all_stages() -> str:
    D._CACHE.clear()
    net = small_network()
    out = io.StringIO()
    out.write("// ----- IR Dump After lowering -----\n" + print_network(net) + "\n")
    compile_ir(net, print_after={"all"}, out=out)
    return out.getvalue()


def test_golden_small_network(update_golden):
    text = dump_all_stages()
    if update_golden:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"missing {GOLDEN}; create it with --update-golden"
    assert text == GOLDEN.read_text(), "IR text changed; rerun with --update-golden if intended"


def test_printing_is_deterministic():
    assert dump_all_stages() == dump_all_stages()


def test_stage_content_units_and_choice_of_integrator():
    final, _ = compile_ir(small_network(), out=io.StringIO())
    text = print_network(final)
    assert "stage: optimised" in text
    assert "param tau_mem = 20 ms" in text  # model default with its unit
    assert "params tau_mem = 10 ms" in text  # population override
    assert "state v = 0 mV" in text
    assert "discrete LIF  // method: exact" in text
    assert "derived P_v_v = exp(-dt/tau_mem)" in text
    assert "update v = " in text and "output i*scale_i" in text
    assert "projection x_to_out: x -> out.i_syn" in text
    assert "weight normal(mean = 1.5, sd = 0.78)" in text
    assert "algorithm = none()" in text and "readout first_spike_time()" in text


def test_training_ir_text_is_included():
    import dataclasses

    class FakeTraining:
        def to_text(self) -> str:
            return "training {\n  adjoint lambda_v\n}\n"

    net = dataclasses.replace(small_network(), training=FakeTraining(), stage="training")
    assert print_network(net).rstrip().endswith("training {\n  adjoint lambda_v\n}")


def test_reprs_are_readable():
    net = small_network()
    text = repr(net)
    assert "\n" not in text and "models=[SpikeInput, LIF, Exponential]" in text and "Span" not in text
    assert repr(net.models["LIF"].odes[0]) == "Ode(state='v', rhs=(i_syn - v)/tau_mem)"
