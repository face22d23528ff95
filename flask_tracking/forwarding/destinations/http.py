"""HTTP for the webhook and Slack destinations: a kept-alive POST client and status rules.

A URL's user info (``https://user:pass@host/...``) is sent as HTTP Basic authentication
(unless the headers already carry ``Authorization``); error messages name the URL
through :func:`~flask_tracking.redact.redact_url`, so no credential, query
token or Slack path token ends up in ``last_error``.

A receiver's answer is read in bounded memory and time: at most :data:`ANSWER_LIMIT`
bytes (its status decides; its text is only quoted in errors), the rest left unread and
the connection closed; and the body must be in within the timeout after the headers, so
a receiver that trickles bytes cannot keep a worker for ever (each read also waits at
most the timeout).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import os
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from ...redact import redact, redact_url
from .base import PermanentError, RetryableError

#: ``User-Agent`` of the HTTP destinations.
USER_AGENT = "flask-tracking-forwarder/1"
#: Header holding ``sha256=<hex HMAC-SHA256 of the body keyed with the shared secret>``.
SIGNATURE_HEADER = "X-Tracking-Signature"
#: Characters of a receiver's answer quoted in an error.
DETAIL_LIMIT = 200
#: Bytes of a receiver's answer read; a longer one is cut there (and not waited for).
ANSWER_LIMIT = 64 * 1024
_PIECE = 16 * 1024


def sign(secret: bytes, body: bytes) -> str:
    """The value of the signature header: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def raise_for_status(
    status: int,
    text: str,
    where: str,
    *,
    delivered: Iterable[str] = (),
    known: Iterable[str] = (),
) -> None:
    """2xx: delivered. 408, 429, 5xx: :class:`RetryableError`. Anything else: permanent.

    ``known``: secrets to mask if the receiver echoes them in its answer.
    """
    if 200 <= status < 300:
        return
    detail = redact(" ".join(text.split())[:DETAIL_LIMIT], known)
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
        self.timeout = timeout
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        #: The URL as error messages show it: no user info, no query, no path token.
        self.where = redact_url(f"{parts.scheme}://{parts.netloc}{parts.path or '/'}")
        self.authorization: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
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
        sent = dict(headers)
        if self.authorization and not any(k.lower() == "authorization" for k in sent):
            sent["Authorization"] = self.authorization
        with self._lock:
            for attempt in (1, 2):
                conn, reused = self._connection()
                try:
                    conn.request("POST", self.path, body=body, headers=sent)
                    response = conn.getresponse()
                    data, whole = _read_answer(response, time.monotonic() + self.timeout)
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
                if response.will_close or not whole:  # not whole: the rest is unread
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


def _read_answer(response: http.client.HTTPResponse, deadline: float) -> tuple[bytes, bool]:
    """The answer's body up to :data:`ANSWER_LIMIT` bytes, and whether that is all of it;
    ``TimeoutError`` once ``deadline`` (``time.monotonic()``) has passed."""
    pieces: list[bytes] = []
    size = 0
    while size <= ANSWER_LIMIT:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer's body took too long")
        piece = response.read1(_PIECE)  # one read of the socket at most
        if not piece:
            response.read()  # b"": marks the answer done, so the connection can be reused
            return b"".join(pieces), True
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)[:ANSWER_LIMIT], False
