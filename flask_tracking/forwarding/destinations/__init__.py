"""Destinations: where stored events are forwarded to.

A destination is a small class with ``send(events)`` (see :mod:`.base` for the contract:
the batch, the errors, per-event strict JSON encoding). Built in: ``webhook``
(:mod:`.webhook`), ``slack`` (:mod:`.slack`), ``email`` (:mod:`.mail`) and ``log``
(:mod:`.logfile`). A custom destination subclasses :class:`Destination` and is named in
``TRACKING_DESTINATIONS`` by its import path (``"kind": "myapp.forwarding:LrsDestination"``)
or by the class itself, or registered under a short name with :func:`register_kind`
(:mod:`.registry`). See ``docs/forwarding.md``.
"""

from __future__ import annotations

from .base import (
    DeliveryError,
    Destination,
    OutgoingEvent,
    PermanentError,
    RetryableError,
    encode_failure,
    strict_json,
)
from .http import SIGNATURE_HEADER, USER_AGENT, HttpClient, raise_for_status, sign
from .logfile import LogDestination
from .mail import EmailDestination
from .options import TEMPLATE_FIELDS, Options
from .registry import KINDS, MAX_BATCH_SIZE, Target, destination_class, load_targets, register_kind
from .slack import SlackDestination
from .text import event_fields
from .webhook import WebhookDestination

__all__ = [
    "KINDS",
    "MAX_BATCH_SIZE",
    "SIGNATURE_HEADER",
    "TEMPLATE_FIELDS",
    "USER_AGENT",
    "DeliveryError",
    "Destination",
    "EmailDestination",
    "HttpClient",
    "LogDestination",
    "Options",
    "OutgoingEvent",
    "PermanentError",
    "RetryableError",
    "SlackDestination",
    "Target",
    "WebhookDestination",
    "destination_class",
    "encode_failure",
    "event_fields",
    "load_targets",
    "raise_for_status",
    "register_kind",
    "sign",
    "strict_json",
]
