"""The ``webhook`` destination: a signed JSON batch POSTed to a URL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ...redact import url_secrets
from .base import Destination, OutgoingEvent, strict_json
from .http import SIGNATURE_HEADER, USER_AGENT, HttpClient, raise_for_status, sign


class WebhookDestination(Destination):
    """POSTs a signed JSON batch to a URL.

    Options: ``url`` (required; user info in it is sent as Basic authentication),
    ``secret`` (required: the body's HMAC-SHA256 goes in
    ``X-Tracking-Signature: sha256=<hex>``), ``timeout`` (seconds, default 10),
    ``headers`` (extra request headers). The body (strict JSON, UTF-8)::

        {"destination": "<name>", "sent_at": "<ISO 8601>",
         "events": [{"idempotency_key": "...", "event_id": "...", "data": {edX line}}]}
    """

    kind = "webhook"
    default_batch_size = 500
    strict_options = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.url = self.options.http_url("url")
        self.secret = self.options.text(
            "secret",
            hint="a shared secret string (for example secrets.token_hex(32)); the receiver"
            f" checks the {SIGNATURE_HEADER} header with it",
            secret=True,
        ).encode()
        self.timeout = self.options.number("timeout", 10.0)
        self.extra_headers = self.options.headers("headers")
        self.client = HttpClient(self.url, self.timeout)

    def secrets(self) -> list[str]:
        values = list(self.extra_headers.values())
        tokens = [value.split()[-1] for value in values if value.split()]  # "Bearer <token>"
        return [self.secret.decode(), *values, *tokens, *url_secrets(self.url)]

    def encode(self, event: OutgoingEvent) -> bytes:
        """The event's item of the ``events`` list."""
        return strict_json(
            {
                "idempotency_key": event.idempotency_key,
                "event_id": event.event_id,
                "data": event.line,
            }
        )

    def body(self, events: Sequence[OutgoingEvent]) -> bytes:
        head = json.dumps(
            {"destination": self.name, "sent_at": datetime.now(UTC).isoformat()},
            separators=(",", ":"),
        )
        return b"".join(
            (head[:-1].encode(), b',"events":[', b",".join(self.encode_batch(events)), b"]}")
        )

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        body = self.body(events)
        headers = {
            **self.extra_headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Tracking-Destination": self.name,
            SIGNATURE_HEADER: sign(self.secret, body),
        }
        status, text = self.client.post(body, headers)
        raise_for_status(status, text, self.client.where, known=self.secrets())

    def close(self) -> None:
        self.client.close()
