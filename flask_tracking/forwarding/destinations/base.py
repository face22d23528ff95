"""What every destination shares: the batch it gets, the errors it raises, strict JSON.

A destination gets a batch of :class:`OutgoingEvent` (the edX tracking-log object after
field stripping, the event id and an idempotency key) and either returns (the whole batch
is delivered) or raises:

- :class:`RetryableError` when trying again later may work (the receiver is down, slow,
  overloaded: HTTP 408, 429, 5xx, timeouts, refused connections, SMTP 4xx);
- :class:`PermanentError` when it will not (HTTP 4xx, SMTP 5xx, a bad address): the
  deliveries are marked failed at once and wait for ``flask tracking forward --failed``.

Both take ``delivered=`` (the event ids that did go through before the error), so a
destination that sends one message per event reports partial progress. Any other
exception counts as retryable.

Before a batch is sent, the outbox asks the destination to :meth:`Destination.encode`
each event on its own. An event that cannot be encoded (NaN or Infinity, a lone
surrogate, nesting too deep, or whatever a custom ``encode`` refuses) fails only its own
delivery, for good, with the reason in ``last_error``; the rest of the batch is sent.
Bodies are strict JSON: ``allow_nan=False``, valid UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...errors import TrackingError
from .options import Options

_COMPACT = (",", ":")
#: What ``encode`` may raise for an event it cannot encode (anything else is a bug).
ENCODE_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, RecursionError)


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
    #: What :meth:`Destination.encode` made of it (set by the outbox before ``send``).
    encoded: bytes | None = None


def _encoder(ascii: bool, compact: bool) -> json.JSONEncoder:
    return json.JSONEncoder(
        ensure_ascii=ascii,
        allow_nan=False,
        separators=_COMPACT if compact else None,
        default=str,
    )


#: Built once: ``json.dumps`` with options builds an encoder per call (per event here).
_ENCODERS = {(a, c): _encoder(a, c) for a in (False, True) for c in (False, True)}


def strict_json(value: Any, *, ascii: bool = False, compact: bool = True) -> bytes:
    """``value`` as strict JSON bytes: no NaN or Infinity, no lone surrogate.

    Raises ``ValueError`` (NaN, Infinity, or ``UnicodeEncodeError`` for a lone surrogate)
    or ``RecursionError`` (nesting too deep). ``ascii``: ``\\u`` escapes for every
    non-ASCII character (what ``flask tracking export`` writes).
    """
    text = _ENCODERS[ascii, compact].encode(value)
    if not ascii:
        return text.encode("utf-8")
    if "\\ud" in text:  # surrogates were escaped, not refused: check they are pairs
        _ENCODERS[False, compact].encode(value).encode("utf-8")
    return text.encode("ascii")


def encode_failure(exc: BaseException) -> str:
    """Why an event could not be encoded, without quoting the event (it is personal)."""
    if isinstance(exc, UnicodeEncodeError):
        char = exc.object[exc.start : exc.start + 1]
        what = (
            f"a lone surrogate (U+{ord(char):04X}), which UTF-8 cannot encode"
            if char and 0xD800 <= ord(char) <= 0xDFFF
            else f"text that UTF-8 cannot encode ({exc.reason})"
        )
    elif isinstance(exc, RecursionError):
        what = "values nested too deeply to encode"
    elif isinstance(exc, ValueError) and "JSON compliant" in str(exc):
        what = "NaN or Infinity, which strict JSON cannot hold"
    else:
        what = f"a value it cannot encode ({type(exc).__name__}: {exc})"
    return (
        f"Cannot encode the event: it holds {what}. Fix or delete the stored event (or drop"
        " the field with the route's drop_fields), then re-drive with"
        " `flask tracking forward --failed`."
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

    def encode(self, event: OutgoingEvent) -> bytes:
        """One event as this destination sends it (default: its line as strict JSON).

        Called by the outbox for each event before :meth:`send`; the result is in
        ``event.encoded``. Raise ``ValueError`` or ``TypeError`` for an event this
        destination can never send: that delivery alone fails, for good, with the message.
        """
        return strict_json(event.line)

    def encode_batch(self, events: Sequence[OutgoingEvent]) -> list[bytes]:
        """``event.encoded`` of each event, encoding those that are not yet (direct calls
        of ``send``); an event that cannot be encoded raises :class:`PermanentError`."""
        out = []
        for event in events:
            if event.encoded is not None:
                out.append(event.encoded)
                continue
            try:
                out.append(self.encode(event))
            except ENCODE_ERRORS as exc:
                raise PermanentError(f"Event {event.event_id}: {encode_failure(exc)}") from exc
        return out

    def secrets(self) -> list[str]:
        """Secrets of this destination's settings, masked in errors, output and logs."""
        return []

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        """Deliver ``events`` or raise :class:`RetryableError` / :class:`PermanentError`."""
        raise NotImplementedError

    def close(self) -> None:
        """Free what the destination holds open (connections, files)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
