"""NIR node names <-> `.snn` names, and the `# nir:` annotations that carry the mapping.

A NIR node name is any string (`input`, `fc.0`, `1`, `lif-1`, `__x_`); an `.snn` population name is an
identifier that is not a role keyword (`input`, `hidden`, `output` start a statement) and lies outside
the reserved namespace (no `__`, no `_` at either end: E-RESERVED-NAME). `NameMap` picks a readable
identifier for each node, unique within the file: `fc.0` -> `fc_0`, `1` -> `n_1`, `input` ->
`input_node`, and `_2`, `_3`, ... when two names would meet.

`snnc import` ends each population and connection line with an annotation naming the NIR nodes the
line stands for, in graph order, each as its NIR type and its name as a JSON string:

    input input_node = SpikeInput(3)   # nir: Input "input"
    input_node -> fc_0_lif : Dense(...), NirDirac   # nir: Linear "fc.0"
    output lif2 = NirLIF(...)   # nir: LIF "lif2" -> Output "output"

`snnc export` reads these back (`read_annotations`) and gives each node it writes the original name
of the first unused annotated node of the same type; a line without an annotation (or a node it does
not list) gets a generated name. The annotation is an ordinary comment, so it survives renaming the
population, and deleting it only loses the original names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

KEYWORDS = frozenset({"input", "hidden", "output"})
#: NIR types that one exported node type may stand for (Affine and Linear are one Dense weight)
SAME_KIND = {"Affine": "Linear", "AvgPool2d": "Pool", "SumPool2d": "Pool"}
_MARK = re.compile(r"#[^#]*?\bnir:\s*(.*)$")
_ENTRY = re.compile(r'\s*(->)?\s*([A-Za-z][A-Za-z0-9_]*)\s+("(?:[^"\\]|\\.)*")')


def kind_key(kind: str) -> str:
    return SAME_KIND.get(kind, kind)


class NameMap:
    """Readable, unique `.snn` identifiers for NIR node names (and for weight-file stems)."""

    def __init__(self) -> None:
        self.ident: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, nir_name: str) -> str:
        if nir_name not in self.ident:
            base = readable(nir_name)
            name, k = base, 2
            while name in self._taken:
                name, k = f"{base}_{k}", k + 1
            self._taken.add(name)
            self.ident[nir_name] = name
        return self.ident[nir_name]


def readable(nir_name: str) -> str:
    """One NIR name as a valid `.snn` identifier, before making it unique."""
    s = re.sub(r"_+", "_", re.sub(r"\W", "_", str(nir_name), flags=re.ASCII)).strip("_")
    if not s:
        return "node"
    if not re.match(r"[A-Za-z]", s):
        s = f"n_{s}"
    return f"{s}_node" if s in KEYWORDS else s


def annotation(entries: list[tuple[str, str]], source: str = "nir") -> str:
    """`# nir: Linear "fc.0" -> Delay "d"` for [(type, name), ...]: the foreign nodes a `.snn` line
    stands for (`source = "onnx"` for `snnc convert`'s)."""
    return f"# {source}: " + " -> ".join(f"{kind} {json.dumps(str(name))}" for kind, name in entries)


def parse_annotation(line: str) -> list[tuple[str, str]]:
    """The (type, name) entries of a line's `# nir:` annotation; [] when it has none."""
    m = _MARK.search(line)
    if m is None:
        return []
    out, text = [], m.group(1)
    while text.strip():
        e = _ENTRY.match(text)
        if e is None:
            break  # a hand-edited annotation: keep what was readable
        out.append((e.group(2), json.loads(e.group(3))))
        text = text[e.end() :]
    return out


def read_annotations(network) -> dict[str, list[tuple[str, str]]]:  # noqa: ANN001
    """Population and projection name -> the NIR nodes its source line is annotated with."""
    lines: dict[str, list[str]] = {}
    out: dict[str, list[tuple[str, str]]] = {}
    items = [*network.populations.values(), *network.projections.values()]
    for item in items:
        span = item.span
        if span is None or not Path(span.file).is_file():
            continue
        if span.file not in lines:
            lines[span.file] = Path(span.file).read_text(encoding="utf-8").splitlines()
        text = lines[span.file]
        for k in range(span.line - 1, min(span.end_line or span.line, len(text))):
            entries = parse_annotation(text[k])
            if entries:
                out[item.name] = entries
                break
    return out


class ExportNames:
    """Names for the nodes `snnc export` writes: annotated originals first, then generated ones."""

    def __init__(self, annotations: dict[str, list[tuple[str, str]]]) -> None:
        self._notes = {k: list(v) for k, v in annotations.items()}
        self._reserved = {name for v in annotations.values() for _, name in v}
        self.used: set[str] = set()

    def name(self, owner: str, kind: str, fallback: str) -> str:
        """The node of type `kind` that population/projection `owner` writes."""
        notes = self._notes.get(owner, [])
        for k, (note_kind, note_name) in enumerate(notes):
            if kind_key(note_kind) == kind_key(kind) and note_name not in self.used:
                del notes[k]
                self.used.add(note_name)
                return note_name
        name, n = fallback, 2
        while name in self.used or name in self._reserved:
            name, n = f"{fallback}_{n}", n + 1
        self.used.add(name)
        return name
