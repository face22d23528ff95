"""HTTP for the webhook and Slack destinations: a kept-alive POST client and status rules.

A URL's user info (``https://user:pass@host/...``) is sent as HTTP Basic authentication
(unless the headers already carry ``Authorization``); error messages name the URL
through :func:`~flask_tracking.redact.redact_url`, so no credential, query
token or Slack path token ends up in ``last_error``.
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
