"""Turn lark's parse errors into sentences: a table of labelled bad snippets, then generic wording.

Why a table: lark reports "unexpected token X, expected one of {...}" in terms of terminal names. Users
need "`=` used in `spike when`; compare with `>=`". Each `Label` below names one common mistake, says
how to recognise it from the parser's situation at the error (an `ErrorSite`), and carries example
inputs that must produce it (the tests parse every example and check that its label wins). Lark's own
`match_examples` compares whole parser stacks, which differ with the position of a declaration in the
file, so we compare the local situation instead: the unexpected token, the tokens just before it, the
statement keyword it sits in, and what the parser would have accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from lark import Token, Tree
from snnc.ir.diagnostics import Diagnostic, Span

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

TOP_KEYWORDS = ("use", "neuron", "synapse", "network", "train")
MODEL_KEYWORDS = (
    "param",
    "derived",
    "state",
    "input",
    "spike",
    "reset",
    "on_pre",
    "output",
    "refractory",
    "method",
    "generator",
)
NETWORK_KEYWORDS = ("input", "hidden", "output")
#: token types that open a statement (the "context" an error sits in)
CONTEXT_TYPES = frozenset(
    {k.upper() for k in TOP_KEYWORDS + MODEL_KEYWORDS + NETWORK_KEYWORDS} | {"WHEN", "ODE", "ARROW"}
)
COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
OPERATORS = frozenset({"+", "-", "*", "/", "^", "**", "and", "or", "not"}) | COMPARISONS
ENDINGS = frozenset({"_NL", "RBRACE", "$END", "RPAR", "RSQB", "COMMA"})
VALUE_TOKENS = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE"})

_PUNCT_NAMES = {
    "_NL": "end of line",
    "$END": "end of file",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "ODE": "an equation 'dX/dt = ...'",
}


def describe_token(token: Token) -> str:
    """A user-facing description of the token the parser did not expect."""
    if token.type == "$END":
        return "end of file"
    if token.type == "_NL":
        return "';'" if ";" in token.value else "end of line"
    if token.type == "NAME":
        return f"name '{token.value}'"
    if token.type == "NUMBER":
        return f"number '{token.value}'"
    if token.type == "STRING":
        return "string"
    return f"'{token.value}'"


def describe_expected(accepts: set[str], terminals: dict[str, str]) -> str:
    """List what the parser accepts in words, keywords and punctuation quoted, at most six."""
    words: list[str] = []
    for name in sorted(accepts):
        if name in _PUNCT_NAMES:
            words.append(_PUNCT_NAMES[name])
        elif name in terminals:
            words.append(f"'{terminals[name]}'")
    words = sorted(set(words), key=lambda w: (w.startswith("'"), w))
    if not words:
        return "something else"
    if len(words) > 6:
        return ", ".join(words[:6]) + ", ..."
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


# --------------------------------------------------------------------------------------------------
# The situation at an error
# --------------------------------------------------------------------------------------------------


@dataclass
class ErrorSite:
    """Everything a label may look at: the bad token, the parser's stack and what it accepted."""

    token: Token
    accepts: set[str]
    stack: list  # the parser's value stack: Tokens and Trees, innermost last
    text: str
    terminals: dict[str, str] = field(default_factory=dict)  # terminal name -> literal text

    @property
    def key(self) -> str:
        """The token's text for punctuation and keywords, its type for names, numbers, ends."""
        if self.token.type in VALUE_TOKENS - {"TRUE", "FALSE"} or self.token.type in ("_NL", "$END"):
            return self.token.type
        return self.token.value

    def prev(self, n: int = 1) -> Token | Tree | None:
        return self.stack[-n] if len(self.stack) >= n else None

    def prev_value(self, n: int = 1) -> str | None:
        item = self.prev(n)
        return item.value if isinstance(item, Token) else None

    @property
    def context(self) -> str | None:
        """The innermost statement keyword on the stack (e.g. 'WHEN' inside `spike when ...`)."""
        for item in reversed(self.stack):
            if isinstance(item, Token) and item.type in CONTEXT_TYPES:
                return item.type
            if isinstance(item, Tree) and item.data in ("role", "model_kind"):
                return str(item.data).upper()
        return None

    def accepts_any(self, names: set[str] | frozenset[str]) -> bool:
        return bool(self.accepts & {n.upper() for n in names})

    def next_char_after_token(self) -> str:
        """The first non-blank character after the bad token (to tell `v = 0` from `v`)."""
        pos = getattr(self.token, "end_pos", None)
        if pos is None:
            return ""
        rest = self.text[pos : pos + 64].lstrip(" \t")
        return rest[:2]


