"""The GeNN-facing description of one generated model: name, kind, variables and code strings.

Renderers fill `GeNNModelSpec`s; the template writes each one as a `create_*_model(...)` call. Code
strings are plain text already printed (`kernel_printer.GeNNExprPrinter`); the template never decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: pygenn factory per model kind
FACTORIES = {
    "neuron": "create_neuron_model",
    "postsynaptic": "create_postsynaptic_model",
    "weight_update": "create_weight_update_model",
    "custom_update": "create_custom_update_model",
}


@dataclass
class Var:
    """A GeNN variable (or var ref / EGP): name, GeNN type and optional access mode (Python source)."""

    name: str
    type: str = "scalar"
    access: str | None = None  # e.g. "VarAccess.READ_ONLY", "VarAccessMode.REDUCE_SUM"

    def as_source(self) -> str:
        if self.access is None:
            return f"({self.name!r}, {self.type!r})"
        return f"({self.name!r}, {self.type!r}, {self.access})"


@dataclass
class GeNNModelSpec:
    """One `create_*_model` call. `source` names the IR entity the model was generated from."""

    kind: str  # a key of FACTORIES
    class_name: str
    source: str
    params: list[Var] = field(default_factory=list)
    vars: list[Var] = field(default_factory=list)
    pre_vars: list[Var] = field(default_factory=list)
    post_vars: list[Var] = field(default_factory=list)
    var_refs: list[Var] = field(default_factory=list)
    neuron_var_refs: list[Var] = field(default_factory=list)  # postsynaptic models
    pre_neuron_var_refs: list[Var] = field(default_factory=list)
    post_neuron_var_refs: list[Var] = field(default_factory=list)
    extra_global_params: list[Var] = field(default_factory=list)
    additional_input_vars: list[tuple[str, str, float]] = field(default_factory=list)
    code: dict[str, str] = field(default_factory=dict)  # keyword (sim_code, ...) -> code string

    @property
    def factory(self) -> str:
        return FACTORIES[self.kind]

    def keyword_lists(self) -> list[tuple[str, str]]:
        """(keyword, Python source of the list) for every non-empty variable list, in a fixed order."""
        out = []
        for key in (
            "params",
            "vars",
            "pre_vars",
            "post_vars",
            "var_refs",
            "neuron_var_refs",
            "pre_neuron_var_refs",
            "post_neuron_var_refs",
            "extra_global_params",
        ):
            items: list[Var] = getattr(self, key)
            if items:
                out.append((key, "[" + ", ".join(v.as_source() for v in items) + "]"))
        if self.additional_input_vars:
            src = ", ".join(f"({n!r}, {t!r}, {v!r})" for n, t, v in self.additional_input_vars)
            out.append(("additional_input_vars", f"[{src}]"))
        return out

    def code_items(self) -> list[tuple[str, str]]:
        for key, text in self.code.items():
            if '"""' in text or "\\" in text:
                raise ValueError(f"code string {key} of {self.class_name} cannot be triple-quoted")
        return [(k, v) for k, v in self.code.items() if v.strip()]
