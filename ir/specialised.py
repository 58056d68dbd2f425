"""The specialised stage: each population's and projection's step with its params replaced by numbers.

Populations override their model's params and projections their synapse's, so one model yields a
different step per population. The `specialise` pass computes these once (DESIGN.md §5); every later
stage and every backend reads them here instead of substituting params itself. A param that training
changes (an e-prop output bias) is kept as a symbol, and so is every derived param that uses it.
A param given one value per neuron (`tau_mem = Uniform(10 ms, 30 ms)`) stays a symbol too, and the
derived params that use it become per-neuron values computed once per trial (`per_neuron_derived`),
not in every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .model import Assign

Expr = sympy.Expr


@dataclass(frozen=True)
class SpecialisedPopulation:
    name: str
    model: str
    values: tuple[tuple[str, Expr], ...]  # params then derived params, in order: a number, or an
    # expression over `kept` params
    kept: tuple[str, ...]  # params left symbolic because training changes them
    temps: tuple[tuple[str, Expr], ...]
    update: tuple[Assign, ...]  # simultaneous, op "="
    spike: sympy.Basic | None
    reset: tuple[Assign, ...]
    refractory_steps: int
    refractory_integrates: bool
    #: params with one value per neuron (an array), and the derived params computed from them once
    #: per trial, in order (expressions over those params and earlier ones); both stay symbols in
    #: the step
    per_neuron: tuple[str, ...] = ()
    per_neuron_derived: tuple[tuple[str, Expr], ...] = ()
    shared: tuple[str, ...] = ()  # of `per_neuron`: trained params with one value (an array of 1)

    def value(self, name: str) -> Expr:
        return dict(self.values)[name]


@dataclass(frozen=True)
class SpecialisedProjection:
    name: str
    synapse: str
    values: tuple[tuple[str, Expr], ...]
    delay_steps: int
    on_pre: tuple[Assign, ...]  # may use `w`
    output: Expr | None  # over the synapse's states
    temps: tuple[tuple[str, Expr], ...]
    update: tuple[Assign, ...]
    impulse: bool
    per_neuron: tuple[str, ...] = ()  # synapse params with one value per post neuron
    per_neuron_derived: tuple[tuple[str, Expr], ...] = ()
    shared: tuple[str, ...] = ()  # of `per_neuron`: trained params with one value (an array of 1)
    #: trainable per-connection delays: the longest in steps (`delay_steps` is then 0), else None
    max_delay_steps: int | None = None

    def value(self, name: str) -> Expr:
        return dict(self.values)[name]


@dataclass(frozen=True)
class Specialisation:
    """`Network.specialised`: every population with a discrete model, and every projection."""

    populations: dict[str, SpecialisedPopulation]
    projections: dict[str, SpecialisedProjection]
