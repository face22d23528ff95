"""``python -m flask_tracking.schemas [docs/events.md]``: print the catalog's Markdown, or
rewrite the generated part of that file (see ``docs.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

from .docs import render_markdown, replace_generated


def main(argv: list[str]) -> None:
    if not argv:
        print(render_markdown(), end="")
        return
    path = Path(argv[0])
    path.write_text(replace_generated(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
