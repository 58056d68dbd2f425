"""A slow, plain reference interpreter of the kernel IR, for tests: it gives the kernel's statements
their meaning without any backend, so a schedule pass can be checked against a backend's results.

One batch row at a time, each statement's expression compiled once with `sympy.lambdify`; arrival
and synapse loops know dense, sparse and one-to-one connectivity, generators know `spike_source`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy
from snnc.ir.kernel import (
    BATCH,
    BATCH_SIZE,
    NUM_STEPS,
    STEP,
    Arrivals,
    Elements,
    EmitSpikes,
    Events,
    Generate,
    If,
    Kernel,
    Let,
    Loop,
    Neurons,
    PostSynapses,
    Role,
    Row,
    Spikes,
    Store,
    Synapses,
)


class _Compiled:
    """An expression as a function of (env, arrays): Indexed reads resolved at call time."""

    def __init__(self, expr: sympy.Basic) -> None:
        refs = sorted(expr.atoms(sympy.Indexed), key=str)
        self.dummies = [sympy.Dummy() for _ in refs]
        body = expr.xreplace(dict(zip(refs, self.dummies, strict=True)))
        self.symbols = sorted(body.free_symbols - set(self.dummies), key=str)
        self.fn = sympy.lambdify(
            self.dummies + self.symbols, body, modules=["math", {"Max": max, "Min": min}]
        )
        self.refs = [(str(r.base.label), [_index_fn(i) for i in r.indices]) for r in refs]

    def __call__(self, env: dict, arrays: dict[str, np.ndarray]) -> Any:
        reads = [arrays[name][tuple(f(env, arrays) for f in idx)] for name, idx in self.refs]
        return self.fn(*reads, *(env[s] for s in self.symbols))


def _index_fn(index: sympy.Expr) -> Callable[[dict, dict], int]:
    """An index as a function of (env, arrays); an index may read an array (`pos[q]`)."""
    if index.atoms(sympy.Indexed):
        inner = _Compiled(index)
        return lambda env, arrays: int(inner(env, arrays))
    symbols = sorted(index.free_symbols, key=str)
    fn = sympy.lambdify(symbols, index, modules="math")
    return lambda env, arrays: int(fn(*(env[s] for s in symbols)))


class Interpreter:
    def __init__(self, kernel: Kernel, arrays: dict[str, np.ndarray]) -> None:
        self.kernel = kernel
        self.arrays = arrays
        self.cache: dict[int, Any] = {}
        self.spikes: dict[tuple[str, int, int], list[int]] = {}  # (population, row, step) -> ids

    def compiled(self, expr: sympy.Basic) -> _Compiled:
        key = id(expr)
        if key not in self.cache:
            self.cache[key] = (_Compiled(expr), expr)  # keep expr alive so its id stays unique
        return self.cache[key][0]

    def run(
        self,
        entry: str,
        rows: int,
        steps: int,
        inputs: dict[str, list[tuple[np.ndarray, np.ndarray]]],
        seed: int = 0,
    ) -> None:
        """`inputs`: population -> per row (times in ms, neuron ids) of its spike source, or per row
        the rates (Hz) of a Poisson population; `seed` keys the Poisson draws as the C kernel's."""
        self.seed = seed
        e = next(x for x in self.kernel.entries if x.name == entry)
        self.inputs = inputs
        for name in e.prepare:  # once for the batch, before the first row
            self.body(self.kernel.phase(name).body, {NUM_STEPS: steps, BATCH_SIZE: rows})
        for b in range(rows):
            env = {BATCH: b, NUM_STEPS: steps, BATCH_SIZE: rows}
            for name in e.before:
                self.body(self.kernel.phase(name).body, env)
            order = range(steps) if e.steps == "forward" else range(steps - 1, -1, -1)
            for k in order:
                env[STEP] = k
                for name in e.per_step:
                    self.body(self.kernel.phase(name).body, env)
            env.pop(STEP, None)
            for name in e.after:
                self.body(self.kernel.phase(name).body, env)

    def body(self, body: tuple, env: dict) -> None:
        env = dict(env)
        for st in body:
            if isinstance(st, Let):
                env[st.local] = self.compiled(st.expr)(env, self.arrays)
            elif isinstance(st, Store):
                value = self.compiled(st.expr)(env, self.arrays)
                name = st.target.array
                if name not in self.arrays:  # an optional array the run did not ask for
                    continue
                idx = tuple(_index_fn(i)(env, self.arrays) for i in st.target.indices)
                target = self.arrays[name]
                if len(idx) == 1 and target.ndim > 1:  # one flat offset (`trial_element`)
                    target = target.reshape(-1)
                target[idx] = value if st.op == "=" else target[idx] + value
            elif isinstance(st, If):
                self.body(st.body if self.compiled(st.cond)(env, self.arrays) else st.orelse, env)
            elif isinstance(st, Loop):
                points = list(self.points(st, env))
                inner = dict(env)
                if points and st.prologue:  # once, before the first point; its locals reach the body
                    inner = self.body(st.prologue, inner)
                for point in points:
                    self.body(st.body, {**inner, **point})
            elif isinstance(st, EmitSpikes):
                flags = self.arrays[st.flag][env[BATCH]]
                self.spikes[(st.population, env[BATCH], env[STEP])] = [int(j) for j in np.nonzero(flags)[0]]
            elif isinstance(st, Generate):
                self.generate(st, env)
            else:
                raise TypeError(type(st).__name__)
        return env

    def generate(self, st: Generate, env: dict) -> None:
        if st.kind == "poisson":  # the C kernel's counter-based draw, bit for bit
            b, k = env[BATCH], env[STEP]
            rates = self.inputs[st.population][b]
            example = int(self.arrays["q_example"][b]) if "q_example" in self.arrays else b
            self.spikes[(st.population, b, k)] = [
                j
                for j, rate in enumerate(rates)
                if _uniform(self.seed, example, j, k) < float(rate) * self.kernel.dt * 0.001
            ]
            return
        assert st.kind == "spike_source"
        times, ids = self.inputs[st.population][env[BATCH]]
        k, dt = env[STEP], self.kernel.dt
        hit = (times <= k * dt + 1e-6 * dt) & (times > (k - 1) * dt + 1e-6 * dt)
        self.spikes[(st.population, env[BATCH], k)] = sorted({int(i) for i in ids[hit]})

    def points(self, loop: Loop, env: dict):  # noqa: ANN201
        space, v = loop.space, loop.vars
        if isinstance(space, Neurons):
            for j in range(self.kernel.populations[space.population]):
                yield {v["j"]: j}
        elif isinstance(space, Spikes):
            step = self.compiled(space.step)(env, self.arrays)
            for i in self.spikes.get((space.population, env[BATCH], step), []):
                yield {v["i"]: i}
        elif isinstance(space, Arrivals):
            info = self.kernel.projections[space.projection]
            src = env[STEP] - 1 - info.delay_steps
            for i in self.spikes.get((info.pre, env[BATCH], src), []):
                for j, q in self.targets(space.projection, info, i):
                    yield {v["i"]: i, v["j"]: j, v["q"]: q}
        elif isinstance(space, Events):  # the spike list's slots of that step, newest first
            step = self.compiled(space.step)(env, self.arrays)
            lists = {
                a.var: self.arrays[a.name]
                for a in self.kernel.arrays
                if a.owner == space.population and a.role in (Role.SPIKE_LIST, Role.COUNTER, Role.INPUT)
            }
            b = env[BATCH]
            filled = min(int(lists["length"][b]), int(lists["capacity"][0]))
            for c in range(filled - 1, -1, -1):
                if int(lists["step"][b, c]) == step:
                    yield {v["e"]: c, v["i"]: int(lists["id"][b, c])}
        elif isinstance(space, Row):
            info = self.kernel.projections[space.projection]
            i = self.compiled(space.pre)(env, self.arrays)
            for j, q in self.targets(space.projection, info, int(i)):
                yield {v["j"]: j, v["q"]: q}
        elif isinstance(space, Elements):  # one trial's row of the array, flat
            array = self.arrays.get(space.array)
            if array is None:  # an optional array the run did not ask for
                return
            batched = next(a for a in self.kernel.arrays if a.name == space.array).shape[:1] == ("batch",)
            for q in range(int(np.prod(array.shape[1:] if batched else array.shape))):
                yield {v["q"]: q}
        elif isinstance(space, PostSynapses):
            ptr, pre, slot = (self.arrays[n] for n in (space.ptr, space.pre, space.slot))
            for j in range(ptr.size - 1):
                for s in range(int(ptr[j]), int(ptr[j + 1])):
                    yield {v["i"]: int(pre[s]), v["j"]: j, v["q"]: int(slot[s]), v["s"]: s}
        elif isinstance(space, Synapses):
            info = self.kernel.projections[space.projection]
            for i in range(self.kernel.populations[info.pre]):
                for j, q in self.targets(space.projection, info, i):
                    yield {v["i"]: i, v["j"]: j, v["q"]: q}
        else:
            raise TypeError(type(space).__name__)

    def targets(self, projection: str, info: Any, i: int):  # noqa: ANN201
        n_post = self.kernel.populations[info.post]
        if info.layout == "dense":
            return [(j, i * n_post + j) for j in range(n_post)]
        if info.layout == "one_to_one":
            return [(i, i)]
        if info.layout == "csr":
            rp, ci = self.arrays[f"c_{projection}__row_ptr"], self.arrays[f"c_{projection}__col_idx"]
            return [(int(ci[q]), q) for q in range(rp[i], rp[i + 1])]
        if info.layout == "window":
            return _window_targets(info.kind, info.geometry, i)
        raise NotImplementedError(info.kind)


