"""Parse `.snn` text into the AST (`frontend/ast.py`), reporting every failure as a `DiagnosticError`.

The grammar lives in `snn.lark` (LALR, contextual lexer). A small postlexer drops newlines inside
brackets, checks that brackets balance and bounds their nesting; `syntax_errors.py` turns lark's
errors into sentences; `ToAst` builds frozen dataclasses with spans, one method per grammar rule.
No lark or Python exception leaves `parse`: user mistakes become diagnostics.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from snnc.frontend import ast
from snnc.frontend.syntax_errors import ErrorSite, explain
from snnc.ir.diagnostics import Diagnostic, DiagnosticError, Span

from snnc.cache import cache_dir

#: deepest bracket nesting and expression tree depth accepted (keeps every later recursion safe)
MAX_NESTING = 200
#: largest source accepted; `.snn` files describe models, not data
MAX_SOURCE_BYTES = 256 * 1024

_OPEN = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
_CLOSE = {"RPAR": "(", "RSQB": "[", "RBRACE": "{"}


# --------------------------------------------------------------------------------------------------
# Postlexer: newlines inside brackets, bracket balance, nesting bound
# --------------------------------------------------------------------------------------------------


class _BracketState:
    """What the postlexer knows at the point of an error: open brackets and the last real token."""

    def __init__(self) -> None:
        self.stack: list[Token] = []
        self.depth = 0  # open ( and [ only: braces nest at most twice in valid code
        self.last: Token | None = None


class _PostLexer:
    """Drops `_NL` inside (...) and [...]; raises diagnostics for unbalanced or too-deep brackets."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.path = "<string>"
        self.state = _BracketState()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        state = self.state
        for tok in stream:
            kind = tok.type
            if kind in _OPEN:
                state.stack.append(tok)
                state.depth += kind != "LBRACE"
                if state.depth > MAX_NESTING:
                    raise DiagnosticError(
                        Diagnostic(
                            "E-NESTING",
                            f"expression nested too deeply (more than {MAX_NESTING} levels of parentheses)",
                            _tok_span(tok, self.path),
                            "split the expression using `derived` values",
                        )
                    )
            elif kind in _CLOSE:
                self._close(tok)
            elif kind == "_NL":
                if state.stack and state.stack[-1].type != "LBRACE" and ";" not in tok.value:
                    continue
                yield tok
                continue
            state.last = tok
            yield tok

    def _close(self, tok: Token) -> None:
        stack = self.state.stack
        if not stack:
            raise DiagnosticError(
                Diagnostic(
                    "E-UNBALANCED",
                    f"unbalanced '{tok.value}'",
                    _tok_span(tok, self.path),
                    "nothing is open here",
                )
            )
        opener = stack[-1]
        if opener.type == "LBRACE" and tok.type != "RBRACE":
            raise DiagnosticError(
                Diagnostic(
                    "E-UNBALANCED",
                    f"unbalanced '{tok.value}': no '{_CLOSE[tok.type]}' is open here",
                    _tok_span(tok, self.path),
                )
            )
        if _CLOSE[tok.type] != opener.value:
            raise DiagnosticError(
                Diagnostic(
                    "E-UNBALANCED",
                    f"expected '{_OPEN[opener.type]}' to close the '{opener.value}' opened at "
                    f"{opener.line}:{opener.column}, found '{tok.value}'",
                    _tok_span(tok, self.path),
                )
            )
        stack.pop()
        self.state.depth -= tok.type != "RBRACE"


# --------------------------------------------------------------------------------------------------
# Tree -> AST
# --------------------------------------------------------------------------------------------------


def _tok_span(tok: Token, path: str) -> Span:
    return Span(path, tok.line, tok.column, tok.end_line, tok.end_column)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "0": "\0"}
_ODE = re.compile(r"d([A-Za-z_][A-Za-z0-9_]*)")
_BINOPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}
_COMPARES = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


