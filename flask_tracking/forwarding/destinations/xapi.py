"""The ``xapi`` destination: events as xAPI 1.0.3 statements POSTed to a learning record store.

Each event becomes a statement (:func:`flask_tracking.lrs.xapi.to_statement`) whose id is
derived from the event id, so a batch sent twice (a retry after a crash between sending
and recording) is stored once: the LRS drops statements it already has (ralph answers
204), and a 409 (a statement with that id is stored) counts as delivered.

Events with no mapping (or naming no learner) are not sent: they count as delivered, and
:attr:`XapiDestination.skipped` counts them by event type (logged per batch), unless
``generic_verb`` is set, which sends them with that verb.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigError
from ...lrs.xapi import Mapping as XapiMapping
from ...lrs.xapi import to_statement
from ...redact import url_secrets
from .base import Destination, OutgoingEvent, PermanentError, RetryableError, strict_json
from .http import USER_AGENT, HttpClient, raise_for_status

logger = logging.getLogger("flask_tracking.forwarding.xapi")

#: The xAPI version this destination speaks (sent in ``X-Experience-API-Version``).
XAPI_VERSION = "1.0.3"
#: Path of the statements resource under the endpoint (ralph and most LRSs).
STATEMENTS_PATH = "/xAPI/statements"
#: ``encode`` result of an event that is not sent.
SKIP = b""
ACTORS = ("user_id", "username")


class XapiDestination(Destination):
    """POSTs batches of xAPI statements to ``<endpoint>/xAPI/statements``.

    Options: ``endpoint`` (required), ``platform_url`` (required: the actor accounts'
    ``homePage`` and the base of the activity ids), ``username`` + ``password`` (Basic)
    or ``token`` (Bearer), ``actor`` (``"user_id"``, ``"username"`` or a
    ``"module:function"`` of the line returning an Agent), ``generic_verb``,
    ``platform_name``, ``statements_path``, ``timeout``, ``headers``. See ``docs/lrs.md``.
    """

    kind = "xapi"
    default_batch_size = 100
    strict_options = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.endpoint = self.options.http_url("endpoint").rstrip("/")
        self.platform_url = self.options.http_url("platform_url").rstrip("/")
        path = self.options.text(
            "statements_path", STATEMENTS_PATH, hint="a path like '/xAPI/statements'"
        )
        if not path.startswith("/"):
            raise ConfigError(
                f"{self.options.where}['statements_path'] must start with '/', not {path!r}."
            )
        self.url = self.endpoint + path
        self.timeout = self.options.number("timeout", 10.0)
        self.extra_headers = self.options.headers("headers")
        self.authorization = self._authorization()
        self.mapping = XapiMapping(
            platform_url=self.platform_url,
            actor=self._actor(),
            generic_verb=self._generic_verb(),
            platform_name=self.options.text("platform_name", "flask-tracking"),
        )
        self.client = HttpClient(self.url, self.timeout)
        #: Events not sent (no mapping, no learner), by event type, since the start.
        self.skipped: Counter[str] = Counter()

    # --- options ------------------------------------------------------------------------

    def _authorization(self) -> str | None:
        user = self.options.get("username")
        password = self.options.get("password")
        token = self.options.get("token")
        where = self.options.where
        if token is not None and (user is not None or password is not None):
            raise ConfigError(
                f"{where}: give 'token' (Bearer) or 'username'/'password' (Basic), not both."
            )
        if token is not None:
            return "Bearer " + self.options.text("token", hint="the LRS's API token", secret=True)
        if user is None and password is None:
            return None
        user = self.options.text("username", hint="the LRS user (with 'password')")
        password = self.options.text("password", hint="the LRS user's password", secret=True)
        if ":" in user:
            raise ConfigError(f"{where}['username'] cannot hold ':' (HTTP Basic authentication).")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    def _actor(self) -> Any:
        value = self.options.get("actor", "user_id")
        where = f"{self.options.where}['actor']"
        if callable(value):
            return value
        if value in ACTORS:
            return value
        if isinstance(value, str) and ":" in value:
            module_name, _, attr = value.partition(":")
            try:
                found = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"{where}: cannot import {value!r}: {exc}.") from None
            if callable(found):
                return found
        raise ConfigError(
            f"{where} must be 'user_id' (the default: an account named by the stored user id),"
            f" 'username', or a 'module:function' returning the xAPI Agent; not {value!r}."
        )

    def _generic_verb(self) -> str | None:
        verb = self.options.get("generic_verb")
        if verb is None:
            return None
        if not isinstance(verb, str) or not verb.startswith(("http://", "https://")):
            raise ConfigError(
                f"{self.options.where}['generic_verb'] must be a verb IRI (for example"
                f" 'http://adlnet.gov/expapi/verbs/experienced'), not {verb!r}."
            )
        return verb

    def secrets(self) -> list[str]:
        found = [*self.extra_headers.values(), *url_secrets(self.endpoint)]
        found += [v.split()[-1] for v in self.extra_headers.values() if v.split()]
        for key in ("password", "token"):
            if isinstance(self.options.values.get(key), str):
                found.append(self.options.values[key])
        if self.authorization:
            found.append(self.authorization.split()[-1])
        return found

    # --- sending --------------------------------------------------------------------------

    def statement(self, event: OutgoingEvent) -> dict[str, Any] | None:
        """The statement of ``event``, or ``None`` when it is not sent."""
        return to_statement(event.line, event.event_id, self.mapping)

    def encode(self, event: OutgoingEvent) -> bytes:
        statement = self.statement(event)
        return SKIP if statement is None else strict_json(statement)

    def headers(self) -> dict[str, str]:
        headers = {
            **self.extra_headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Experience-API-Version": XAPI_VERSION,
        }
        if self.authorization:
            headers["Authorization"] = self.authorization
        return headers

    def _post(self, bodies: Sequence[bytes]) -> tuple[int, str]:
        return self.client.post(b"[" + b",".join(bodies) + b"]", self.headers())

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        encoded = self.encode_batch(events)
        batch = [(e, body) for e, body in zip(events, encoded, strict=True) if body != SKIP]
        skipped = [e for e, body in zip(events, encoded, strict=True) if body == SKIP]
        if skipped:
            counts = Counter(str(e.line.get("event_type")) for e in skipped)
            self.skipped.update(counts)
            logger.info(
                "xapi destination %r: %d event(s) not sent (no mapping or no learner): %s",
                self.name,
                len(skipped),
                ", ".join(f"{k} x{v}" for k, v in counts.most_common(10)),
            )
        if not batch:
            return
        done = [e.event_id for e in skipped]
        status, text = self._post([body for _, body in batch])
        if 200 <= status < 300 or (status == 409 and len(batch) == 1):
            return
        if status in (400, 409) and len(batch) > 1:
            # The LRS refused the whole batch for one statement (a bad one, or one whose id
            # it holds with other content): send one by one, so only that one is affected.
            self._one_by_one(batch, done)
            return
        raise_for_status(status, text, self.client.where, delivered=done, known=self.secrets())

    def _one_by_one(self, batch: Sequence[tuple[OutgoingEvent, bytes]], done: list[str]) -> None:
        refused: list[str] = []
        for event, body in batch:
            try:
                status, text = self._post([body])
            except RetryableError as exc:
                raise RetryableError(str(exc), delivered=done) from exc
            if 200 <= status < 300 or status == 409:
                if status == 409:
                    logger.warning(
                        "xapi destination %r: the LRS holds statement %s of event %s with"
                        " other content (409); counted as delivered",
                        self.name,
                        json.loads(body)["id"],
                        event.event_id,
                    )
                done.append(event.event_id)
                continue
            try:
                raise_for_status(status, text, self.client.where, known=self.secrets())
            except RetryableError as exc:
                raise RetryableError(str(exc), delivered=done) from exc
            except PermanentError as exc:
                refused.append(f"event {event.event_id}: {exc}")
        if refused:
            raise PermanentError("; ".join(refused)[:1000], delivered=done)

    def close(self) -> None:
        self.client.close()
