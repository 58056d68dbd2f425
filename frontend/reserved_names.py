"""E-RESERVED-NAME: user names stay out of the namespace reserved for generated names (issue 13).

Every name a user declares (model, param, derived param, state, input, network, population) may
reach the IR or generated code, where passes and backends add names of their own (`__lambda__v`,
`i__x_to_h`, `p_h__v`). Those all contain `__` or begin with `_` (see `snnc.ir.names`), so refusing
such user names here, once, guarantees that no generated name can ever equal a user's.
"""

from __future__ import annotations

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.ir.diagnostics import DiagnosticBag, Span
from snnc.ir.names import suggest_user_name, user_name_problem

_WHAT = {
    ast.ParamDecl: "param",
    ast.DerivedDecl: "derived param",
    ast.StateDecl: "state",
    ast.InputDecl: "input",
}


def check_user_name(name: str, what: str, span: Span | None, bag: DiagnosticBag) -> bool:
    """Report `name` (a declared `what`) if it lies in the reserved namespace; True when it is fine."""
    why = user_name_problem(name)
    if why is None:
        return True
    bag.error(
        M.RESERVED_NAME,
        f"{what} name '{name}' is reserved for names the compiler generates",
        span,
        f"{why}; rename '{name}', e.g. to '{suggest_user_name(name)}'",
    )
    return False


def check_model_names(decl: ast.ModelDecl, bag: DiagnosticBag) -> None:
    """The model's own name and every name its body declares."""
    check_user_name(decl.name, f"{decl.kind} model", decl.name_span or decl.span, bag)
    for s in decl.body:
        what = _WHAT.get(type(s))
        if what is not None:
            check_user_name(s.name, what, getattr(s, "name_span", None) or s.span, bag)


def check_network_names(decl: ast.NetworkDecl, bag: DiagnosticBag) -> None:
    """The network's name and its populations' (projection names are built from these)."""
    check_user_name(decl.name, "network", decl.name_span or decl.span, bag)
    for p in decl.populations:
        check_user_name(p.name, "population", p.name_span or p.span, bag)