@v_args(meta=True)
class ToAst(Transformer_NonRecursive):
    """One method per grammar rule; expression depth is bounded so later passes never recurse too far."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._depth: dict[int, int] = {}

    # -- helpers -----------------------------------------------------------------------------------
    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.path, 1, 1)
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return _tok_span(tok, self.path)

    def _expr(self, node, *children):
        depth = 1 + max((self._depth.get(id(c), 1) for c in children), default=0)
        if depth > MAX_NESTING:
            raise DiagnosticError(
                Diagnostic(
                    "E-NESTING",
                    f"expression nested too deeply (more than {MAX_NESTING} levels)",
                    node.span,
                    "split the expression using `derived` values",
                )
            )
        self._depth[id(node)] = depth
        return node

    @staticmethod
    def _present(children) -> list:
        return [c for c in children if c is not None]

    # -- file and imports --------------------------------------------------------------------------
    def start(self, meta, children):
        return ast.Module(tuple(self._present(children)), self.path)

    def dotted(self, meta, children):
        if len(children) == 1:
            return [children[0]]
        return [*children[0], children[1]]

    def name_list(self, meta, children):
        return [str(c) for c in children]

    def use_name(self, meta, children):
        parts = [str(t) for t in children[0]]
        if len(parts) == 1:
            return ast.UseDecl(parts[0], None, self._span(meta))
        return ast.UseDecl(".".join(parts[:-1]), (parts[-1],), self._span(meta))

    def use_names(self, meta, children):
        module = ".".join(str(t) for t in children[0])
        return ast.UseDecl(module, tuple(children[1]), self._span(meta))

    def use_all(self, meta, children):
        return ast.UseDecl(".".join(str(t) for t in children[0]), None, self._span(meta))

    def use_file(self, meta, children):
        return ast.UseDecl(self._string_value(children[0]), None, self._span(meta))

    # -- models ------------------------------------------------------------------------------------
    def model_kind(self, meta, children):
        return children[0]

    def model_decl(self, meta, children):
        kind, name, *body = children
        return ast.ModelDecl(
            str(kind), str(name), tuple(self._present(body)), self._span(meta), self._tspan(name)
        )

    def param_decl(self, meta, children):
        return ast.ParamDecl(str(children[0]), children[1], self._span(meta), self._tspan(children[0]))

    def derived_decl(self, meta, children):
        return ast.DerivedDecl(str(children[0]), children[1], self._span(meta), self._tspan(children[0]))

    def state_decl(self, meta, children):
        return ast.StateDecl(str(children[0]), children[1], self._span(meta), self._tspan(children[0]))

    def input_decl(self, meta, children):
        unit = str(children[1]) if children[1] is not None else None
        return ast.InputDecl(str(children[0]), unit, self._span(meta), self._tspan(children[0]))

    def ode_decl(self, meta, children):
        state = _ODE.match(str(children[0])).group(1)
        return ast.OdeDecl(state, children[1], self._span(meta))

    def spike_decl(self, meta, children):
        return ast.SpikeDecl(children[0], self._span(meta))

    def reset_decl(self, meta, children):
        return ast.ResetDecl(children[0], self._span(meta))

    def on_pre_decl(self, meta, children):
        return ast.OnPreDecl(children[0], self._span(meta))

    def assign_block(self, meta, children):
        return tuple(self._present(children))

    def assign(self, meta, children):
        return ast.AssignStmt(str(children[0]), str(children[1]), children[2], self._span(meta))

    def output_decl(self, meta, children):
        return ast.OutputDecl(str(children[1]), children[0] is not None, self._span(meta))

    def refractory_decl(self, meta, children):
        return ast.RefractoryDecl(children[0], children[1] is not None, self._span(meta))

    def method_decl(self, meta, children):
        name, *rest = children
        return ast.MethodDecl(str(name), tuple(self._present(rest)), self._span(meta))

    def generator_decl(self, meta, children):
        return ast.GeneratorDecl(str(children[0]), self._span(meta))

    # -- networks and training ---------------------------------------------------------------------
    def role(self, meta, children):
        return children[0]

    def population(self, meta, children):
        role, name, model = children
        return ast.PopulationDecl(str(role), str(name), model, self._span(meta), self._tspan(name))

    def connection(self, meta, children):
        pre, post, conn, syn = children
        return ast.ConnectionDecl(
            str(pre), str(post), conn, syn, self._span(meta), self._tspan(pre), self._tspan(post)
        )

    def ctor(self, meta, children):
        parts, arglist = children
        args, kwargs = arglist if arglist is not None else ((), ())
        first, last = parts[0], parts[-1]
        func_span = Span(self.path, first.line, first.column, last.end_line, last.end_column)
        return ast.Call(".".join(str(p) for p in parts), args, kwargs, self._span(meta), func_span)

    def network_decl(self, meta, children):
        name, *body = children
        body = self._present(body)
        pops = tuple(s for s in body if isinstance(s, ast.PopulationDecl))
        conns = tuple(s for s in body if isinstance(s, ast.ConnectionDecl))
        return ast.NetworkDecl(str(name), pops, conns, self._span(meta), self._tspan(name))

    def setting(self, meta, children):
        return ast.Setting(str(children[0]), children[1], self._span(meta))

    def train_decl(self, meta, children):
        name, *body = children
        return ast.TrainDecl(str(name), tuple(self._present(body)), self._span(meta), self._tspan(name))

    # -- expressions -------------------------------------------------------------------------------
    def _number(self, tok: Token, unit: Token | None, meta) -> ast.Number:
        text = str(tok)
        value = float(text)
        if not math.isfinite(value):
            raise DiagnosticError(
                Diagnostic("E-SYNTAX", f"number '{text[:40]}' is too large", self._tspan(tok))
            )
        node = ast.Number(value, str(unit) if unit is not None else None, self._span(meta), text.isdigit())
        return self._expr(node)

    def number(self, meta, children):
        return self._number(children[0], None, meta)

    def quantity(self, meta, children):
        return self._number(children[0], children[1], meta)

    def _string_value(self, tok: Token) -> str:
        raw = str(tok)[1:-1]
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\":
                nxt = raw[i + 1]
                if nxt not in _ESCAPES:
                    span = Span(self.path, tok.line, tok.column + 1 + i, tok.line, tok.column + 3 + i)
                    raise DiagnosticError(
                        Diagnostic(
                            "E-SYNTAX",
                            f"unknown escape '\\{nxt}' in string",
                            span,
                            r"known: \n \t \r \\ \" \0",
                        )
                    )
                out.append(_ESCAPES[nxt])
                i += 2
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def string(self, meta, children):
        return self._expr(ast.String(self._string_value(children[0]), self._span(meta)))

    def true(self, meta, children):
        return self._expr(ast.Bool(True, self._span(meta)))

    def false(self, meta, children):
        return self._expr(ast.Bool(False, self._span(meta)))

    def name(self, meta, children):
        return self._expr(ast.Name(str(children[0]), self._span(meta)))

    def attribute(self, meta, children):
        value, attr = children
        return self._expr(ast.Attribute(value, str(attr), self._span(meta)), value)

    def tuple(self, meta, children):
        items = tuple(self._present(children))
        return self._expr(ast.Tuple(items, self._span(meta)), *items)

    def _binop(self, op: str, meta, children):
        left, right = children
        return self._expr(ast.BinOp(op, left, right, self._span(meta)), left, right)

    def __default__(self, data, children, meta):
        name = str(data)
        if name in _BINOPS:
            return self._binop(_BINOPS[name], meta, children)
        if name in _COMPARES:
            left, right = children
            return self._expr(ast.Compare(_COMPARES[name], left, right, self._span(meta)), left, right)
        raise DiagnosticError(
            Diagnostic("E-INTERNAL", f"parser has no rule handler for '{name}'", self._span(meta))
        )

    def or_(self, meta, children):
        left, right = children
        return self._expr(ast.BoolOp("or", left, right, self._span(meta)), left, right)

    def and_(self, meta, children):
        left, right = children
        return self._expr(ast.BoolOp("and", left, right, self._span(meta)), left, right)

    def not_(self, meta, children):
        return self._expr(ast.UnaryOp("not", children[0], self._span(meta)), children[0])

    def neg(self, meta, children):
        return self._expr(ast.UnaryOp("-", children[0], self._span(meta)), children[0])

    def pos(self, meta, children):
        return self._expr(ast.UnaryOp("+", children[0], self._span(meta)), children[0])

    def kwarg(self, meta, children):
        return ast.Keyword(str(children[0]), children[1], self._span(meta))

    def arglist(self, meta, children):
        args: list = []
        kwargs: list[ast.Keyword] = []
        for item in children:
            if isinstance(item, ast.Keyword):
                kwargs.append(item)
            elif kwargs:
                raise DiagnosticError(
                    Diagnostic(
                        "E-SYNTAX",
                        "positional argument after a keyword argument",
                        item.span,
                        "put positional arguments first: `LIF(100, tau_mem = 20 ms)`",
                    )
                )
            else:
                args.append(item)
        return tuple(args), tuple(kwargs)

    def call(self, meta, children):
        callee, arglist = children
        args, kwargs = arglist if arglist is not None else ((), ())
        func = _dotted_name(callee)
        if func is None:
            raise DiagnosticError(
                Diagnostic(
                    "E-SYNTAX",
                    "only named functions can be called",
                    callee.span,
                    "write `f(x)` or `std.f(x)`",
                )
            )
        node = ast.Call(func, args, kwargs, self._span(meta), callee.span)
        return self._expr(node, *args, *(k.value for k in kwargs))


def _dotted_name(expr) -> str | None:
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return ".".join(reversed(parts))


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------

_POSTLEXER = _PostLexer()
_LOCK = threading.Lock()  # the postlexer keeps per-parse state


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The LALR parser. Building its tables takes ~0.15 s, a third of a cached compile, so lark keeps
    them in the user's snnc cache (its file starts with a hash of grammar, options and lark version,
    and lark rebuilds silently when that or the file is off)."""
    grammar = resources.files("snnc.frontend").joinpath("snn.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=_POSTLEXER,
        cache=_table_cache() or False,
    )


