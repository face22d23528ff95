"""Rows as text: an aligned ``table`` for a terminal, ``csv`` and ``json`` (what the CLI
prints; a dashboard's CSV download can use :func:`as_csv`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "json")


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of ``rows``: the keys in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else str(value)
    return str(value)


def as_table(rows: Sequence[dict[str, Any]]) -> str:
    """Columns aligned with two spaces between; numbers to the right; ``(no rows)``."""
    if not rows:
        return "(no rows)\n"
    names = columns_of(rows)
    cells = [[_cell(row.get(name)) for name in names] for row in rows]
    numeric = [
        all(isinstance(row.get(n), int | float) or row.get(n) is None for row in rows)
        for n in names
    ]
    widths = [max([len(n)] + [len(line[i]) for line in cells]) for i, n in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(names), line(["-" * w for w in widths]), *(line(c) for c in cells)]
    return "\n".join(out) + "\n"


def as_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV with a header line (``None`` as an empty field)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_json(rows: Sequence[dict[str, Any]]) -> str:
    """A JSON array of the rows, one object each."""
    return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"


def render(rows: Sequence[dict[str, Any]], output_format: str) -> str:
    return {"table": as_table, "csv": as_csv, "json": as_json}[output_format](rows)