def _window_targets(kind: str, g: dict[str, int], i: int) -> list[tuple[int, int]]:
    """Every output (j, weight slot q) whose window holds pre (y, x, c) of an (H, W, C) image."""
    c, x, y = i % g["C"], (i // g["C"]) % g["W"], i // (g["C"] * g["W"])
    out = []
    for ky in range(g["KH"]):
        ny = y + g["PAD_T"] - ky
        if ny < 0 or ny % g["STRIDE"] or ny // g["STRIDE"] >= g["OH"]:
            continue
        for kx in range(g["KW"]):
            nx = x + g["PAD_L"] - kx
            if nx < 0 or nx % g["STRIDE"] or nx // g["STRIDE"] >= g["OW"]:
                continue
            oy, ox = ny // g["STRIDE"], nx // g["STRIDE"]
            if kind == "conv2d":
                for f in range(g["F"]):
                    out.append(
                        ((oy * g["OW"] + ox) * g["F"] + f, ((ky * g["KW"] + kx) * g["C"] + c) * g["F"] + f)
                    )
            else:
                out.append(((oy * g["OW"] + ox) * g["C"] + c, 0))
    return out


_M64 = (1 << 64) - 1


def _mix(z: int) -> int:
    """splitmix64's finaliser, as `snnc_mix` in the C kernel."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _uniform(seed: int, example: int, neuron: int, step: int) -> float:
    h = _mix(seed ^ _mix(example ^ _mix(neuron ^ _mix(step))))
    return (h >> 11) * (1.0 / 9007199254740992.0)
