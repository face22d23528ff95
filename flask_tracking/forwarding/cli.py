"""``flask tracking worker`` and ``flask tracking forward``.

Everything these commands print goes through the forwarder's redaction (destination
secrets, URL credentials and tokens, the Redis password), stored errors included: rows
written before errors were redacted are shown redacted too.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import current_app
from flask.cli import with_appcontext

from ..retention import Housekeeping
from ..state import get_state
from .destinations.text import escape_controls
from .dispatch import DispatchUnavailable
from .lookup import get_forwarder
from .models import DELIVERED, FAILED, PENDING
from .worker import run_worker


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Sweep once, run the queued jobs, then stop.")
@click.option("--name", help="Worker name (default: the queue name and a random suffix).")
@click.option(
    "--sweep-interval",
    type=float,
    help="Seconds between sweeps of pending deliveries and due retries"
    " (default: TRACKING_FORWARD_SWEEP_INTERVAL).",
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    hidden=True,
    help="Ignored: workers run no RQ scheduler (retries are the sweep's).",
)
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
def worker_command(
    burst: bool, name: str | None, sweep_interval: float | None, no_scheduler: bool, quiet: bool
) -> None:
    """Run an RQ worker that forwards stored events to the destinations."""
    forwarder = get_forwarder()
    if not forwarder.uses_rq:
        raise click.ClickException(
            "TRACKING_REDIS_URL is not set: events are forwarded in-process by the app, no"
            " worker is needed. Set TRACKING_REDIS_URL to forward with RQ workers."
        )
    if not forwarder.targets:
        click.echo("warning: TRACKING_DESTINATIONS is empty: nothing will be forwarded.", err=True)
    run_worker(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        forwarder,
        burst=burst,
        name=name,
        sweep_interval=sweep_interval,
        logging_level="WARNING" if quiet else "INFO",
        housekeeping=_housekeeping(),
    )


def _housekeeping() -> Callable[[], None] | None:
    """The worker's partitions-ahead and retention runs, if the app has either on."""
    state = get_state()
    work = Housekeeping(state.store, state.config.retention_days)
    return work if work else None


@click.command("forward")
@with_appcontext
@click.option(
    "--pending",
    is_flag=True,
    help="Hand out pending deliveries that no live job holds (to RQ, or here without Redis).",
)
@click.option("--failed", is_flag=True, help="Re-drive failed deliveries (dead letters).")
@click.option(
    "-d",
    "--destination",
    "destinations",
    multiple=True,
    help="Only this destination (repeatable).",
)
@click.option("--errors", default=5, show_default=True, help="Recent failures to list.")
def forward_command(
    pending: bool, failed: bool, destinations: tuple[str, ...], errors: int
) -> None:
    """Show delivery counts per destination; re-enqueue pending or re-drive failed ones."""
    forwarder = get_forwarder()
    unknown = [d for d in destinations if d not in forwarder.targets]
    if unknown:
        raise click.ClickException(
            f"Unknown destination(s) {', '.join(unknown)}: configured are"
            f" {', '.join(forwarder.targets) or 'none'}."
        )
    only = list(destinations) or None
    if failed:
        count = forwarder.redrive_failed(only)
        click.echo(f"re-driven={count}")
    if pending or failed:
        try:
            result = forwarder.forward_pending(only)
        except DispatchUnavailable as exc:
            raise click.ClickException(
                forwarder.redact(f"{exc} Nothing was enqueued; try again when Redis answers.")
            ) from None
        click.echo(" ".join(f"{key}={value}" for key, value in result.items()))
        return
    counts = forwarder.outbox.counts()
    names = list(dict.fromkeys([*forwarder.targets, *counts]))
    if only:
        names = [n for n in names if n in only]
    width = max([len(n) for n in names] + [11])
    click.echo(f"{'destination':<{width}}  {PENDING:>9}  {DELIVERED:>9}  {FAILED:>9}")
    for name in names:
        row = counts.get(name, {})
        label = name if name in forwarder.targets else f"{name} (not configured)"
        click.echo(
            f"{label:<{width}}  {row.get(PENDING, 0):>9}  {row.get(DELIVERED, 0):>9}"
            f"  {row.get(FAILED, 0):>9}"
        )
    latest = forwarder.outbox.failures(errors, only) if errors > 0 else []
    if latest:
        click.echo("latest failures:")
        for failure in latest:
            click.echo(
                forwarder.redact(
                    f"  {failure.destination}  {failure.event_id}"
                    f"  {escape_controls(str(failure.event_type))}"
                    f"  attempts={failure.attempts}  {escape_controls(failure.last_error or '')}"
                )
            )
