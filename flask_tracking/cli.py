"""``flask tracking ...`` commands; each a thin wrapper over a library function.

Errors a user can fix are one ``Error: ...`` line (a ``click.ClickException``), never a
traceback: a ``ConfigError`` (itself a ``ClickException``), tables that do not exist yet,
a database that cannot be reached. Times are read by :mod:`.timespec`.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError, ProgrammingError

from .catalog.cli import catalog_command, export_catalog, init_catalog
from .catalog.table import widen_seen
from .errors import StoreUnavailable
from .forwarding.cli import forward_command, worker_command
from .import_jobs import import_parallel
from .logfiles import LINE_FACTOR, LogReader
from .models import metadata
from .partitions import existing
from .reports.cli import report_command
from .retention import prune
from .runlock import Busy
from .state import TrackingState, get_state
from .stats import Stats, collect
from .timespec import WHEN, check_window
from .tracking_logs import export_lines

#: Errors of the disk rather than of a file name: said even when no file is named.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


class TrackingGroup(AppGroup):
    """The ``tracking`` group: a file one of its commands cannot open or write (a missing
    folder, no permission, a full disk) ends the command with an error naming the file,
    never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.filename is None and exc.errno not in _DISK_ERRORS:
                raise
            where = f"{exc.filename}: " if exc.filename is not None else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}.") from None


cli = TrackingGroup(
    "tracking",
    help="""Event tracking (flask-tracking): the tracking tables, edX tracking logs in and
    out, what is stored, and forwarding to other services.

    \b
    Start with `init-db` (creates the tables), then `stats` (what is stored).
    Times (--since, --until) are ISO dates (2026-11-30, midnight UTC), ISO times
    (2026-11-30T08:00, UTC if no zone) or spans back from now (30m, 24h, 7d).
    """,
    short_help="Event tracking: tables, logs, stats, forwarding.",
)
cli.add_command(worker_command)
cli.add_command(forward_command)
cli.add_command(catalog_command)
cli.add_command(report_command)


def database_name(state: TrackingState) -> str:
    """The URL of the app's tracking database, its password hidden."""
    return state.engine.url.render_as_string(hide_password=True)


@contextmanager
def database_errors(state: TrackingState) -> Iterator[None]:
    """A database that cannot be reached, or tables not created yet: one line, the fix."""
    try:
        yield
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0][:200]
        if "no such table" in reason or "does not exist" in reason:
            hint = "create the tables with `flask tracking init-db`"
        else:
            hint = "check that the database is running and that TRACKING_DATABASE_URL points to it"
        raise click.ClickException(
            f"The tracking database {database_name(state)} answered: {reason}. To fix it, {hint}."
        ) from None


@cli.command("init-db")
def init_db_command() -> None:
    """Create the tracking tables that do not exist yet (safe to run again)."""
    state = get_state()
    ours = [table.name for table in metadata.sorted_tables]
    with database_errors(state):
        before = set(inspect(state.engine).get_table_names())
        init_catalog(state)
        after = set(inspect(state.engine).get_table_names())
    created = [name for name in ours if name in after - before]
    kept = [name for name in ours if name in before]
    click.echo(f"database: {database_name(state)}")
    click.echo(f"created: {', '.join(created) if created else 'nothing (all tables exist)'}")
    if kept:
        click.echo(f"already there: {', '.join(kept)}")
    if state.store.partitions is not None:
        with state.engine.connect() as conn:
            names = sorted(existing(conn))
        click.echo(
            f"partitioned by {state.store.partitions.unit}: {len(names)} partitions,"
            f" {names[0]} to {names[-1]}"
        )


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes parsing and storing chunks (same result as 1).",
)
def import_command(files: tuple[str, ...], jobs: int) -> None:
    """Import edX tracking logs (JSON lines, gzip too). Broken lines go to the failed table."""
    state = get_state()
    reader = LogReader(files, LINE_FACTOR * state.config.max_event_bytes)
    with database_errors(state):
        state.store.create_all()
        try:
            summary = import_parallel(state.tracker, reader, jobs)
        except BrokenProcessPool:
            raise click.ClickException(
                "An import worker process died (killed?). The chunks it committed are"
                " stored; import the same files again to store the rest."
            ) from None
        except StoreUnavailable as exc:
            raise click.ClickException(
                f"The tracking database {database_name(state)} became unavailable during"
                f" the import ({exc}). The chunks committed before are stored; import the"
                " same files again to store the rest (the stored lines count as duplicates)."
            ) from None
        if summary.stored and summary.first is not None and summary.last is not None:
            try:
                widen_seen(state.engine, summary.first, summary.last)
            except Exception as exc:  # the events are imported either way
                click.echo(
                    "warning: the catalog's first and last seen were not widened"
                    f" ({type(exc).__name__}); run `flask tracking catalog --sync`.",
                    err=True,
                )
    click.echo(str(summary))
    if reader.unreadable:
        raise click.ClickException(
            "Not every file could be read to its end; the lines read before are imported,"
            " and a failed row says where each file stopped:\n  " + "\n  ".join(reader.unreadable)
        )