def _table_cache() -> str | None:
    """A file for lark's parser tables in the user's own cache (not the shared temp dir: it is a
    pickle), or None where that cannot be created."""
    folder = cache_dir() / "parser"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(folder / f"snn-lark-{lark.__version__}.cache")


def _terminal_texts(parser: Lark) -> dict[str, str]:
    out = {}
    for term in parser.terminals:
        if term.pattern.type == "str":
            out[term.name] = term.pattern.value
    out["ASSIGN_OP"] = "="
    return out


def _char_diagnostic(err: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
    span = Span(path, err.line, err.column, err.line, err.column + 1)
    if ch == '"':
        return Diagnostic(
            "E-SYNTAX", "unterminated string", span, "close the string with '\"' on the same line"
        )
    if ch == "!":
        return Diagnostic(
            "E-SYNTAX", "unexpected character '!'", span, "use `not` for negation and `!=` for 'not equal'"
        )
    if not ch.isprintable() or ch == "\ufffd":
        return Diagnostic(
            "E-SYNTAX",
            f"invalid character U+{ord(ch):04X}" if ch else "invalid character",
            span,
            "is this a binary file?",
        )
    if ord(ch) > 127:
        return Diagnostic(
            "E-SYNTAX", f"unexpected character '{ch}'", span, "names use ASCII letters, digits and '_'"
        )
    return Diagnostic("E-SYNTAX", f"unexpected character '{ch}'", span)


def _eof_token(state: _BracketState, text: str) -> Token:
    last = state.last
    if last is not None and last.end_line is not None:
        return Token("$END", "", start_pos=len(text), line=last.end_line, column=last.end_column)
    return Token("$END", "", start_pos=len(text), line=1, column=1)


def _token_diagnostic(
    err: UnexpectedToken, text: str, path: str, state: _BracketState
) -> tuple[str | None, Diagnostic]:
    token = err.token
    if token.type == "$END":
        token = _eof_token(state, text)
        if state.stack:
            opener = state.stack[-1]
            what = "the block" if opener.type == "LBRACE" else f"the '{opener.value}'"
            return "unclosed", Diagnostic(
                "E-UNCLOSED",
                f"unexpected end of file: expected '{_OPEN[opener.type]}' to close {what} opened at "
                f"{opener.line}:{opener.column}",
                Span(path, token.line, token.column, token.line, token.column + 1),
            )
    parser_state = err.state
    stack = list(getattr(parser_state, "value_stack", []) or [])
    site = ErrorSite(token, set(err.accepts or err.expected or ()), stack, text, _terminal_texts(_lark()))
    return explain(site, path)


def _parse(text: str, path: str) -> tuple[str | None, ast.Module | Diagnostic]:
    """Parse, returning the module or (label, diagnostic). Never raises for any input text."""
    if len(text) > MAX_SOURCE_BYTES:
        return "too_large", Diagnostic(
            "E-TOO-LARGE",
            f"source is too large ({len(text) / 1e6:.1f} MB; the limit is {MAX_SOURCE_BYTES // 1024} KB)",
            Span(path, 1, 1),
            "a .snn file describes a model; load data through the `data` setting instead",
        )
    if text.startswith("\ufeff"):
        text = " " + text[1:]  # a byte-order mark: keep columns, drop the character
    with _LOCK:
        _POSTLEXER.path = path
        _POSTLEXER.state = state = _BracketState()
        try:
            tree = _lark().parse(text)
        except DiagnosticError as err:
            return "postlexer", err.diagnostics[0]
        except UnexpectedCharacters as err:
            return "character", _char_diagnostic(err, text, path)
        except UnexpectedToken as err:
            return _token_diagnostic(err, text, path, state)
        except UnexpectedInput as err:  # pragma: no cover - other lark input errors
            return None, Diagnostic("E-SYNTAX", "syntax error", Span(path, err.line or 1, err.column or 1))
    try:
        return None, ToAst(path).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, DiagnosticError):
            return "transform", err.orig_exc.diagnostics[0]
        return None, Diagnostic("E-INTERNAL", f"internal parser error: {err.orig_exc!r}", Span(path, 1, 1))


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse `.snn` source text. Raises `DiagnosticError` (never another exception) on bad input."""
    try:
        _, result = _parse(text, path)
    except DiagnosticError:
        raise
    except (LarkError, RecursionError, MemoryError, ValueError) as err:
        raise DiagnosticError(
            Diagnostic("E-INTERNAL", f"internal parser error: {err!r}", Span(path, 1, 1))
        ) from err
    if isinstance(result, Diagnostic):
        raise DiagnosticError(result)
    return result


def parse_file(path: str | Path) -> ast.Module:
    """Read and parse a `.snn` file; unreadable, binary or non-UTF-8 files give a diagnostic."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DiagnosticError(Diagnostic("E-FILE", f"no such file: '{name}'", Span(name, 0, 0))) from None
    except OSError as err:
        raise DiagnosticError(
            Diagnostic("E-FILE", f"cannot read '{name}': {err.strerror or err}", Span(name, 0, 0))
        ) from None
    return parse(decode_source(data, name), name)


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    col = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return line, col


