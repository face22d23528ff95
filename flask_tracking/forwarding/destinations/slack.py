"""The ``slack`` destination: one readable message per batch to an incoming webhook."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...redact import url_secrets
from .base import Destination, OutgoingEvent
from .http import USER_AGENT, HttpClient, raise_for_status
from .text import blank_fields, event_fields, slack_escape


class SlackDestination(Destination):
    """Posts one readable message per batch to a Slack incoming webhook.

    Options: ``url`` (required), ``template`` (one line per event, ``str.format`` with
    the names in :data:`~flask_tracking.forwarding.destinations.options.TEMPLATE_FIELDS`),
    ``title`` (first line; ``{count}``, ``{destination}``), ``max_lines`` (default 20;
    the rest is summed up), ``timeout``. Values are escaped: control characters become
    visible escapes (a newline in an event type cannot start a line), and ``&``, ``<``,
    ``>`` are Slack-escaped (no mentions, no links).
    """

    kind = "slack"
    default_batch_size = 50
    strict_options = True
    DEFAULT_TEMPLATE = "`{event_type}` by {username} in {course_id} at {time}"
    DEFAULT_TITLE = "*{count} tracking event(s)* for {destination}"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.url = self.options.http_url("url")
        self.template = self.options.template("template", self.DEFAULT_TEMPLATE)
        self.title = self.options.template("title", self.DEFAULT_TITLE)
        self.max_lines = self.options.integer("max_lines", 20, minimum=1)
        self.timeout = self.options.number("timeout", 10.0)
        self.client = HttpClient(self.url, self.timeout)

    def secrets(self) -> list[str]:
        return url_secrets(self.url)

    def text(self, events: Sequence[OutgoingEvent]) -> str:
        shown = events[: self.max_lines]
        lines = [self.title.format_map(blank_fields(self.name, len(events)))]
        for event in shown:
            fields = {k: slack_escape(v) for k, v in event_fields(event, self.name).items()}
            lines.append("• " + self.template.format_map(fields))
        if len(events) > len(shown):
            lines.append(f"… and {len(events) - len(shown)} more")
        return "\n".join(lines)

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        self.encode_batch(events)  # each event is strict JSON (the outbox checked already)
        body = json.dumps({"text": self.text(events)}, ensure_ascii=False, allow_nan=False)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        status, text = self.client.post(body.encode("utf-8"), headers)
        raise_for_status(status, text, self.client.where, known=self.secrets())

    def close(self) -> None:
        self.client.close()
