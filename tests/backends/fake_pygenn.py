"""A recording stand-in for pygenn's model-building API (no simulation), to check the wiring of a
generated module without GeNN: every var gets an initial value, every reference names a var that
exists on its target with the same type, every target input var exists. Installed only inside a
test (monkeypatched into sys.modules), never when the real pygenn imports."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any


class _Enum:
    def __getattr__(self, name: str) -> str:
        return name


VarAccess = _Enum()
VarAccessMode = _Enum()
CustomUpdateVarAccess = _Enum()


@dataclass
class FakeModel:
    kind: str
    name: str
    kwargs: dict[str, Any]

    def names(self, key: str) -> dict[str, str]:
        out = {}
        for item in self.kwargs.get(key, []):
            out[item[0]] = item[1]
        return out


def _factory(kind: str):  # noqa: ANN202
    def make(name: str, **kwargs: Any) -> FakeModel:
        return FakeModel(kind, name, kwargs)

    return make


create_neuron_model = _factory("neuron")
create_postsynaptic_model = _factory("postsynaptic")
create_weight_update_model = _factory("weight_update")
create_custom_update_model = _factory("custom_update")


@dataclass
class Ref:
    target: Any
    var: str
    kind: str


def create_var_ref(target: Any, var: str) -> Ref:
    return Ref(target, var, "var")


def create_psm_var_ref(target: Any, var: str) -> Ref:
    return Ref(target, var, "psm")


def create_wu_var_ref(target: Any, var: str) -> Ref:
    return Ref(target, var, "wu")


def init_postsynaptic(model: FakeModel, params=None, vars=None, var_refs=None):  # noqa: A002, ANN001, ANN201
    return ("psm", model, params or {}, vars or {}, var_refs or {})


def init_weight_update(
    model, params=None, vars=None, pre_vars=None, post_vars=None, pre_var_refs=None, post_var_refs=None
):  # noqa: A002, ANN001, ANN201, E501
    return ("wum", model, params or {}, vars or {}, pre_vars or {}, post_var_refs or {})


def init_var(snippet: str, params: dict) -> tuple:
    return ("init_var", snippet, params)


def init_sparse_connectivity(snippet: str, params: dict) -> tuple:
    return ("sparse", snippet, params)


class _EGP:
    view = None

    def __init__(self) -> None:
        self.values = None

    def set_init_values(self, values: Any) -> None:
        self.values = values


@dataclass
class NeuronPop:
    name: str
    size: int
    model: FakeModel
    params: dict
    vars: dict
    spike_recording_enabled: bool = False
    extra_global_params: dict = field(default_factory=dict)


@dataclass
class SynapsePop:
    name: str
    matrix_type: str
    pre: NeuronPop
    post: NeuronPop
    wum: tuple
    psm: tuple
    connectivity: Any
    post_target_var: str = "Isyn"
    pre_target_var: str = "Isyn"
    axonal_delay_steps: int = 0
    max_dendritic_delay_timesteps: int | None = None
    sparse: tuple | None = None

    def set_sparse_connections(self, pre: Any, post: Any) -> None:
        self.sparse = (pre, post)


@dataclass
class CustomUpdate:
    name: str
    group: str
    model: FakeModel
    params: dict
    vars: dict
    var_refs: dict

    def set_param_dynamic(self, name: str) -> None:
        assert name in self.model.names("params"), f"{self.name}: no param {name} to make dynamic"


class GeNNModel:
    def __init__(self, precision: str, name: str, backend: str | None = None) -> None:
        self.precision, self.name, self.backend = precision, name, backend
        self.neurons: dict[str, NeuronPop] = {}
        self.synapses: dict[str, SynapsePop] = {}
        self.updates: dict[str, CustomUpdate] = {}

    def add_neuron_population(self, name, size, model, params, vars):  # noqa: A002, ANN001, ANN201
        pop = NeuronPop(name, size, model, params, vars)
        pop.extra_global_params = {n: _EGP() for n in model.names("extra_global_params")}
        self.neurons[name] = pop
        return pop

    def add_synapse_population(self, name, matrix_type, pre, post, wum, psm, connectivity=None):  # noqa: ANN001, ANN201
        sg = SynapsePop(name, matrix_type, pre, post, wum, psm, connectivity)
        sg.vars = {v: types.SimpleNamespace(extra_global_params={"kernel": _EGP()}) for v in wum[3]}
        self.synapses[name] = sg
        return sg

    def add_custom_update(self, name, group, model, params, vars, var_refs):  # noqa: A002, ANN001, ANN201
        cu = CustomUpdate(name, group, model, params, vars, var_refs)
        self.updates[name] = cu
        return cu


def install(monkeypatch) -> None:  # noqa: ANN001
    module = types.ModuleType("pygenn")
    for key, value in dict(globals()).items():
        if not key.startswith("_"):
            setattr(module, key, value)
    monkeypatch.setitem(__import__("sys").modules, "pygenn", module)
