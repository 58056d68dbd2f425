"""Fuzzing through the C backend: every mutant the checker accepts compiles and runs one short batch.

Mutated `.snn` sources (`tests/frontend/mutations.py`) that `check_source` accepts go through the
passes (inference), the C backend (a real compile, ~0.4 s unless cached) and one batch of simulation
with random inputs. Allowed outcomes: success, or a `DiagnosticError` a later stage raises about the
user's model. Not allowed: a Python traceback, an internal-error diagnostic, a C compiler failure
(`E-CC`) or a hang (a watchdog kills the run). The check-only fuzz is the fast path at 2,000 cases.
"""

from __future__ import annotations

import atexit
import dataclasses
import faulthandler
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from snnc.frontend import check_source, load_source
from snnc.ir.diagnostics import DiagnosticError
from snnc.passes.pipeline import compile_ir

from snnc.api import build_compiled

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "frontend"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutations import mutated_sources  # noqa: E402
from test_hostile_input import PLAIN, WEIGHT_FILE, fill  # noqa: E402

SMALL = """
use std.{PoissonInput, ALIF, LIF, LeakyIntegrate, Delta, Exponential}

network small {
    input  p   = PoissonInput(6)
    hidden a   = ALIF(12, tau_adapt = 200 ms, beta = 0.05)
    hidden l   = LIF(8, relative_reset = true, tau_refrac = 2 ms)
    output out = LeakyIntegrate(3, readout = max_var)
    p -> a   : Sparse(p = 0.5, weight = Uniform(low = 0.0, high = 1.0)), Delta
    a -> a   : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Exponential(tau = 3 ms)
    a -> l   : Dense(weight = 0.4, delay = 2 ms), Delta
    l -> out : Dense(weight = Constant(value = 0.5)), Exponential
}
"""
#: one folder for the whole module: the strategy (built at import) checks File() paths against it
FOLDER = Path(tempfile.mkdtemp(prefix="snnc-fuzz-"))
atexit.register(shutil.rmtree, FOLDER, True)
np.save(FOLDER / WEIGHT_FILE, np.random.default_rng(3).normal(0.9, 0.1, (20, 3)))
MUTANT_PATH = str(FOLDER / "mutant.snn")
SOURCES = [
    fill(PLAIN),
    SMALL,
    *(p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.snn"))),
]
MAX_STEPS = 40
MAX_NEURONS = 20_000
MAX_SYNAPSES = 4_000_000
#: diagnostics that mean a bug in snnc, not in the user's model
BUG_CODES = {"E-INTERNAL", "E-CC", "E-CC-MISSING"}
TOO_BIG = "too big to simulate here"


def _accepted(text: str, path: str) -> bool:
    diagnostics = check_source(text, path)
    assert all(d.code != "E-INTERNAL" for d in diagnostics), diagnostics
    return not any(d.severity == "error" for d in diagnostics)


@st.composite
def accepted_mutants(draw, sources: list[str], tries: int = 12):
    """A mutant the checker accepts when one turns up in `tries` draws (about one in four does)."""
    text = ""
    for _ in range(tries):
        text = draw(mutated_sources(sources))
        if _accepted(text, MUTANT_PATH):
            break
    return text


def _bug(err: DiagnosticError) -> list[str]:
    return [f"{d.code}: {d.message}" for d in err.diagnostics if d.code in BUG_CODES or not d.message]


def _inputs(net, rng: np.random.Generator, batch: int) -> dict:
    out = {}
    for name, pop in net.artefact.manifest["populations"].items():
        n = int(pop["size"])
        if pop["generator"] == "spike_source":
            rows = []
            for _ in range(batch):
                k = int(rng.integers(0, 3 * n + 1))
                rows.append(
                    (np.sort(rng.uniform(0.0, net.artefact.dt * MAX_STEPS, k)), rng.integers(0, n, k))
                )
            out[name] = rows
        elif pop["generator"] == "poisson":
            out[name] = rng.uniform(0.0, 200.0, (batch, n))
    return out


def compile_and_run(text: str, seed: int = 0) -> str:
    """The property for one accepted source; returns how it ended ("ran" or a diagnostic code)."""
    path = MUTANT_PATH
    try:
        network = load_source(text, path)
    except DiagnosticError as err:  # a later frontend stage may still refuse: only as a diagnostic
        assert not _bug(err), _bug(err)
        return err.diagnostics[0].code
    sizes = {p.name: p.size for p in network.populations.values()}
    synapses = sum(sizes.get(pr.pre, 0) * sizes.get(pr.post, 0) for pr in network.projections.values())
    if sum(sizes.values()) > MAX_NEURONS or synapses > MAX_SYNAPSES:  # a mutant "100" -> "100100"
        return TOO_BIG
    assert network.dt > 0 and math.isfinite(network.dt), f"checker accepted dt = {network.dt}"
    network = dataclasses.replace(network, duration=network.dt * min(network.num_steps, MAX_STEPS))
    faulthandler.dump_traceback_later(120, exit=True)  # a hang in the compiler or the C loop kills the run
    try:
        network, _ = compile_ir(network, gradients=False)
        net = build_compiled(network, batch_size=2, seed=seed, cache_dir=FOLDER / "cache")
        rng = np.random.default_rng(seed)
        result = net.run(_inputs(net, rng, 2))
        for pop, values in result.readouts.items():
            assert np.asarray(values).shape[0] == 2, pop
        return "ran"
    except DiagnosticError as err:
        assert not _bug(err), _bug(err)
        return err.diagnostics[0].code
    finally:
        faulthandler.cancel_dump_traceback_later()


OUTCOMES: list[str] = []


@pytest.mark.parametrize("index", range(len(SOURCES)))
def test_unmutated_sources_run(index: int) -> None:
    """The seeds of the fuzz themselves compile and run (otherwise the fuzz proves little)."""
    assert _accepted(SOURCES[index], MUTANT_PATH)
    assert compile_and_run(SOURCES[index]) == "ran"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(accepted_mutants(SOURCES))
def test_accepted_mutants_compile_and_run_in_c(text: str) -> None:
    if _accepted(text, MUTANT_PATH):
        OUTCOMES.append(compile_and_run(text))
        assume(OUTCOMES[-1] != TOO_BIG)


def test_the_backend_fuzz_exercised_the_backend() -> None:
    """Guard against a fuzz that silently tests nothing: most accepted mutants must really run."""
    if not OUTCOMES:
        pytest.skip("the fuzz test did not run in this session")
    assert len(OUTCOMES) >= 15 and OUTCOMES.count("ran") >= 10, OUTCOMES


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(accepted_mutants(SOURCES), st.integers(0, 2**31 - 1))
def test_accepted_mutants_compile_and_run_in_c_slow(text: str, seed: int) -> None:
    if _accepted(text, MUTANT_PATH):
        assume(compile_and_run(text, seed) != TOO_BIG)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_sources(SOURCES))
def test_check_only_fuzz_never_crashes(text: str) -> None:
    """The fast path: the checker alone, on many more mutants; diagnostics only, never a crash."""
    for d in check_source(text, MUTANT_PATH):
        assert d.code != "E-INTERNAL" and d.message, d
