"""Payload validation of the real corpus events, beside ralph-malph's pydantic edX models.

Ours, per event, what import does: ``decode_payload(event["event"])`` then
``check_payload(source, event_type, data)``; a type without a schema is settled by that
lookup ("unknown"). Baseline, in the same run: ralph (an independent validator of the same
format), per event, ``Validator(ModelSelector("ralph.models.edx")).get_first_valid_model``:
its decision tree picks the model(s), pydantic validates the whole event (envelope,
context and payload; string payloads are parsed by the model). An event it finds invalid
counts as validated too (a verdict was reached); its exception is part of its cost.

Like with like: the target figure is over the events ralph has a model for, with ours run
over the same events (most of which ours settles by lookup: no schema for their type).
Two more lines, no target: both over every corpus event (ralph's "no model" exception
against our lookup), and both over the events that both have a schema / model for, where
both really validate. Events are parsed before timing, on both sides; rates are events per
CPU-second of the validating process (best of 5 rounds), steady on a busy machine.

ralph runs in its own venv, ``.venv-bench`` (made on first use: ``python3 -m venv`` and
``pip install ralph-malph``, whose plain install has the models, the selector and the
validator), as a subprocess of this module, so the project's ``.venv`` never gets it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import ROOT, corpus_lines, note, percent

TARGET = 25.0  # percent of ralph's rate
VENV = ROOT / ".venv-bench"
#: The plain install is enough: ralph.models.edx, .selector and .validator need only
#: pydantic (the extras are storage backends, the API server and the CLI).
RALPH_REQUIREMENT = "ralph-malph>=5,<6"
ROUNDS = 5
ROUND_SECONDS = 0.4

Verdicts = Counter[str]


def best_rate(validate_all: Callable[[list[Any]], Verdicts], events: list[Any]) -> float:
    """Events per CPU-second of ``validate_all(events)``: best of ``ROUNDS`` rounds.

    After a warm-up, a round repeats the whole list enough times to last about
    ``ROUND_SECONDS``. Validation is single-threaded pure Python: its process CPU time
    is its cost, and it is not inflated by other work on a shared machine.
    """
    clock = time.process_time
    start = clock()
    validate_all(events)  # warm-up, and the size of a round
    once = max(clock() - start, 1e-6)
    repeat = max(1, round(ROUND_SECONDS / once))
    best = float("inf")
    for _ in range(ROUNDS):
        start = clock()
        for _ in range(repeat):
            validate_all(events)
        best = min(best, (clock() - start) / repeat)
    return len(events) / best


# -- ours -----------------------------------------------------------------------------------


def ours_validator() -> Callable[[list[dict[str, Any]]], Verdicts]:
    from flask_tracking.payloads import decode_payload
    from flask_tracking.schemas import check_payload

    def validate_all(events: list[dict[str, Any]]) -> Verdicts:
        verdicts: Verdicts = Counter()
        for event in events:
            source = event.get("event_source")
            data = decode_payload(event.get("event")).data
            verdict = check_payload(
                source if isinstance(source, str) else "", event["event_type"], data
            )
            verdicts[verdict.status] += 1
        return verdicts

    return validate_all


def specced_indexes(events: list[dict[str, Any]]) -> list[int]:
    """Indexes of the events whose (source, type) has a schema of ours."""
    from flask_tracking.schemas import spec_for

    indexes = []
    for index, event in enumerate(events):
        source = event.get("event_source")
        if spec_for(source if isinstance(source, str) else "", event["event_type"]):
            indexes.append(index)
    return indexes


# -- ralph (runs in .venv-bench) ------------------------------------------------------------


def ralph_worker(events_file: str, specced_file: str) -> None:
    """In ``.venv-bench``: time ralph over the events and print the figures as JSON.

    ``specced_file`` holds the indexes (JSON list) of the events ours has a schema for.
    """
    from importlib.metadata import version

    from pydantic import ValidationError
    from ralph.exceptions import UnknownEventException
    from ralph.models.selector import ModelSelector
    from ralph.models.validator import Validator

    lines = Path(events_file).read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    selector = ModelSelector(module="ralph.models.edx")
    validator = Validator(selector)

    with_model: list[int] = []
    for index, event in enumerate(events):
        try:
            selector.get_models(event)
        except UnknownEventException:
            continue
        with_model.append(index)

    def validate_all(batch: list[dict[str, Any]]) -> Verdicts:
        verdicts: Verdicts = Counter()
        for event in batch:
            try:
                validator.get_first_valid_model(event)
            except ValidationError:
                verdicts["invalid"] += 1
            except UnknownEventException:
                verdicts["unknown"] += 1
            else:
                verdicts["valid"] += 1
        return verdicts

    subset = [events[i] for i in with_model]
    specced = set(json.loads(Path(specced_file).read_text(encoding="utf-8")))
    both = [events[i] for i in with_model if i in specced]
    result = {
        "version": version("ralph-malph"),
        "pydantic": version("pydantic"),
        "with_model": with_model,
        "verdicts": validate_all(events),
        "rate_with_model": best_rate(validate_all, subset),
        "rate_all": best_rate(validate_all, events),
        "both": len(both),
        "rate_both": best_rate(validate_all, both) if both else 0.0,
    }
    print(json.dumps(result))


def ralph_python() -> Path:
    """The python of ``.venv-bench``, made (once) with ralph-malph installed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".bench-install"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == RALPH_REQUIREMENT:
        return python
    if not python.exists():
        base = shutil.which("python3") or str(getattr(sys, "_base_executable", sys.executable))
        note(f"validation: creating {VENV.name} ({base} -m venv)")
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    note(f"validation: pip install '{RALPH_REQUIREMENT}' into {VENV.name}")
    log = VENV / "pip-install.log"
    with log.open("w") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", RALPH_REQUIREMENT],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {RALPH_REQUIREMENT} failed (log: {log})")
    stamp.write_text(RALPH_REQUIREMENT + "\n")
    return python


