"""``python -m bench [NAME ...]``: run the benchmarks, one printed line per figure.

Names: import, validation, ingest, forwarding, deadline, reports, profile (default: all, in
that order). A bench module that is not there (yet) is skipped with a note; one that fails
prints a FAILED line and the others still run (the exit status is then 1).
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime

from . import note

#: Bench name -> module; each has ``run() -> list[str]``.
MODULES: dict[str, str] = {
    "import": "bench.bench_import",
    "validation": "bench.bench_validation",
    "ingest": "bench.bench_ingest",
    "forwarding": "bench.bench_forwarding",
    "deadline": "bench.bench_deadline",
    "reports": "bench.bench_reports",
    "profile": "bench.bench_profile",
}


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__.strip())
        return 0
    options = [arg for arg in argv if arg.startswith("-")]
    if options:
        print(
            f"bench: no options ({' '.join(options)}): a bench is set through its BENCH_*"
            " environment variables (its module's docstring, docs/performance.md), e.g."
            " BENCH_REPORTS_EVENTS=100000 python -m bench reports",
            file=sys.stderr,
        )
        return 2
    names = argv or list(MODULES)
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        print(
            f"bench: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}",
            file=sys.stderr,
        )
        return 2
    note(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()},"
        f" {os.cpu_count()} cores, {platform.machine()}"
    )
    status = 0
    for name in names:
        start = time.perf_counter()
        try:
            for line in _lines_of(name, MODULES[name]):
                print(line, flush=True)
        except Exception:
            traceback.print_exc()
            print(f"{name}: FAILED (see the traceback above)", flush=True)
            status = 1
        note(f"{name} took {time.perf_counter() - start:.0f}s")
    return status


def _lines_of(name: str, module_name: str) -> Iterator[str]:
    """The figure lines of one bench module (as it gives them), or a note that it is absent."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        yield f"{name}: skipped ({module_name} is not there)"
        return
    yield from module.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
