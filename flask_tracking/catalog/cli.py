"""``flask tracking catalog``, and the catalog steps of ``init-db`` and ``export``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from ..state import TrackingState, get_state
from .document import catalog_data, entries, find, markdown, schema_path, write_catalog
from .table import refresh_seen, sync_catalog
from .types import TypeRegistry


def types_of(state: TrackingState) -> TypeRegistry:
    """The event types registered for the app of ``state``."""
    return state.tracker.pipeline.types


def init_catalog(state: TrackingState, *, seen: bool = True) -> tuple[int, int]:
    """Create the tables, write the catalog's rows and (``seen``: one grouped query over
    the events) set their first and last seen; return (rows written, rows seen)."""
    state.store.create_all()
    written = sync_catalog(state.engine, types_of(state))
    return written, refresh_seen(state.engine) if seen else 0


def export_catalog(state: TrackingState, directory: str) -> list[Path]:
    """``export --with-catalog DIR``: the catalog files beside the exported lines."""
    return write_catalog(directory, types_of(state))


@click.command("catalog")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "markdown", "jsonschema"]),
    default="json",
    show_default=True,
    help="json: the whole catalog (as catalog.json); markdown: tables as in docs/events.md;"
    " jsonschema: the JSON Schema of each type (or of --type).",
)
@click.option("--source", type=click.Choice(["browser", "server"]), help="Only this source.")
@click.option("--type", "event_type", help="With --format jsonschema: only this type.")
@click.option("--version", type=click.IntRange(min=1), help="With --type: this version.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Write catalog.json, events.md and every schema file into this folder instead.",
)
@click.option(
    "--sync", is_flag=True, help="Write the tracking_event_types table and its first/last seen."
)
@with_appcontext
def catalog_command(
    output_format: str,
    source: str | None,
    event_type: str | None,
    version: int | None,
    output: str | None,
    sync: bool,
) -> None:
    """Print the event-type catalog: built-in Open edX types and the app's own."""
    state = get_state()
    types = types_of(state)
    if sync:
        written, seen = init_catalog(state)
        click.echo(f"catalog rows written={written} seen={seen}", err=True)
    if output:
        files = write_catalog(output, types)
        click.echo(f"wrote {len(files)} files into {output}", err=True)
        return
    if output_format == "markdown":
        click.echo(markdown(types), nl=False)
        return
    if output_format == "json":
        click.echo(_dump(catalog_data(types, source)))
        return
    if event_type is not None:
        entry = find(types, source or "server", event_type, version) or find(
            types, "browser", event_type, version
        )
        if entry is None:
            raise click.UsageError(f"No event type {event_type!r} in the catalog.")
        click.echo(_dump(entry.json_schema))
        return
    schemas = {schema_path(e): e.json_schema for e in entries(types, source)}
    click.echo(_dump(schemas))


def _dump(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