@dataclass(frozen=True)
class Label:
    """One recognisable mistake: how to spot it, what to say, and examples that must trigger it."""

    name: str
    applies: Callable[[ErrorSite], bool]
    message: Callable[[ErrorSite], str]
    hint: Callable[[ErrorSite], str | None] | None
    examples: tuple[str, ...]
    code: str = "E-SYNTAX"
    #: where the span points: "token", "prev" (the token before it), "prev_to_token" or "after_prev"
    anchor: str = "token"


def _is_comparison_token(item: object) -> bool:
    return isinstance(item, Token) and item.value in COMPARISONS


def _closest(word: str, options: tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return found[0] if found else None


def _double_equals(site: ErrorSite) -> bool:
    """`==` where `=` belongs: the contextual lexer reads it as two `=` tokens, the second unexpected."""
    prev = site.prev()
    return (
        site.key == "="
        and isinstance(prev, Token)
        and prev.value == "="
        and prev.end_pos == getattr(site.token, "start_pos", None)
    )


def _unknown_statement_message(site: ErrorSite) -> str:
    word = site.token.value
    if site.next_char_after_token()[:1] == "=" and site.next_char_after_token()[:2] != "==":
        return f"assignment to '{word}' outside a block"
    return f"unknown statement '{word}'"


def _unknown_statement_hint(site: ErrorSite) -> str | None:
    word = site.token.value
    if site.next_char_after_token()[:1] == "=":
        return "assignments belong in `reset { ... }` or `on_pre { ... }`; use `param`, `state` or `derived` to declare"
    close = _closest(word, MODEL_KEYWORDS)
    if close:
        return f"did you mean '{close}'?"
    return "a model body holds: " + ", ".join(MODEL_KEYWORDS) + " and equations 'dX/dt = ...'"


def _unknown_declaration_hint(site: ErrorSite) -> str | None:
    close = _closest(site.token.value, TOP_KEYWORDS)
    if close:
        return f"did you mean '{close}'?"
    return "a file holds: " + ", ".join(TOP_KEYWORDS) + " declarations"


def _network_name_hint(site: ErrorSite) -> str | None:
    word = site.prev_value() or ""
    close = _closest(word, NETWORK_KEYWORDS)
    if close:
        return f"did you mean '{close}'?"
    return "a network holds populations (`hidden h = LIF(100)`) and connections (`x -> h : Dense()`)"


def _network_typo(site: ErrorSite) -> bool:
    prev = site.prev()
    return (
        "ARROW" in site.accepts
        and isinstance(prev, Token)
        and prev.type == "NAME"
        and site.token.type == "NAME"
        and _closest(prev.value, NETWORK_KEYWORDS) is not None
    )


LABELS: tuple[Label, ...] = (
    Label(
        "spike_assign",
        lambda s: s.context == "WHEN" and s.key == "=",
        lambda s: "`=` used in `spike when`; compare with `>=`",
        lambda s: "`spike when v >= v_thresh` fires when v reaches the threshold",
        (
            "neuron N {\n    spike when v = 1\n}\n",
            "neuron N { spike when v = v_thresh }",
            "neuron N { spike when 2 * v = 1.0 }",
            "neuron N { spike when (v) = 1 }",
        ),
    ),
    Label(
        "double_equals_assign",
        _double_equals,
        lambda s: "`==` compares; use `=` to give a value",
        None,
        (
            "neuron N { param tau == 20 ms }",
            "neuron N { state v == 0 }",
            "train n { epochs == 3 }",
            "network n { hidden h == LIF(3) }",
            "neuron N { reset { v == 0 } }",
        ),
        anchor="prev_to_token",
    ),
    Label(
        "chained_comparison",
        lambda s: s.key in COMPARISONS and _is_comparison_token(s.prev(2)),
        lambda s: "comparisons cannot be chained",
        lambda s: "combine two comparisons with `and`, e.g. `a < v and v < b`",
        ("neuron N { spike when 0 < v < 1 }", "neuron N { spike when a == b == c }"),
    ),
    Label(
        "spike_needs_when",
        lambda s: s.context == "SPIKE" and s.key != "when",
        lambda s: "expected `when` after `spike`",
        lambda s: "write `spike when <condition>`, e.g. `spike when v >= v_thresh`",
        ("neuron N { spike v >= 1 }", "neuron N {\n    spike\n}"),
    ),
    Label(
        "block_expected",
        lambda s: s.context in ("RESET", "ON_PRE") and "LBRACE" in s.accepts and s.key != "{",
        lambda s: f"expected '{{' after `{s.prev_value() or 'reset'}`",
        lambda s: "write the assignments in braces, e.g. `reset { v = v_reset }`",
        ("neuron N { reset v = 0 }", "synapse S { on_pre i += w }"),
    ),
    Label(
        "method_positional",
        lambda s: s.context == "METHOD" and "NAME" in s.accepts and s.token.type != "NAME" and s.key != ")",
        lambda s: "integration method options are keyword arguments",
        lambda s: "write e.g. `method = euler(sub_steps = 4)`",
        ("neuron N { method = euler(4) }",),
    ),
    Label(
        "connection_colon",
        lambda s: isinstance(s.prev(2), Token) and s.prev(2).type == "ARROW" and s.key != ":",
        lambda s: "expected ':' after the connection's target",
        lambda s: "write `pre -> post : Dense(...)` or `pre -> post : Dense(...), Exponential(tau = 5 ms)`",
        ("network n { x -> h Dense() }", "network n {\n    x -> h\n}"),
    ),
    Label(
        "network_statement",
        _network_typo,
        lambda s: f"unknown statement '{s.prev_value()}' in a network",
        _network_name_hint,
        ("network n { hiden h = LIF(3) }", "network n { inptu x = SpikeInput(2) }"),
        anchor="prev",
    ),
    Label(
        "statements_same_line",
        lambda s: (
            isinstance(s.prev(2), Token)
            and s.prev(2).type == "NUMBER"
            and isinstance(s.prev(), Token)
            and s.prev().value in MODEL_KEYWORDS + TOP_KEYWORDS + NETWORK_KEYWORDS
        ),
        lambda s: f"missing newline or ';' before '{s.prev_value()}'",
        lambda s: "put each statement on its own line, or separate them with ';'",
        ("neuron N { param a = 1 param b = 2 }",),
        anchor="prev",
    ),
    Label(
        "missing_value",
        lambda s: s.prev_value() in ("=", "+=", "-=", "*=", "/=") and s.token.type in ENDINGS,
        lambda s: f"missing value after '{s.prev_value()}'",
        None,
        (
            "neuron N {\n    param a =\n}",
            "neuron N { param a = }",
            "neuron N { state v = ; }",
            "train n { epochs = }",
            "neuron N { reset { v += } }",
            "train n { x = f(a = ) }",
        ),
        anchor="after_prev",
    ),
    Label(
        "missing_operand",
        lambda s: isinstance(s.prev(), Token) and s.prev_value() in OPERATORS and s.token.type in ENDINGS,
        lambda s: f"missing operand after '{s.prev_value()}'",
        None,
        ("neuron N { dv/dt = v + }", "neuron N {\n    spike when v >=\n}", "train n { x = f(a *) }"),
        anchor="after_prev",
    ),
    Label(
        "unit_before_number",
        lambda s: s.token.type == "NUMBER" and isinstance(s.prev(), Token) and s.prev().type == "NAME",
        lambda s: f"unexpected number '{s.token.value}' after '{s.prev_value()}'",
        lambda s: "a unit follows its number (`20 ms`); otherwise an operator may be missing",
        ("neuron N { param tau = ms 20 }",),
    ),
    Label(
        "missing_operator",
        lambda s: s.token.type in VALUE_TOKENS and bool(s.accepts & {"PLUS", "STAR", "SLASH"}),
        lambda s: f"missing operator before {describe_token(s.token)}",
        lambda s: "two values in a row: is an operator or ',' missing?",
        ("neuron N { dv/dt = (i_syn - v) tau }", "neuron N { param a = b c }", "train n { x = f(a b) }"),
    ),
    Label(
        "unknown_statement",
        lambda s: s.accepts_any({"param", "state", "spike"}) and s.token.type == "NAME",
        _unknown_statement_message,
        _unknown_statement_hint,
        ("neuron N { parm a = 1 }", "neuron N {\n    state v = 0\n    v = 1\n}", "synapse S { stat i = 0 }"),
    ),
    Label(
        "unknown_declaration",
        lambda s: s.accepts_any({"neuron", "network"}) and s.token.type in ("NAME", "NUMBER", "STRING"),
        lambda s: f"unknown declaration '{s.token.value}'",
        _unknown_declaration_hint,
        ("nueron N { }", "netwrk n { }", "x = 1"),
    ),
    Label(
        "name_expected",
        lambda s: s.accepts == {"NAME"} and isinstance(s.prev(), Token) and s.prev().type in CONTEXT_TYPES,
        lambda s: f"expected a name after '{s.prev_value()}'",
        None,
        ("neuron { }", "neuron N { param = 1 }", "neuron N { state 3 }"),
    ),
)


def _span_of(token: Token, path: str) -> Span:
    line = token.line or 1
    col = token.column or 1
    end_col = token.end_column if token.end_line == line else None
    if token.type in ("_NL", "$END") or end_col is None or end_col <= col:
        end_col = col + 1
    return Span(path, line, col, line, end_col)


def classify(site: ErrorSite) -> Label | None:
    """The first label whose test fits this error, or None."""
    for label in LABELS:
        try:
            if label.applies(site):
                return label
        except (AttributeError, IndexError, TypeError):  # a test that looks past the stack's start
            continue
    return None


def explain(site: ErrorSite, path: str) -> tuple[str | None, Diagnostic]:
    """A diagnostic for a parse error: a labelled sentence when one fits, else a generic one."""
    label = classify(site)
    if label is not None:
        span = _span_of(site.token, path)
        prev = site.prev()
        if isinstance(prev, Token) and prev.end_line is not None:
            if label.anchor == "after_prev":
                span = Span(path, prev.end_line, prev.end_column, prev.end_line, prev.end_column + 1)
            elif label.anchor == "prev":
                span = Span(path, prev.line, prev.column, prev.end_line, prev.end_column)
            elif label.anchor == "prev_to_token":
                span = Span(path, prev.line, prev.column, span.end_line, span.end_col)
        hint = label.hint(site) if label.hint else None
        return label.name, Diagnostic(label.code, label.message(site), span, hint)
    message = (
        f"unexpected {describe_token(site.token)}; expected {describe_expected(site.accepts, site.terminals)}"
    )
    return None, Diagnostic("E-SYNTAX", message, _span_of(site.token, path))
