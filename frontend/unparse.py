"""Print an AST expression back as source text, so that messages can quote what the user wrote."""

from __future__ import annotations

from snnc.frontend import ast

_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "^": 8, "**": 8}


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.BoolOp):
        return _PREC[e.op]
    if isinstance(e, ast.Compare):
        return _PREC["cmp"]
    if isinstance(e, ast.BinOp):
        return _PREC.get(e.op, 5)
    if isinstance(e, ast.UnaryOp):
        return _PREC["not"] if e.op == "not" else _PREC["neg"]
    return 99


def _wrap(e: ast.Expr, parent: int, right: bool = False) -> str:
    text = unparse(e)
    p = _prec(e)
    return f"({text})" if p < parent or (right and p == parent) else text


def _number(n: ast.Number) -> str:
    v = n.value
    text = str(int(v)) if n.is_int and abs(v) < 1e15 else repr(float(v))
    return f"{text} {n.unit}" if n.unit else text


def unparse(e: ast.Expr) -> str:
    """Source-like text of an expression (normalised spacing, parentheses only where needed)."""
    if isinstance(e, ast.Number):
        return _number(e)
    if isinstance(e, ast.String):
        return repr(e.value).replace("'", '"')
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return f"{unparse(e.value)}.{e.attr}"
    if isinstance(e, ast.UnaryOp):
        p = _prec(e)
        sep = " " if e.op == "not" else ""
        return f"{e.op}{sep}{_wrap(e.operand, p)}"
    if isinstance(e, ast.BinOp | ast.Compare | ast.BoolOp):
        p = _prec(e)
        power = isinstance(e, ast.BinOp) and e.op in ("^", "**")
        left = _wrap(e.left, p + 1 if power else p)
        right = _wrap(e.right, p if power else p, right=not power)
        return f"{left} {e.op} {right}"
    if isinstance(e, ast.Call):
        parts = [unparse(a) for a in e.args] + [f"{k.name} = {unparse(k.value)}" for k in e.kwargs]
        return f"{e.func}({', '.join(parts)})"
    if isinstance(e, ast.Tuple):
        return f"({', '.join(unparse(i) for i in e.items)})"
    return "<?>"
