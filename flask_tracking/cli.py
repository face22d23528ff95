"""``flask tracking ...`` commands; each a thin wrapper over a library function."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from .catalog.cli import catalog_command, export_catalog, init_catalog
from .forwarding.cli import forward_command, worker_command
from .logformat import parse_time
from .state import get_state
from .tracking_logs import export_lines, import_lines, read_lines

cli = AppGroup("tracking", help="Event tracking: tables, tracking-log import and export.")
cli.add_command(worker_command)
cli.add_command(forward_command)
cli.add_command(catalog_command)


def _when(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


@cli.command("init-db")
def init_db_command() -> None:
    """Create the tracking tables (safe to run again)."""
    init_catalog(get_state())
    click.echo("tracking tables ready")


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def import_command(files: tuple[str, ...]) -> None:
    """Import edX tracking logs (JSON lines, gzip too). Broken lines go to the failed table."""
    state = get_state()
    state.store.create_all()
    summary = import_lines(state.tracker, read_lines(files))
    click.echo(str(summary))


@cli.command("export")
@click.option("--since", help="Only events at or after this time (ISO 8601, UTC if no zone).")
@click.option("--until", help="Only events before this time.")
@click.option("--event-type", help="Only events of this type.")
@click.option("--course-id", help="Only events of this course.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@click.option("--with-catalog", type=click.Path(file_okay=False), help="Write the catalog here.")
def export_command(
    since: str | None,
    until: str | None,
    event_type: str | None,
    course_id: str | None,
    output: str | None,
    with_catalog: str | None,
) -> None:
    """Write stored events as edX tracking-log JSON lines."""
    state = get_state()
    with click.open_file(output or "-", "w", encoding="utf-8") as out:
        count = export_lines(
            state.engine,
            out,
            since=_when(since),
            until=_when(until),
            event_type=event_type,
            course_id=course_id,
        )
    click.echo(f"exported={count}", err=True)
    if with_catalog:
        export_catalog(state, with_catalog)


@cli.command("drain-spool")
def drain_spool_command() -> None:
    """Store the server events that waited in the spool while the database was down."""
    pipeline = get_state().tracker.pipeline
    count = pipeline.spool.drain(pipeline) if pipeline.spool else 0
    click.echo(f"drained={count}")
