"""Destinations: where stored events are forwarded to.

A destination is a small class with ``send(events)``. It gets a batch of
:class:`OutgoingEvent` (the edX tracking-log object after field stripping, the event id
and an idempotency key) and either returns (the whole batch is delivered) or raises:

- :class:`RetryableError` when trying again later may work (the receiver is down, slow,
  overloaded: HTTP 408, 429, 5xx, timeouts, refused connections, SMTP 4xx);
- :class:`PermanentError` when it will not (HTTP 4xx, SMTP 5xx, a bad address): the
  deliveries are marked failed at once and wait for ``flask tracking forward --failed``.

Both take ``delivered=`` (the event ids that did go through before the error), so a
destination that sends one message per event reports partial progress. Any other
exception counts as retryable.

Built in: ``webhook``, ``slack``, ``email`` and ``log``. A custom destination subclasses
:class:`Destination` and is named in ``TRACKING_DESTINATIONS`` by its import path
(``"kind": "myapp.forwarding:LrsDestination"``) or by the class itself, or registered
under a short name with :func:`register_kind`. See ``docs/forwarding.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import http.client
import importlib
import json
import os
import re
import smtplib
import ssl
import string
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import ConfigError, TrackingError
from .routing import Route, refuse_unknown_keys

#: ``User-Agent`` of the HTTP destinations.
USER_AGENT = "flask-tracking-forwarder/1"
#: Header holding ``sha256=<hex HMAC-SHA256 of the body keyed with the shared secret>``.
SIGNATURE_HEADER = "X-Tracking-Signature"
#: Most events one job carries.
MAX_BATCH_SIZE = 5000
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_MISSING: Any = object()


class DeliveryError(TrackingError):
    """A destination could not take (all of) a batch. ``delivered``: ids it did take."""

    def __init__(self, message: str, *, delivered: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.delivered = frozenset(delivered)


class RetryableError(DeliveryError):
    """Trying again later may work: the deliveries stay pending and are retried."""


class PermanentError(DeliveryError):
    """Trying again will not help: the deliveries are marked failed."""


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One event as a destination sends it."""

    #: ``tracking_events.event_id``.
    event_id: str
    #: Stable for this (event, destination): a receiver that has seen it drops the event.
    idempotency_key: str
    #: The edX tracking-log object, without the fields the route drops.
    line: dict[str, Any]


