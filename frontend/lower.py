"""Lowering: AST module -> Model IR `Network`, with all semantic checks (DESIGN.md §3).

The steps, in order, all reporting into one DiagnosticBag so a run shows every error it can find:
1. collect models: local declarations, `use` imports, the std prelude (`imports.py`);
2. lower every local model (`lower_model.py`), so errors in unused models are reported too;
3. pick the network and lower its populations and connections (`lower_network.py`);
4. lower the train blocks (`lower_train.py`);
5. whole-network checks: readouts/loss/algorithm, recurrence (`checks.py`).
Names from the user's file go into the IR unchanged; backends mangle them.
"""

from __future__ import annotations

import os

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.checks import (
    check_cycles,
    check_per_neuron_params,
    check_readout_windows,
    check_trainable_params,
    check_training,
)
from snnc.frontend.imports import ModelSource, resolve_uses, std_library
from snnc.frontend.lower_model import LoweredModel, lower_model
from snnc.frontend.lower_network import lower_connection, lower_population, projection_name
from snnc.frontend.lower_train import lower_train
from snnc.frontend.reserved_names import check_network_names
from snnc.ir import model as ir
from snnc.ir.diagnostics import DiagnosticBag, DiagnosticError, Span, did_you_mean


class ModelTable:
    """Finds models by name (local, then imported, then std prelude), lowers each once, records use."""

    def __init__(self, module: ast.Module, bag: DiagnosticBag, sources: dict[str, str]):
        self.bag = bag
        self.local: dict[str, ModelSource] = {}
        for item in module.items:
            if not isinstance(item, ast.ModelDecl):
                continue
            if item.name in self.local:
                prev = self.local[item.name].decl
                bag.error(
                    M.DUPLICATE,
                    f"model '{item.name}' is already defined",
                    item.name_span or item.span,
                    f"the first definition is at {prev.span}",
                )
                continue
            self.local[item.name] = ModelSource(item, module.path)
        self.imported = resolve_uses(module, bag, sources)
        for name, ms in self.imported.items():
            if name in self.local:
                decl = self.local[name].decl
                bag.error(
                    M.DUPLICATE,
                    f"model '{name}' is defined here and also imported",
                    decl.name_span or decl.span,
                    f"it is imported from {ms.source}; rename one of them",
                )
        self.lowered: dict[str, LoweredModel | None] = {}
        self.used: dict[str, LoweredModel] = {}

    def _find(self, name: str) -> ModelSource | None:
        if name.startswith("std."):  # `hidden h = std.LIF(10)` names a std model explicitly
            return std_library(self.bag).models.get(name[4:])
        if name in self.local:
            return self.local[name]
        if name in self.imported:
            return self.imported[name]
        return std_library(self.bag).models.get(name)

    def lowered_model(self, name: str) -> LoweredModel | None:
        if name not in self.lowered:
            ms = self._find(name)
            self.lowered[name] = None if ms is None else lower_model(ms.decl, self.bag, ms.source)
        return self.lowered[name]

    def get(self, name: str, span: Span | None, kind: str) -> LoweredModel | None:
        ms = self._find(name)
        if ms is None:
            known = set(self.local) | set(self.imported) | set(std_library(self.bag).models)
            self.bag.error(M.UNDEFINED, f"undefined {kind} model '{name}'", span, did_you_mean(name, known))
            return None
        lm = self.lowered_model(name)
        if lm is None:
            return None
        if lm.model.kind != kind:
            article = "an" if kind[0] in "aeiou" else "a"
            self.bag.error(
                M.MODEL_KIND,
                f"'{name}' is a {lm.model.kind} model, but {article} {kind} is needed here",
                span,
            )
            return None
        self.used.setdefault(lm.model.name, lm)
        return lm


def _pick_network(module: ast.Module, bag: DiagnosticBag, wanted: str | None) -> ast.NetworkDecl | None:
    nets: dict[str, ast.NetworkDecl] = {}
    for item in module.items:
        if isinstance(item, ast.NetworkDecl):
            if item.name in nets:
                bag.error(
                    M.DUPLICATE,
                    f"network '{item.name}' is already defined",
                    item.name_span or item.span,
                    f"the first definition is at {nets[item.name].span}",
                )
            else:
                nets[item.name] = item
    if wanted is not None:
        if wanted not in nets:
            bag.error(M.NETWORK, f"no network named '{wanted}'", None, did_you_mean(wanted, nets))
        return nets.get(wanted)
    if len(nets) > 1:
        bag.error(
            M.NETWORK,
            f"this file defines several networks ({', '.join(nets)}); choose one",
            list(nets.values())[1].span,
            "pass the network name, or put each network in its own file",
        )
        return None
    return next(iter(nets.values()), None)