@cli.command("prune")
@click.option("--before", type=WHEN, required=True, help="Remove what is older (e.g. 365d).")
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
def prune_command(before: datetime, dry_run: bool) -> None:
    """Remove events older than --before, their delivered and failed deliveries, and
    failed events; drops whole partitions when partitioned. Events with pending
    deliveries are kept."""
    state = get_state()
    with database_errors(state):
        try:
            report = prune(state.store, before, dry_run=dry_run)
        except Busy:
            raise click.ClickException(
                f"Another process is pruning {database_name(state)} now (a worker's"
                " retention, or another `prune`); run this again when it is done."
            ) from None
    click.echo(f"database: {database_name(state)}")
    for line in report.lines():
        click.echo(line)


@cli.command("export")
@click.option("--since", type=WHEN, help="Only events at or after this time.")
@click.option("--until", type=WHEN, help="Only events before this time.")
@click.option("--event-type", help="Only events of this type.")
@click.option("--course-id", help="Only events of this course.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@click.option("--with-catalog", type=click.Path(file_okay=False), help="Write the catalog here.")
def export_command(
    since: datetime | None,
    until: datetime | None,
    event_type: str | None,
    course_id: str | None,
    output: str | None,
    with_catalog: str | None,
) -> None:
    """Write stored events as edX tracking-log JSON lines."""
    check_window(since, until)
    state = get_state()
    try:
        with database_errors(state), click.open_file(output or "-", "w", encoding="utf-8") as out:
            count = export_lines(
                state.engine,
                out,
                since=since,
                until=until,
                event_type=event_type,
                course_id=course_id,
            )
    except OSError as exc:  # a write refused (a full disk): name the file
        exc.filename = output if exc.filename is None else exc.filename
        raise
    click.echo(f"exported={count}", err=True)
    if with_catalog:
        export_catalog(state, with_catalog)


@cli.command("stats")
@click.option("--since", type=WHEN, help="Only events at or after this time (e.g. 7d).")
@click.option("--until", type=WHEN, help="Only events before this time.")
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Rows per list (0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
def stats_command(since: datetime | None, until: datetime | None, top: int, as_json: bool) -> None:
    """Count what is stored: events by source, type and day, unknown types, failed
    events by reason, pending and failed deliveries per destination."""
    check_window(since, until)
    state = get_state()
    with database_errors(state):
        stats = collect(state.engine, since, until)
    if as_json:
        data = asdict(stats)
        data.update(since=_iso(since), until=_iso(until), database=database_name(state))
        click.echo(json.dumps(data, indent=2))
        return
    for line in stats_lines(stats, database_name(state), top):
        click.echo(line)


def stats_lines(stats: Stats, database: str, top: int) -> Iterator[str]:
    """The report of ``flask tracking stats``, line by line."""
    window = f"{_iso(stats.since) or 'the first event'} to {_iso(stats.until) or 'now'}"
    yield f"database: {database}"
    yield f"window: {window}"
    yield f"events: {stats.events}"
    yield from _section("by source", stats.by_source, top)
    yield from _section("by type", stats.by_type, top)
    yield from _section("by day (UTC)", stats.by_day, 0)
    yield from _section("by schema status", stats.by_schema_status, top)
    yield from _section("unknown types (schema_status unvalidated)", stats.unknown_types, top)
    yield f"failed events: {stats.failed}"
    yield from _section("failed by reason", stats.failed_by_reason, top)
    yield "deliveries now (pending, failed) per destination:"
    if not stats.deliveries:
        yield "  (none)"
    width = max([len(name) for name in stats.deliveries] + [0])
    for name, counts in stats.deliveries.items():
        yield f"  {name:<{width}}  pending={counts['pending']}  failed={counts['failed']}"


def _section(title: str, counts: Mapping[str, int], top: int) -> Iterator[str]:
    yield f"{title}:"
    if not counts:
        yield "  (none)"
        return
    items = list(counts.items())
    shown = items[:top] if top > 0 else items
    width = max(len(label) for label, _ in shown)
    digits = max(len(str(n)) for _, n in shown)
    for label, n in shown:
        yield f"  {label:<{width}}  {n:>{digits}}"
    if len(items) > len(shown):
        rest = sum(n for _, n in items[len(shown) :])
        yield f"  ... {len(items) - len(shown)} more ({rest}); --top 0 shows all"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@cli.command("drain-spool")
def drain_spool_command() -> None:
    """Store the server events that waited in the spool while the database was down."""
    pipeline = get_state().tracker.pipeline
    count = pipeline.spool.drain(pipeline) if pipeline.spool else 0
    click.echo(f"drained={count}")
