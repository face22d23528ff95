"""The ``email`` destination: one message per event, or one digest per batch, over SMTP."""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from ...errors import ConfigError
from ...redact import redact
from .base import Destination, OutgoingEvent, PermanentError, RetryableError, strict_json
from .text import blank_fields, escape_controls, event_fields


class EmailDestination(Destination):
    """Mails each event (or one digest per batch) through SMTP.

    Options: ``sender`` and ``recipients`` (required), ``host`` (``localhost``), ``port``
    (25, or 465 with ``ssl``), ``starttls`` / ``ssl``, ``username`` / ``password``,
    ``timeout``, ``digest`` (one message per batch instead of one per event),
    ``subject`` (per event) / ``digest_subject`` (templates). Bodies end with the events
    as JSON lines (``idempotency_key``, ``event_id``, ``data``); the ``Message-ID`` is
    derived from the idempotency key(s). Every value in a subject or a summary line has
    its control characters escaped, so an event cannot forge a header or a line.
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
        self.where = f"smtp://{self.host}:{self.port}"

    def secrets(self) -> list[str]:
        return [str(self.password)] if self.password else []

    def encode(self, event: OutgoingEvent) -> bytes:
        """The event's JSON line (``idempotency_key``, ``event_id``, ``data``), in ASCII:
        no character in it can break the line in a mail reader (NEL, U+2028, ...)."""
        return strict_json(
            {
                "idempotency_key": event.idempotency_key,
                "event_id": event.event_id,
                "data": event.line,
            },
            ascii=True,
            compact=False,
        )

    def _summary(self, fields: Mapping[str, str]) -> str:
        return (
            f"{fields['time']}  {fields['event_type']} ({fields['event_source']})"
            f"  user {fields['username']}  course {fields['course_id']}"
        )

    def messages(self, events: Sequence[OutgoingEvent]) -> list[tuple[list[str], EmailMessage]]:
        """``(event ids, message)`` pairs for a batch."""
        lines = [data.decode("utf-8") for data in self.encode_batch(events)]
        if self.digest:
            fields = blank_fields(self.name, len(events))
            summaries = [self._summary(event_fields(e, self.name)) for e in events]
            body = "\n".join([*summaries, "", self.JSON_MARKER, *lines, ""])
            keys = "\n".join(e.idempotency_key for e in events)
            msgid = hashlib.sha256(keys.encode()).hexdigest()[:32]
            return [([e.event_id for e in events], self._message(fields, body, msgid, True))]
        out = []
        for event, line in zip(events, lines, strict=True):
            fields = event_fields(event, self.name)
            body = "\n".join([self._summary(fields), "", self.JSON_MARKER, line, ""])
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
        message["Subject"] = " ".join(escape_controls(subject).split())
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
        messages = self.messages(events)
        delivered: list[str] = []
        where, known = self.where, self.secrets()
        try:
            smtp = self._connect()
            try:
                for ids, message in messages:
                    smtp.send_message(message)
                    delivered.extend(ids)
            finally:
                with contextlib.suppress(Exception):
                    smtp.quit()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = PermanentError if codes and all(c >= 500 for c in codes) else RetryableError
            raise error(
                redact(f"{where} refused every recipient: {exc.recipients}", known),
                delivered=delivered,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
            error = PermanentError if exc.smtp_code >= 500 else RetryableError
            raise error(
                redact(f"{where} answered {exc.smtp_code} {text}".strip(), known),
                delivered=delivered,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(redact(f"{where}: {exc}", known), delivered=delivered) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableError(
                redact(f"{where} failed: {exc!r}", known), delivered=delivered
            ) from exc
