"""Print a whole `.snn` AST back as canonical source text (`snnc compile --emit snn`).

The output parses back to the same AST (spans aside), which the tests check for every example and
standard-library file; it is also what a formatter or an importer (NIR) can build on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from snnc.frontend import ast
from snnc.frontend.unparse import unparse

INDENT = "    "


def format_module(module: ast.Module) -> str:
    blocks = [_item(item) for item in module.items]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _item(item: ast.Item) -> str:
    if isinstance(item, ast.UseDecl):
        return _use(item)
    if isinstance(item, ast.ModelDecl):
        return _block(f"{item.kind} {item.name}", [_model_stmt(s) for s in item.body])
    if isinstance(item, ast.NetworkDecl):
        lines = [f"{p.role} {p.name} = {unparse(p.model)}" for p in item.populations]
        lines += [_connection(c) for c in item.connections]
        return _block(f"network {item.name}", lines)
    if isinstance(item, ast.TrainDecl):
        return _block(f"train {item.network}", [f"{s.key} = {unparse(s.value)}" for s in item.settings])
    raise TypeError(f"cannot format {type(item).__name__}")


def _block(head: str, lines: list[str]) -> str:
    if not lines:
        return f"{head} {{\n}}"
    body = "\n".join(INDENT + line for line in lines)
    return f"{head} {{\n{body}\n}}"


def _use(use: ast.UseDecl) -> str:
    module = use.module if use.module == "std" else _quote(use.module)
    if use.names is None:
        return f"use {module}" if use.module != "std" else "use std.*"
    if len(use.names) == 1:
        return f"use {module}.{use.names[0]}"
    return f"use {module}.{{{', '.join(use.names)}}}"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def _assigns(keyword: str, body: tuple[ast.AssignStmt, ...]) -> str:
    inner = "; ".join(f"{a.target} {a.op} {unparse(a.value)}" for a in body)
    return f"{keyword} {{ {inner} }}" if inner else f"{keyword} {{ }}"


def _kwargs(kwargs: tuple[ast.Keyword, ...]) -> str:
    return ", ".join(f"{k.name} = {unparse(k.value)}" for k in kwargs)


def _model_stmt(stmt: ast.ModelStmt) -> str:  # noqa: PLR0911 - one case per statement kind
    if isinstance(stmt, ast.ParamDecl):
        return f"param {stmt.name} = {unparse(stmt.value)}"
    if isinstance(stmt, ast.DerivedDecl):
        return f"derived {stmt.name} = {unparse(stmt.value)}"
    if isinstance(stmt, ast.StateDecl):
        return f"state {stmt.name}" + (f" = {unparse(stmt.value)}" if stmt.value is not None else "")
    if isinstance(stmt, ast.InputDecl):
        return f"input {stmt.name}" + (f" : {stmt.unit}" if stmt.unit else "")
    if isinstance(stmt, ast.OdeDecl):
        return f"d{stmt.state}/dt = {unparse(stmt.rhs)}"
    if isinstance(stmt, ast.SpikeDecl):
        return f"spike when {unparse(stmt.condition)}"
    if isinstance(stmt, ast.ResetDecl):
        return _assigns("reset", stmt.body)
    if isinstance(stmt, ast.OnPreDecl):
        return _assigns("on_pre", stmt.body)
    if isinstance(stmt, ast.OutputDecl):
        return f"output {'impulse ' if stmt.impulse else ''}{stmt.name}"
    if isinstance(stmt, ast.RefractoryDecl):
        return f"refractory = {unparse(stmt.period)}" + (" integrating" if stmt.integrates else "")
    if isinstance(stmt, ast.MethodDecl):
        return f"method = {stmt.method}" + (f"({_kwargs(stmt.kwargs)})" if stmt.kwargs else "")
    if isinstance(stmt, ast.GeneratorDecl):
        return f"generator {stmt.kind}"
    raise TypeError(f"cannot format {type(stmt).__name__}")


def _connection(conn: ast.ConnectionDecl) -> str:
    text = f"{conn.pre} -> {conn.post} : {unparse(conn.connectivity)}"
    return text + (f", {unparse(conn.synapse)}" if conn.synapse is not None else "")


def strip_spans(node: Any) -> Any:
    """The node with every span removed, so two parses of different text can be compared."""
    if isinstance(node, tuple):
        return tuple(strip_spans(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if f.name == "span" or f.name.endswith("_span"):
                changes[f.name] = None
            elif f.name == "path":
                changes[f.name] = ""
            else:
                changes[f.name] = strip_spans(value)
        return dataclasses.replace(node, **changes)
    return node
