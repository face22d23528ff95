"""Secrets out of what leaves the process: ``last_error``, CLI output, log lines.

Delivery errors name the URL they went to, receivers echo what they were sent, and the
settings hold passwords. :func:`redact` is the one place that turns such a text into one
that can be stored, printed or logged:

- in every ``scheme://...`` URL: the user info (``user:pass@``) becomes ``***@``, every
  query-string and fragment value becomes ``***``, the token of a Slack-style webhook
  path (``/services/T.../B.../<token>``) and any path segment that looks like a token
  (16 or more letters, digits, ``_`` or ``-``, with both a letter and a digit) become
  ``***``;
- every known secret (a webhook's shared secret and headers, an SMTP password, a Redis
  password: what the caller passes as ``known``) becomes ``***``, as given and
  percent-encoded.

:class:`RedactingFilter` applies the URL rules to every record of the forwarding loggers
(message and traceback), so a log line never carries a URL's secrets either.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
#: Known secrets shorter than this are not searched for (they would mask ordinary words).
MIN_SECRET = 4
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{},;]+")
_TOKEN = re.compile(r"^(?=[A-Za-z0-9_-]*[A-Za-z])(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{16,}$")
_SLACK_PATH = re.compile(r"^(/services/[^/]+/[^/]+/)[^/]+")
_QUERY_VALUE = re.compile(r"=[^&;#]*")


def redact_url(url: str) -> str:
    """``url`` without its secrets (user info, query values, token-like path segments)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    path, hash_, fragment = ("/" + tail if slash else "").partition("#")
    path, question, query = path.partition("?")
    path = _SLACK_PATH.sub(lambda m: m.group(1) + MASK, path)
    path = "/".join(MASK if _TOKEN.match(part) else part for part in path.split("/"))
    if question:
        query = _QUERY_VALUE.sub("=" + MASK, query) if "=" in query else MASK
    return (
        f"{scheme}://{authority}{path}"
        + (f"?{query}" if question else "")
        + (f"#{MASK}" if hash_ and fragment else hash_)
    )


def redact(text: str, known: Iterable[str | None] = ()) -> str:
    """``text`` with the secrets of its URLs and every ``known`` secret masked."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in sorted({s for s in known if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            if form in text:
                text = text.replace(form, MASK)
    return text


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL carries, for ``known``: its password, its query values of 8 or more
    characters (shorter ones are rarely secret, and would mask ordinary words), its
    token-like path segments."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password]
    for pair in parts.query.split("&"):
        value = unquote(pair.partition("=")[2])
        if len(value) >= 8:
            found.append(value)
    found.extend(part for part in parts.path.split("/") if _TOKEN.match(part))
    slack = _SLACK_PATH.match(parts.path)
    if slack:
        found.append(parts.path[len(slack.group(1)) :].split("/")[0])
    return list(dict.fromkeys(s for s in found if s))


def exception_text(exc: BaseException, known: Iterable[str | None] = ()) -> str:
    """``exc`` with its traceback, redacted: for log lines that must keep the traceback."""
    return redact("".join(traceback.format_exception(exc)).rstrip(), known)


class RedactingFilter(logging.Filter):
    """Redacts the message and the traceback of every record of the logger it is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return True


#: Put on each forwarding module's logger: ``logger.addFilter(REDACTING)``.
REDACTING = RedactingFilter()
