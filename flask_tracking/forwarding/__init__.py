"""Forwarding stored events to other services: an outbox delivered by RQ (or a thread).

An event is stored first; the same transaction writes one ``tracking_deliveries`` row per
destination whose routing rules it matches. After the commit, batches of row ids become
jobs: RQ jobs run by ``flask tracking worker`` when ``TRACKING_REDIS_URL`` is set, else
tasks of the app's own forwarding thread. A job claims its rows, sends them, and records
the result, once. See ``docs/forwarding.md``.

**One retry model.** The row decides when a delivery is tried again: after a retryable
error the job leaves it pending with ``attempts`` + 1 and ``next_attempt_at`` = now + the
destination's backoff for that attempt count, then ends. The sweeper (every
``TRACKING_FORWARD_SWEEP_INTERVAL`` seconds, in a worker or the app's thread) hands
pending rows whose time has come and whose job has ended to new jobs; the same sweep picks
up rows of crashed workers, lost jobs and a Redis outage. No RQ ``Retry``, no scheduled
jobs, no retry queue in the thread; ``flask tracking forward --failed`` re-drives dead
letters.

Modules, from the top down: :mod:`.forwarder` (the :class:`Forwarder`,
:func:`setup_forwarding`), :mod:`.handoff` (the app's thread), :mod:`.sweeper`,
:mod:`.jobs` (RQ), :mod:`.inprocess`, :mod:`.worker` and :mod:`.cli`; :mod:`.outbox`
(claim, send, settle) over :mod:`.backlog` (sweep and report queries);
:mod:`.destinations`; :mod:`.routing`, :mod:`.models`, :mod:`.redact`.
"""

from __future__ import annotations

from .destinations import (
    DeliveryError,
    Destination,
    EmailDestination,
    LogDestination,
    OutgoingEvent,
    PermanentError,
    RetryableError,
    SlackDestination,
    WebhookDestination,
    register_kind,
)
from .forwarder import Forwarder, setup_forwarding
from .lookup import get_forwarder
from .models import DELIVERED, FAILED, PENDING, Delivery, deliveries_table
from .routing import Route
from .settings import ForwardSettings

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "Delivery",
    "DeliveryError",
    "Destination",
    "EmailDestination",
    "ForwardSettings",
    "Forwarder",
    "LogDestination",
    "OutgoingEvent",
    "PermanentError",
    "RetryableError",
    "Route",
    "SlackDestination",
    "WebhookDestination",
    "deliveries_table",
    "get_forwarder",
    "register_kind",
    "setup_forwarding",
]
