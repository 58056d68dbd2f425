"""A hypothesis strategy that mutates valid `.snn` sources: delete, duplicate, swap, insert, replace."""

from __future__ import annotations

import re

from hypothesis import strategies as st

_TOKEN = re.compile(r"\s+|#[^\n]*|d\w+/dt|\w+|\"[^\"\n]*\"|->|[<>=!+\-*/]=|\*\*|.", re.S)
_REPLACEMENTS = ["{", "}", "(", ")", "=", "==", "\n", ";", ",", "->", ":", "ms", "param"]


@st.composite
def mutated_sources(draw, sources: list[str]):
    source = draw(st.sampled_from(sources))
    tokens = _TOKEN.findall(source)
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace"]))
        if op == "delete":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap" and i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(st.text(min_size=1, max_size=3)))
        elif op == "replace":
            tokens[i] = draw(st.sampled_from(_REPLACEMENTS))
    return "".join(tokens)
