"""The ``tracking`` blueprint: ingest endpoints, health, the Logger script."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from .cli import cli
from .extension import get_state

blueprint = Blueprint("tracking", __name__, static_folder="static", cli_group="tracking")
for _command in cli.commands.values():
    blueprint.cli.add_command(_command)


@blueprint.get("/health")
def health() -> Any:
    """Alive: the process answers."""
    return jsonify(status="ok")


@blueprint.get("/ready")
def ready() -> Any:
    """Ready: the database answers."""
    try:
        with get_state().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return jsonify(status="unavailable", message="The event database cannot be reached."), 503
    return jsonify(status="ok")


@blueprint.post("/events")
def events() -> Any:
    """The batch endpoint (built by the ingest work)."""
    return jsonify(message="Not implemented yet."), 501
