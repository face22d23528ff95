"""Learning record stores: tracking events as xAPI statements (:mod:`.xapi`).

The mapping is pure (an edX tracking-log object in, a statement or ``None`` out); the
``xapi`` destination (:mod:`flask_tracking.forwarding.destinations.xapi`) posts what it
makes. See ``docs/lrs.md``.
"""

from __future__ import annotations

from .xapi import MAPPED_TYPES, STATEMENT_NAMESPACE, Mapping, statement_id, to_statement

__all__ = ["MAPPED_TYPES", "STATEMENT_NAMESPACE", "Mapping", "statement_id", "to_statement"]
