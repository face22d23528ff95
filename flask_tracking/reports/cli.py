"""``flask tracking report NAME``: one report, printed as a table, CSV or JSON."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..state import get_state
from ..timespec import WHEN, check_window
from . import REPORTS
from ._common import zone
from .formats import FORMATS, render


@click.command("report")
@with_appcontext
@click.argument("name", type=click.Choice(list(REPORTS)), metavar="NAME")
@click.option("--course", "course_id", help="Only events of this course id.")
@click.option("--since", type=WHEN, help="Only events at or after this time (e.g. 7d).")
@click.option("--until", type=WHEN, help="Only events before this time.")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of day boundaries.")
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True
)
def report_command(
    name: str,
    course_id: str | None,
    since: datetime | None,
    until: datetime | None,
    tz: str,
    output_format: str,
) -> None:
    """Print the report NAME over the stored events (see docs/analytics.md).

    \b
    NAME: activity, learners, video, video-curve, sequence, sequence-units,
    sequence-transitions, textbook, textbook-pages, problems, problem-attempts,
    health-failed, health-schema, health-delivery, health-skew, health-deliveries.
    """
    check_window(since, until)
    try:
        zone(tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    state = get_state()
    try:
        rows = REPORTS[name](state.engine, course_id=course_id, since=since, until=until, tz=tz)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0][:200]
        url = state.engine.url.render_as_string(hide_password=True)
        raise click.ClickException(
            f"The tracking database {url} answered: {reason}. To fix it, create the tables"
            " with `flask tracking init-db` or check TRACKING_DATABASE_URL."
        ) from None
    click.echo(render(rows, output_format), nl=False)
