"""IMS Caliper 1.2: edX tracking-log events mapped to Caliper events, and the envelope.

Pure functions (no I/O): :func:`to_caliper` maps one edX line, :func:`envelope` wraps
events for sending. The ``caliper`` destination
(:mod:`flask_tracking.forwarding.destinations.caliper`) POSTs them. See ``docs/caliper.md``.
"""

from __future__ import annotations

from .entities import CONTEXT, event_urn
from .envelope import envelope
from .families import score
from .mapping import RULES, to_caliper
from .rules import ACTORS, Rule, Settings

__all__ = [
    "ACTORS",
    "CONTEXT",
    "RULES",
    "Rule",
    "Settings",
    "envelope",
    "event_urn",
    "score",
    "to_caliper",
]