def run_ralph(lines: list[str], specced: list[int]) -> dict[str, Any]:
    python = ralph_python()
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        events_file = Path(tmp) / "events.jsonl"
        events_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        specced_file = Path(tmp) / "specced.json"
        specced_file.write_text(json.dumps(specced), encoding="utf-8")
        done = _run_worker(python, events_file, specced_file)
    if done.returncode != 0:
        raise RuntimeError(f"the ralph worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _run_worker(
    python: Path, events_file: Path, specced_file: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(python),
            "-m",
            "bench.bench_validation",
            "--ralph-worker",
            str(events_file),
            str(specced_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# -- the bench ------------------------------------------------------------------------------


def run() -> list[str]:
    lines, label = corpus_lines()
    events = [json.loads(line) for line in lines]
    validate_all = ours_validator()
    ours_verdicts = validate_all(events)
    note(f"validation: {label}; ours: {dict(ours_verdicts)}")
    kind = "corpus events" if "corpus" in label else "sample events"

    specced = specced_indexes(events)
    try:
        ralph = run_ralph(lines, specced)
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        note(f"validation: ralph-malph unavailable: {exc}")
        ours_all = best_rate(validate_all, events)
        return [
            f"validation: {ours_all:,.0f} events/s"
            f" decode_payload + check_payload, all {kind}"
            " vs ralph-malph UNAVAILABLE (see the note above) = n/a"
            f" (target >= {TARGET:g}%)"
        ]

    subset = [events[i] for i in ralph["with_model"]]
    ours_subset = best_rate(validate_all, subset)
    ours_all = best_rate(validate_all, events)
    keep = set(specced)
    both = [events[i] for i in ralph["with_model"] if i in keep]
    ours_both = best_rate(validate_all, both) if both else 0.0
    note(
        f"validation: ralph-malph {ralph['version']} (pydantic {ralph['pydantic']}):"
        f" {dict(ralph['verdicts'])}; ours on ralph's {len(subset):,}:"
        f" {dict(validate_all(subset))}"
    )
    ralph_name = f"ralph-malph {ralph['version']} ModelSelector + pydantic"
    return [
        f"validation ({len(subset):,} {kind} ralph has a model for):"
        f" {ours_subset:,.0f} events/s decode_payload + check_payload"
        f" vs {ralph_name} {ralph['rate_with_model']:,.0f} events/s"
        f" = {percent(ours_subset, ralph['rate_with_model'])} (target >= {TARGET:g}%)",
        f"validation (all {len(events):,} {kind}, unknown types by lookup):"
        f" {ours_all:,.0f} events/s decode_payload + check_payload"
        f" vs {ralph_name} {ralph['rate_all']:,.0f} events/s"
        f" = {percent(ours_all, ralph['rate_all'])} (no target)",
        f"validation ({len(both):,} {kind} both have a schema / model for):"
        f" {ours_both:,.0f} events/s decode_payload + check_payload"
        f" vs {ralph_name} {ralph['rate_both']:,.0f} events/s"
        f" = {percent(ours_both, ralph['rate_both'])} (no target)",
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--ralph-worker":
        ralph_worker(sys.argv[2], sys.argv[3])
    else:
        print("usage: python -m bench validation", file=sys.stderr)
        sys.exit(2)