def _trains(module: ast.Module, bag: DiagnosticBag) -> dict[str, ir.TrainSpec | None]:
    networks = {i.name for i in module.items if isinstance(i, ast.NetworkDecl)}
    out: dict[str, ir.TrainSpec | None] = {}
    spans: dict[str, Span] = {}
    for item in module.items:
        if not isinstance(item, ast.TrainDecl):
            continue
        where = item.name_span or item.span
        if item.network not in networks:
            bag.error(
                M.UNDEFINED,
                f"train names an undefined network '{item.network}'",
                where,
                did_you_mean(item.network, networks),
            )
        if item.network in spans:
            bag.error(
                M.DUPLICATE,
                f"network '{item.network}' has two train blocks",
                where,
                f"the first is at {spans[item.network]}",
            )
            continue
        spans[item.network] = item.span
        out[item.network] = lower_train(item, bag)
    return out


def _network(
    decl: ast.NetworkDecl, table: ModelTable, bag: DiagnosticBag, base_dir: str
) -> tuple[dict, dict]:
    check_network_names(decl, bag)
    pops: dict[str, ir.Population] = {}
    declared: dict[str, ast.PopulationDecl] = {}
    for p in decl.populations:
        if p.name in declared:
            bag.error(
                M.DUPLICATE,
                f"population '{p.name}' is already defined",
                p.name_span or p.span,
                f"the first definition is at {declared[p.name].span}",
            )
            continue
        declared[p.name] = p
        pop = lower_population(p, table, bag, base_dir)
        if pop is not None:
            pops[p.name] = pop
    projs: dict[str, ir.Projection] = {}
    for c in decl.connections:
        if c.pre in declared and c.pre not in pops or c.post in declared and c.post not in pops:
            continue  # an error in that population was already reported
        name = projection_name(c.pre, c.post, set(projs))
        proj = lower_connection(c, pops, table, bag, base_dir, name)
        if proj is not None:
            projs[name] = proj
    return pops, projs


def lower(
    module: ast.Module, *, sources: dict[str, str] | None = None, network: str | None = None
) -> ir.Network:
    """Lower a parsed module to the Model IR; raises DiagnosticError carrying every error found.

    A module with models and no network (a library) gives a Network named "" without populations.
    Warnings alone do not raise; `lower_collect` returns them. The error carries the source texts
    read (the module's, imported files', the std library's) in `.sources` for rendering.
    """
    net, bag, srcs = lower_collect(module, sources=sources, network=network)
    if bag.errors:
        raise DiagnosticError(bag.items, sources=srcs)
    assert net is not None
    return net


def lower_collect(
    module: ast.Module, *, sources: dict[str, str] | None = None, network: str | None = None
) -> tuple[ir.Network | None, DiagnosticBag, dict[str, str]]:
    """Like `lower`, but returns (network or None, all diagnostics, sources read) instead of raising."""
    bag = DiagnosticBag()
    srcs = dict(sources or {})
    table = ModelTable(module, bag, srcs)
    for name in table.local:
        table.lowered_model(name)
    for name, ms in table.imported.items():
        if ms.source != "std":
            table.lowered_model(name)
    std = std_library()
    srcs.update(std.sources)
    decl = _pick_network(module, bag, network)
    trains = _trains(module, bag)
    base_dir = os.path.dirname(module.path) if module.path and not module.path.startswith("<") else "."
    network_ok = True
    if decl is None:
        pops, projs, train, name, span = {}, {}, None, "", None
    else:
        before = len(bag.errors)
        pops, projs = _network(decl, table, bag, base_dir)
        network_ok = len(bag.errors) == before
        train, name, span = trains.get(decl.name), decl.name, decl.span
    dt = train.dt if train is not None else 1.0
    duration = train.duration if train is not None else 100.0
    net = ir.Network(
        name=name,
        models={n: lm.model for n, lm in table.used.items()},
        populations=pops,
        projections=projs,
        train=train,
        dt=dt,
        duration=duration,
        source_path=module.path,
        span=span,
    )
    if decl is not None and network_ok:
        # whole-network checks only on a complete network: a population dropped after an error
        # would otherwise show up again as "no readout", "no output" ...
        check_training(net, bag)
        check_cycles(net, bag)
        check_per_neuron_params(net, bag)
        check_trainable_params(net, bag)
        check_readout_windows(net, bag)
    return (None if bag.errors else net), bag, srcs


def lower_models(module: ast.Module, *, sources: dict[str, str] | None = None) -> dict[str, ir.Model]:
    """Every model the module defines or imports, lowered (raises DiagnosticError on errors)."""
    bag = DiagnosticBag()
    srcs = dict(sources or {})
    table = ModelTable(module, bag, srcs)
    out: dict[str, ir.Model] = {}
    for name in list(table.local) + list(table.imported):
        lm = table.lowered_model(name)
        if lm is not None:
            out[name] = lm.model
    if bag.errors:
        raise DiagnosticError(bag.items)
    return out