class Options:
    """The ``options`` of a destination, read with checks that say the fix."""

    def __init__(self, where: str, values: Mapping[str, Any]) -> None:
        self.where = where
        self.values = dict(values)
        self.used: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value (``default`` when absent or ``None``)."""
        self.used.add(key)
        value = self.values.get(key)
        return default if value is None else value

    def _require(self, key: str, default: Any, hint: str) -> Any:
        value = self.get(key, default)
        if value is _MISSING:
            raise ConfigError(f"{self.where}['{key}'] is required: {hint}")
        return value

    def text(self, key: str, default: Any = _MISSING, *, hint: str = "a string") -> str:
        value = self._require(key, default, hint)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.where}['{key}'] must be {hint}, not {value!r}.")
        return value

    def number(self, key: str, default: float, *, hint: str = "a number of seconds > 0") -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{self.where}['{key}'] must be {hint}, not {value!r}.")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"{self.where}['{key}'] must be an integer >= {minimum}, not {value!r}."
            )
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}['{key}'] must be True or False, not {value!r}.")
        return value

    def texts(self, key: str, *, hint: str) -> list[str]:
        value = self._require(key, _MISSING, hint)
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if (
            not isinstance(items, list | tuple)
            or not items
            or not all(isinstance(v, str) and v for v in items)
        ):
            raise ConfigError(f"{self.where}['{key}'] must be {hint}, not {value!r}.")
        return list(items)

    def headers(self, key: str) -> dict[str, str]:
        value = self.get(key, {})
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(
                f"{self.where}['{key}'] must be a dict of header names to strings, not {value!r}."
            )
        return dict(value)

    def http_url(self, key: str) -> str:
        url = self.text(key, hint="an http:// or https:// URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{self.where}['{key}'] must be an http:// or https:// URL, not {url!r}."
            )
        return url

    def template(self, key: str, default: str) -> str:
        value = self.text(key, default, hint="a str.format template")
        try:
            names = {
                field.split(".")[0].split("[")[0]
                for _, field, _, _ in string.Formatter().parse(value)
                if field is not None
            }
        except ValueError as exc:
            raise ConfigError(f"{self.where}['{key}'] is not a valid template: {exc}.") from None
        unknown = sorted(names - set(TEMPLATE_FIELDS))
        if unknown or "" in names:
            raise ConfigError(
                f"{self.where}['{key}'] uses {', '.join(map(repr, unknown or ['{}']))}:"
                f" name one of {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}."
            )
        return value

    def finish(self) -> None:
        """Refuse options nobody read: they are typos."""
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise ConfigError(
                f"{self.where} has unknown option(s) {', '.join(map(repr, unknown))};"
                f" this kind takes {known}."
            )


class Destination:
    """Base class of the destinations; subclass it for your own.

    ``__init__(name, options)`` reads and checks ``options`` (raise
    :class:`~flask_tracking.errors.ConfigError` with the fix, or use the helpers of
    ``self.options``); ``send(events)`` delivers one batch or raises
    :class:`RetryableError` / :class:`PermanentError`; ``close()`` frees connections.

    ``send`` runs in a worker (or in the app's forwarding thread without Redis), inside
    the app context, one batch at a time per process. It may be called again with events
    it already took (after a crash between sending and recording): use
    ``event.idempotency_key`` where the receiver supports it.
    """

    #: The name used in ``"kind"`` (informative for custom classes).
    kind: ClassVar[str] = "custom"
    #: Events per job unless the destination's ``batch_size`` says otherwise.
    default_batch_size: ClassVar[int] = 100
    #: Refuse unknown option keys (the built-in kinds do).
    strict_options: ClassVar[bool] = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = Options(f"TRACKING_DESTINATIONS[{name!r}]['options']", options)
        #: Seconds one network operation may take, or ``None``; checked to stay below
        #: ``TRACKING_FORWARD_JOB_TIMEOUT``.
        self.timeout: float | None = None

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        """Deliver ``events`` or raise :class:`RetryableError` / :class:`PermanentError`."""
        raise NotImplementedError

    def close(self) -> None:
        """Free what the destination holds open (connections, files)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def sign(secret: bytes, body: bytes) -> str:
    """The value of the signature header: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def raise_for_status(status: int, text: str, where: str, *, delivered: Iterable[str] = ()) -> None:
    """2xx: delivered. 408, 429, 5xx: :class:`RetryableError`. Anything else: permanent."""
    if 200 <= status < 300:
        return
    detail = " ".join(text.split())[:200]
    message = f"HTTP {status} from {where}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        raise RetryableError(message, delivered=delivered)
    if 300 <= status < 400:
        message += " (redirects are not followed: configure the final URL)"
    raise PermanentError(message, delivered=delivered)


class HttpClient:
    """POSTs to one URL over a kept-alive connection (one request at a time)."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self.timeout = timeout
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.where = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._pid = os.getpid()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._pid != os.getpid():  # forked: the parent's socket is not ours
            self._conn, self._pid = None, os.getpid()
        if self._conn is not None:
            return self._conn, True
        conn: http.client.HTTPConnection
        if self.https:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._conn = conn
        return conn, False

    def post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """``(status, body text)``; network failures raise :class:`RetryableError`."""
        with self._lock:
            for attempt in (1, 2):
                conn, reused = self._connection()
                try:
                    conn.request("POST", self.path, body=body, headers=dict(headers))
                    response = conn.getresponse()
                    data = response.read()
                except (
                    http.client.RemoteDisconnected,
                    ConnectionResetError,
                    BrokenPipeError,
                ) as exc:
                    self._close()
                    if reused and attempt == 1:
                        continue  # the server dropped an idle kept-alive connection
                    raise RetryableError(f"POST {self.where} failed: {exc!r}") from exc
                except TimeoutError as exc:
                    self._close()
                    raise RetryableError(
                        f"POST {self.where}: no answer within {self.timeout:g} s"
                    ) from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._close()
                    raise RetryableError(f"POST {self.where} failed: {exc!r}") from exc
                if response.will_close:
                    self._close()
                return response.status, data.decode("utf-8", "replace")
        raise AssertionError("unreachable")  # pragma: no cover

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._close()


class WebhookDestination(Destination):
    """POSTs a signed JSON batch to a URL.

    Options: ``url`` (required), ``secret`` (required: the body's HMAC-SHA256 goes in
    ``X-Tracking-Signature: sha256=<hex>``), ``timeout`` (seconds, default 10),
    ``headers`` (extra request headers). The body::

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
        ).encode()
        self.timeout = self.options.number("timeout", 10.0)
        self.extra_headers = self.options.headers("headers")
        self.client = HttpClient(self.url, self.timeout)

    def body(self, events: Sequence[OutgoingEvent]) -> bytes:
        document = {
            "destination": self.name,
            "sent_at": datetime.now(UTC).isoformat(),
            "events": [
                {"idempotency_key": e.idempotency_key, "event_id": e.event_id, "data": e.line}
                for e in events
            ],
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()

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
        raise_for_status(status, text, self.client.where)

    def close(self) -> None:
        self.client.close()


#: Names a Slack or email template may use.
TEMPLATE_FIELDS = (
    "event_type",
    "event_source",
    "username",
    "user_id",
    "course_id",
    "org_id",
    "time",
    "page",
    "name",
    "session",
    "ip",
    "host",
    "event",
    "event_id",
    "destination",
    "count",
)


def event_fields(event: OutgoingEvent, destination: str) -> dict[str, str]:
    """The template fields of one event (``-`` for what it lacks)."""
    line = event.line
    raw_context = line.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    payload = line.get("event")
    if not isinstance(payload, str):
        payload = json.dumps(payload, ensure_ascii=False, default=str)
    when = line.get("time")
    if isinstance(when, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(when).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    values: dict[str, Any] = {
        "event_type": line.get("event_type"),
        "event_source": line.get("event_source"),
        "username": line.get("username"),
        "user_id": context.get("user_id"),
        "course_id": context.get("course_id"),
        "org_id": context.get("org_id"),
        "time": when,
        "page": line.get("page"),
        "name": line.get("name"),
        "session": line.get("session"),
        "ip": line.get("ip"),
        "host": line.get("host"),
        "event": payload if len(payload) <= 200 else payload[:199] + "…",
        "event_id": event.event_id,
        "destination": destination,
        "count": "1",
    }
    return {k: "-" if v is None or v == "" else str(v) for k, v in values.items()}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackDestination(Destination):
    """Posts one readable message per batch to a Slack incoming webhook.

    Options: ``url`` (required), ``template`` (one line per event, ``str.format`` with
    the names in :data:`TEMPLATE_FIELDS`), ``title`` (first line; ``{count}``,
    ``{destination}``), ``max_lines`` (default 20; the rest is summed up), ``timeout``.
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

    def text(self, events: Sequence[OutgoingEvent]) -> str:
        shown = events[: self.max_lines]
        title_fields = {f: "-" for f in TEMPLATE_FIELDS}
        title_fields.update(count=str(len(events)), destination=self.name)
        lines = [self.title.format_map(title_fields)]
        for event in shown:
            fields = {k: _slack_escape(v) for k, v in event_fields(event, self.name).items()}
            lines.append("• " + self.template.format_map(fields))
        if len(events) > len(shown):
            lines.append(f"… and {len(events) - len(shown)} more")
        return "\n".join(lines)

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        body = json.dumps({"text": self.text(events)}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        status, text = self.client.post(body, headers)
        raise_for_status(status, text, self.client.where)

    def close(self) -> None:
        self.client.close()


class EmailDestination(Destination):
    """Mails each event (or one digest per batch) through SMTP.

    Options: ``sender`` and ``recipients`` (required), ``host`` (``localhost``), ``port``
    (25, or 465 with ``ssl``), ``starttls`` / ``ssl``, ``username`` / ``password``,
    ``timeout``, ``digest`` (one message per batch instead of one per event),
    ``subject`` (per event) / ``digest_subject`` (templates). Bodies end with the events
    as JSON lines (``idempotency_key``, ``event_id``, ``data``); the ``Message-ID`` is
    derived from the idempotency key(s).
    """

    kind = "email"
    default_batch_size = 20
    strict_options = True
    JSON_MARKER = "-- events as JSON lines --"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.sender = self.options.text("sender", hint="an address: 'tracking@example.org'")
        self.recipients = self.options.texts(
            "recipients", hint="a list of addresses (or a comma-separated string)"
        )
        self.host = self.options.text("host", "localhost", hint="an SMTP host name")
        self.ssl = self.options.flag("ssl", False)
        self.starttls = self.options.flag("starttls", False)
        self.port = self.options.integer("port", 465 if self.ssl else 25, minimum=1)
        self.username = self.options.get("username")
        self.password = self.options.get("password")
        self.smtp_timeout = self.options.number("timeout", 10.0)
        self.timeout = self.smtp_timeout
        self.digest = self.options.flag("digest", False)
        self.subject = self.options.template("subject", "[tracking] {event_type} in {course_id}")
        self.digest_subject = self.options.template(
            "digest_subject", "[tracking] {count} events for {destination}"
        )
        if self.ssl and self.starttls:
            raise ConfigError(f"{self.options.where}: set 'ssl' or 'starttls', not both.")
        domain = self.sender.rpartition("@")[2].strip("> ")
        self.msgid_domain = domain or "flask-tracking"

    def _summary(self, fields: Mapping[str, str]) -> str:
        return (
            f"{fields['time']}  {fields['event_type']} ({fields['event_source']})"
            f"  user {fields['username']}  course {fields['course_id']}"
        )

    def _json_lines(self, events: Sequence[OutgoingEvent]) -> str:
        return "\n".join(
            json.dumps(
                {"idempotency_key": e.idempotency_key, "event_id": e.event_id, "data": e.line},
                ensure_ascii=False,
                default=str,
            )
            for e in events
        )

    def messages(self, events: Sequence[OutgoingEvent]) -> list[tuple[list[str], EmailMessage]]:
        """``(event ids, message)`` pairs for a batch."""
        out = []
        if self.digest:
            fields = {f: "-" for f in TEMPLATE_FIELDS}
            fields.update(count=str(len(events)), destination=self.name)
            lines = [self._summary(event_fields(e, self.name)) for e in events]
            body = "\n".join([*lines, "", self.JSON_MARKER, self._json_lines(events), ""])
            keys = "\n".join(e.idempotency_key for e in events)
            msgid = hashlib.sha256(keys.encode()).hexdigest()[:32]
            out.append(([e.event_id for e in events], self._message(fields, body, msgid, True)))
            return out
        for event in events:
            fields = event_fields(event, self.name)
            body = "\n".join(
                [self._summary(fields), "", self.JSON_MARKER, self._json_lines([event]), ""]
            )
            message = self._message(fields, body, event.idempotency_key, False)
            message["X-Tracking-Idempotency-Key"] = event.idempotency_key
            out.append(([event.event_id], message))
        return out

    def _message(
        self, fields: Mapping[str, str], body: str, msgid: str, digest: bool
    ) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        subject = (self.digest_subject if digest else self.subject).format_map(fields)
        message["Subject"] = " ".join(subject.split())
        message["Message-ID"] = f"<{msgid}@{self.msgid_domain}>"
        message["X-Tracking-Destination"] = self.name
        message.set_content(body)
        return message

    def _connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.ssl:
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                timeout=self.smtp_timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.smtp_timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(str(self.username), str(self.password or ""))
        except BaseException:
            with contextlib.suppress(Exception):
                smtp.close()
            raise
        return smtp

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        delivered: list[str] = []
        where = f"smtp://{self.host}:{self.port}"
        try:
            smtp = self._connect()
            try:
                for ids, message in self.messages(events):
                    smtp.send_message(message)
                    delivered.extend(ids)
            finally:
                with contextlib.suppress(Exception):
                    smtp.quit()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = PermanentError if codes and all(c >= 500 for c in codes) else RetryableError
            raise error(
                f"{where} refused every recipient: {exc.recipients}", delivered=delivered
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
            error = PermanentError if exc.smtp_code >= 500 else RetryableError
            raise error(
                f"{where} answered {exc.smtp_code} {text}".strip(), delivered=delivered
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{where}: {exc}", delivered=delivered) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableError(f"{where} failed: {exc!r}", delivered=delivered) from exc


class LogDestination(Destination):
    """Appends edX tracking-log JSON lines to a file, rotated by size.

    Options: ``path`` (required), ``max_bytes`` (rotate before the file would pass it;
    default 100 MiB, 0: never), ``backup_count`` (files kept, ``path.1`` the newest;
    default 5). Several processes may write to the same file: writes and rotation hold
    an exclusive lock on ``path + ".lock"``.
    """

    kind = "log"
    default_batch_size = 1000
    strict_options = True

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.path = os.path.abspath(self.options.text("path", hint="a file path"))
        self.max_bytes = self.options.integer("max_bytes", 100 * 1024 * 1024)
        self.backup_count = self.options.integer("backup_count", 5)

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if not events:
            return
        data = "".join(
            json.dumps(e.line, ensure_ascii=True, default=str) + "\n" for e in events
        ).encode()
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path + ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._rotate(len(data))
                with open(self.path, "ab") as out:
                    out.write(data)
        except OSError as exc:
            raise RetryableError(f"writing {self.path} failed: {exc}") from exc

    def _rotate(self, incoming: int) -> None:
        if not self.max_bytes:
            return
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        if self.backup_count == 0:
            os.remove(self.path)
            return
        for index in range(self.backup_count - 1, 0, -1):
            older = f"{self.path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")


#: Built-in and registered kinds.
KINDS: dict[str, type[Destination]] = {
    "webhook": WebhookDestination,
    "slack": SlackDestination,
    "email": EmailDestination,
    "log": LogDestination,
}


def register_kind(name: str, cls: type[Destination]) -> None:
    """Make ``cls`` usable as ``"kind": name`` in ``TRACKING_DESTINATIONS``."""
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise TypeError(f"{cls!r} is not a Destination subclass")
    KINDS[name] = cls


def destination_class(where: str, kind: Any) -> type[Destination]:
    """The class named by ``kind``: a registered name, ``"module:Class"`` or a class."""
    if isinstance(kind, type) and issubclass(kind, Destination):
        return kind
    if isinstance(kind, str) and kind in KINDS:
        return KINDS[kind]
    if isinstance(kind, str) and ":" in kind:
        module_name, _, attr = kind.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: cannot import {kind!r}: {exc}.") from None
        if isinstance(found, type) and issubclass(found, Destination):
            return found
        raise ConfigError(
            f"{where}: {kind!r} is not a subclass of flask_tracking.forwarding.Destination."
        )
    raise ConfigError(
        f"{where} must be one of {', '.join(map(repr, KINDS))}, a 'package.module:Class'"
        f" path or a Destination subclass, not {kind!r}."
    )


@dataclass(frozen=True, slots=True)
class Target:
    """A configured destination: the instance, its route and its delivery policy."""

    name: str
    destination: Destination
    route: Route
    batch_size: int
    max_attempts: int
    #: Seconds to wait before retry 1, 2, ... (doubling from ``backoff``, capped).
    backoff: tuple[int, ...]

    def delay(self, retries_done: int) -> int:
        """Seconds before the next attempt, after ``retries_done`` retries."""
        return self.backoff[min(retries_done, len(self.backoff) - 1)]


TARGET_KEYS = ("kind", "options", "route", "batch_size", "max_attempts", "backoff", "backoff_max")


def load_targets(config: Any, *, job_timeout: float) -> dict[str, Target]:
    """Read and check ``TRACKING_DESTINATIONS``; raise ``ConfigError`` with the fix."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(
            "TRACKING_DESTINATIONS must be a dict of name -> settings, for example"
            " {'lrs': {'kind': 'webhook', 'options': {'url': ..., 'secret': ...}}};"
            f" not {config!r}."
        )
    targets: dict[str, Target] = {}
    for name, spec in config.items():
        where = f"TRACKING_DESTINATIONS[{name!r}]"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"{where}: a destination name is 1-100 letters, digits, '_', '.', '-'."
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"{where} must be a dict with 'kind', 'options' and optionally 'route';"
                f" not {spec!r}."
            )
        refuse_unknown_keys(
            where,
            spec,
            TARGET_KEYS,
            f"use {', '.join(TARGET_KEYS)} (kind-specific settings go in 'options').",
        )
        if "kind" not in spec:
            raise ConfigError(f"{where}['kind'] is required: one of {', '.join(map(repr, KINDS))}.")
        cls = destination_class(f"{where}['kind']", spec["kind"])
        options = spec.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}['options'] must be a dict, not {options!r}.")
        destination = cls(name, options)
        if cls.strict_options:
            destination.options.finish()
        timeout = destination.timeout
        if timeout is not None and timeout >= job_timeout:
            raise ConfigError(
                f"{where}['options']['timeout'] ({timeout:g} s) must be below"
                f" TRACKING_FORWARD_JOB_TIMEOUT ({job_timeout:g} s): lower the timeout or"
                " raise the job timeout."
            )
        batch_size = _int(where, spec, "batch_size", cls.default_batch_size, 1, MAX_BATCH_SIZE)
        max_attempts = _int(where, spec, "max_attempts", 10, 1, 1000)
        base = _int(where, spec, "backoff", 10, 1, 86400)
        cap = _int(where, spec, "backoff_max", 3600, base, 7 * 86400)
        backoff = tuple(min(cap, base * 2**i) for i in range(max(1, max_attempts - 1)))
        route = Route.from_config(f"{where}['route']", spec.get("route"))
        targets[name] = Target(name, destination, route, batch_size, max_attempts, backoff)
    return targets


def _int(where: str, spec: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{where}['{key}'] must be an integer from {low} to {high}, not {value!r}."
        )
    return value
