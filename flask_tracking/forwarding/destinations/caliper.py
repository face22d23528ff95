"""The ``caliper`` destination: IMS Caliper 1.2 envelopes POSTed with bearer auth.

Each event is mapped by :func:`flask_tracking.caliper.to_caliper` when the outbox encodes
it (before the batch is sent); an event whose type has no mapping encodes to nothing, is
left out of the envelope and counts as delivered (there is nothing to send), and is
counted in :attr:`CaliperDestination.skipped` and logged once per batch.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...caliper import ACTORS, Settings, envelope, to_caliper
from ...errors import ConfigError
from ...redact import url_secrets
from .base import Destination, OutgoingEvent, strict_json
from .http import USER_AGENT, HttpClient, raise_for_status

logger = logging.getLogger("flask_tracking.forwarding.caliper")


class CaliperDestination(Destination):
    """POSTs Caliper 1.2 envelopes (``sensor``, ``sendTime``, ``dataVersion``, ``data``).

    Options: ``endpoint`` (required, http/https), ``token`` (required: sent as
    ``Authorization: Bearer <token>``), ``sensor`` (the envelope's sensor IRI, default
    ``<platform>/sensors/flask-tracking`` or ``urn:flask-tracking:sensor:<name>``),
    ``platform`` (base IRI of ids and of ``edApp``, default ``https://<event host>``),
    ``actor`` (``anonymous``, ``user_id`` or ``username``), ``actor_secret`` (keys the
    anonymous ids), ``timeout`` (seconds, default 10).
    """

    kind = "caliper"
    default_batch_size = 200
    strict_options = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.endpoint = self.options.http_url("endpoint")
        self.token = self.options.text(
            "token", hint="the bearer token the Caliper endpoint expects", secret=True
        )
        platform = self.options.get("platform")
        if platform is not None:
            platform = self.options.http_url("platform").rstrip("/")
        actor = self.options.get("actor", "anonymous")
        if actor not in ACTORS:
            raise ConfigError(
                f"{self.options.where}['actor'] must be one of {', '.join(map(repr, ACTORS))}"
                f" (the Person id: an anonymous uuid, the user id or the username), not {actor!r}."
            )
        secret = self.options.get("actor_secret")
        if secret is not None:
            secret = self.options.text("actor_secret", hint="a secret string", secret=True)
        self.actor_secret: str | None = secret
        self.settings = Settings(platform, actor, secret.encode() if secret else None)
        default_sensor = (
            f"{platform}/sensors/flask-tracking"
            if platform
            else f"urn:flask-tracking:sensor:{name}"
        )
        self.sensor = self.options.text("sensor", default_sensor, hint="an IRI (a URL or a URN)")
        if ":" not in self.sensor or any(c.isspace() for c in self.sensor):
            raise ConfigError(
                f"{self.options.where}['sensor'] must be an IRI such as"
                f" 'https://lms.example.org/sensors/1', not {self.sensor!r}."
            )
        self.timeout = self.options.number("timeout", 10.0)
        self.client = HttpClient(self.endpoint, self.timeout)
        #: edX event type -> events left out because that type (or that event) has no mapping.
        self.skipped: Counter[str] = Counter()

    def secrets(self) -> list[str]:
        return [
            self.token,
            *([self.actor_secret] if self.actor_secret else []),
            *url_secrets(self.endpoint),
        ]

    def encode(self, event: OutgoingEvent) -> bytes:
        """The event's Caliper events as items of ``data`` (comma-joined), or ``b""``."""
        mapped = to_caliper(event.event_id, event.line, self.settings)
        return b",".join(strict_json(item) for item in mapped)

    def body(self, events: Sequence[OutgoingEvent]) -> bytes | None:
        """The envelope of the batch, or ``None`` when no event of it has a mapping."""
        items = []
        for event, encoded in zip(events, self.encode_batch(events), strict=True):
            if encoded:
                items.append(encoded)
            else:
                self.skipped[str(event.line.get("event_type"))] += 1
        skipped = len(events) - len(items)
        if skipped:
            logger.info(
                "Caliper destination %r: %d event(s) of %d have no Caliper mapping and were"
                " not sent (skipped so far: %s)",
                self.name,
                skipped,
                len(events),
                dict(self.skipped.most_common(10)),
            )
        if not items:
            return None
        head = json.dumps(envelope(self.sensor, []), separators=(",", ":"))
        return head[: -len("[]}")].encode() + b"[" + b",".join(items) + b"]}"

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        body = self.body(events)
        if body is None:
            return
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        status, text = self.client.post(body, headers)
        raise_for_status(status, text, self.client.where, known=self.secrets())

    def close(self) -> None:
        self.client.close()
