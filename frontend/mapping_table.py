"""The table `snnc import` and `snnc convert` print: what each foreign node became in the `.snn`."""

from __future__ import annotations

from collections.abc import Sequence


def mapping_table(node_kind: str, rows: Sequence[tuple[str, str, str, str]]) -> str:
    """Rows of (node, its type, the snnc item, its weight file) under a header, in aligned columns;
    the last column is left ragged (file paths)."""
    all_rows = [(f"{node_kind} node", "type", "snnc", "weights"), *rows]
    widths = [max(len(r[k]) for r in all_rows) for k in range(3)]
    return "\n".join(
        ("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]).rstrip()
        for r in all_rows
    )