def decode_source(data: bytes, path: str) -> str:
    """UTF-8 text from file bytes, or a diagnostic at the first NUL or undecodable byte."""
    if len(data) > MAX_SOURCE_BYTES:
        raise DiagnosticError(
            Diagnostic(
                "E-TOO-LARGE",
                f"'{path}' is too large ({len(data) / 1e6:.1f} MB; the limit is {MAX_SOURCE_BYTES // 1024} KB)",
                Span(path, 1, 1),
            )
        )
    nul = data.find(b"\0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start if nul < 0 else min(err.start, nul)
        line, col = _line_col(data, offset)
        what = "a NUL byte" if offset == nul else f"byte 0x{data[offset]:02x}, which is not UTF-8"
        raise DiagnosticError(
            Diagnostic(
                "E-ENCODING",
                f"'{path}' contains {what}",
                Span(path, line, col, line, col + 1),
                "is this a binary file? .snn sources are UTF-8 text",
            )
        ) from None
    if nul >= 0:
        line, col = _line_col(data, nul)
        raise DiagnosticError(
            Diagnostic(
                "E-ENCODING",
                f"'{path}' contains a NUL byte",
                Span(path, line, col, line, col + 1),
                "is this a binary file? .snn sources are UTF-8 text",
            )
        )
    return text


def _label_of(text: str, path: str = "<string>") -> tuple[str | None, Diagnostic | None]:
    """For tests: the syntax-error label chosen for `text` and its diagnostic (None when it parses)."""
    label, result = _parse(text, path)
    return (label, result) if isinstance(result, Diagnostic) else (None, None)
