"""Check a generated pygenn module without pygenn: Python syntax, and every GeNN code string as C.

Each `create_*_model(...)` call of the module is read back with `ast` (its variable lists are
literals by construction) and each code string is wrapped in a C function that declares what GeNN
would provide: the model's params, vars, var refs, EGPs and additional inputs, GeNN's own names
(`t`, `dt`, `id`, `batch`, `inSyn`, `Isyn`, `id_pre`, `id_post`) and its functions (`injectCurrent`,
`addToPost`, `addToPre`, `gennrand_*`). The whole file goes through `cc -fsyntax-only` with implicit
declarations as errors, so an unknown function or an undeclared name fails the test.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

FACTORIES = {
    "create_neuron_model",
    "create_postsynaptic_model",
    "create_weight_update_model",
    "create_custom_update_model",
}
CODE_KEYS = {
    "sim_code",
    "threshold_condition_code",
    "reset_code",
    "pre_spike_syn_code",
    "post_spike_syn_code",
    "synapse_dynamics_code",
    "pre_spike_code",
    "post_spike_code",
    "pre_dynamics_code",
    "post_dynamics_code",
    "update_code",
}
VAR_KEYS = (
    "params",
    "vars",
    "pre_vars",
    "post_vars",
    "var_refs",
    "neuron_var_refs",
    "pre_neuron_var_refs",
    "post_neuron_var_refs",
    "extra_global_params",
    "additional_input_vars",
)

PRELUDE = """
#include <math.h>
#include <stdint.h>
typedef float scalar;
static scalar gennrand_uniform(void) { return 0.5f; }
static scalar gennrand_normal(void) { return 0.0f; }
static scalar gennrand_exponential(void) { return 1.0f; }
static void injectCurrent(scalar x) { (void)x; }
static void addToPost(scalar x) { (void)x; }
static void addToPre(scalar x) { (void)x; }
static void addToPostDelay(scalar x, unsigned int d) { (void)x; (void)d; }
"""


@dataclass
class ModelCall:
    variable: str
    factory: str
    decls: list[tuple[str, str]] = field(default_factory=list)  # (name, GeNN type)
    code: dict[str, str] = field(default_factory=dict)


def _tuple_items(node: ast.AST) -> list[tuple[str, str]]:
    """[(name, type), ...] from a literal list of tuples whose third element may be an enum."""
    out = []
    assert isinstance(node, ast.List), ast.dump(node)
    for elt in node.elts:
        if isinstance(elt, ast.Constant):  # a bare name means type scalar
            out.append((elt.value, "scalar"))
            continue
        assert isinstance(elt, ast.Tuple)
        name, typ = (ast.literal_eval(e) for e in elt.elts[:2])
        out.append((name, typ))
    return out


def model_calls(source: str) -> list[ModelCall]:
    tree = ast.parse(source)
    calls = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        func = node.value.func
        if not (isinstance(func, ast.Name) and func.id in FACTORIES):
            continue
        call = ModelCall(node.targets[0].id, func.id)
        for kw in node.value.keywords:
            if kw.arg in VAR_KEYS:
                call.decls += _tuple_items(kw.value)
            elif kw.arg in CODE_KEYS:
                call.code[kw.arg] = ast.literal_eval(kw.value)
            else:
                raise AssertionError(f"unexpected keyword {kw.arg} in {call.variable}")
        calls.append(call)
    return calls


def _ctype(typ: str) -> str:
    return typ.replace("scalar*", "scalar*")


def c_source(calls: list[ModelCall]) -> str:
    parts = [PRELUDE]
    for call in calls:
        code_items = dict(call.code)
        if "reset_code" in code_items:
            # GeNN runs the reset code inside the sim code's scope: check them together, where a
            # second declaration of a name is an error (-Werror=shadow)
            sim = code_items.pop("sim_code", "")
            code_items["sim_code+reset_code"] = sim + "\n    {\n" + code_items.pop("reset_code") + "\n    }"
        for key, code in code_items.items():
            body = [
                "    const scalar t = 0.0f, dt = 0.1f; const unsigned int id = 0, batch = 0, id_pre = 0, id_post = 0;",
                "    scalar inSyn = 0.0f, Isyn = 0.0f; (void)t; (void)dt; (void)id; (void)batch; (void)id_pre;",
                "    (void)id_post; (void)inSyn; (void)Isyn;",
            ]
            for name, typ in call.decls:
                if "*" not in typ and re.search(rf"\b{name}\[", code):  # a delayed var ref: var[d]
                    body.append(f"    {_ctype(typ)} {name}[64] = {{0}}; (void){name};")
                else:
                    body.append(f"    {_ctype(typ)} {name} = 0; (void){name};")
            if key == "threshold_condition_code":
                body.append(f"    int snnc_cond = ({code.strip()}); (void)snnc_cond;")
            else:
                body.append("    {\n" + code + "\n    }")
            fname = f"check_{call.variable}_{key.replace('+', '_')}"
            parts.append(f"/* {call.variable}.{key} */\nvoid {fname}(void) {{\n" + "\n".join(body) + "\n}\n")
    return "\n".join(parts)


def check_c(calls: list[ModelCall], workdir: Path) -> None:
    """Compile every code string; raise AssertionError with the compiler's message on failure."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler"
    path = workdir / "genn_code_strings.c"
    path.write_text(c_source(calls))
    proc = subprocess.run(
        [
            cc,
            "-fsyntax-only",
            "-std=c99",
            "-Werror=implicit-function-declaration",
            "-Werror=shadow",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def ttfs_regularised_source() -> str:
    """examples/yinyang_eventprop.snn turned into a first-spike-time readout with relative_mse and
    an upper spike-count regulariser: the EventProp paths the plain example does not reach."""
    root = Path(__file__).resolve().parents[2]
    src = (root / "examples" / "yinyang_eventprop.snn").read_text()
    src = src.replace("max_spikes = 500)", "max_spikes = 50, reg_lambda_upper = 1e-9, reg_nu_upper = 1)")
    src = src.replace("loss       = sparse_categorical_crossentropy", "loss = relative_mse(delta = 1.0)")
    return src.replace(
        "LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)",
        "LIF(3, readout = first_spike_time)",
    )
