"""Anonymisation: the processor that runs last when ``TRACKING_ANONYMIZE`` is on.

The username becomes a stable anonymous id (a keyed hash), so is the user id; the IP is
truncated (IPv4 to /24, IPv6 to /48); an edX session key is hashed. Copies of these
inside the context are treated alike, and nothing personal is kept for export.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

from .event import IDENTITY_KEYS
from .requestinfo import keyed_hash

_PERSONAL_KEYS = IDENTITY_KEYS
#: ``"username": "ada"`` (or a number, or a string cut short) inside raw text.
_PERSONAL_IN_TEXT = re.compile(
    r'"(?P<key>username|user_id|ip|session)"(?P<sep>\s*:\s*)'
    r'(?P<value>"(?:[^"\\]|\\.)*"?|-?\d+)'
)


def truncate_ip(value: Any) -> Any:
    """``203.0.113.77`` → ``203.0.113.0``; IPv6 keeps its first 48 bits."""
    if not isinstance(value, str) or not value:
        return value
    return _truncate(value)


@functools.lru_cache(maxsize=4096)
def _truncate(value: str) -> str:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


class Anonymizer:
    """A processor: returns a new event with no raw personal identifiers."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def anonymous_id(self, username: Any, user_id: Any) -> str | None:
        """The anonymous id of a learner: keyed on the username, else the user id."""
        if isinstance(username, str) and username:
            return keyed_hash(self.key, username, purpose="user")
        if user_id not in (None, ""):
            return keyed_hash(self.key, f"id:{user_id}", purpose="user")
        return None

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        context = dict(event.get("context") or {})
        anon = self.anonymous_id(
            event.get("username") or context.get("username"), context.get("user_id")
        )
        out = dict(event)
        out["username"] = anon or ""
        out["ip"] = truncate_ip(event.get("ip"))
        out["session"] = self._session(event.get("session"))
        if "user_id" in context:
            context["user_id"] = anon
        if "username" in context:
            context["username"] = anon or ""
        if "ip" in context:
            context["ip"] = truncate_ip(context["ip"])
        if "session" in context:
            context["session"] = self._session(context["session"])
        out["context"] = context
        original = event.get("original")
        if original:
            values = {
                k: v
                for k, v in original.get("values", {}).items()
                if k not in _PERSONAL_KEYS and k != "context"
            }
            out["original"] = {"keys": original["keys"], "values": values}
        return out

    def scrub(self, line: Mapping[str, Any]) -> dict[str, Any]:
        """A raw line or request part with its identity fields anonymised (top level and
        context), for the failed-events table. Payloads are left alone."""
        out = dict(line)
        context = out.get("context")
        inner = dict(context) if isinstance(context, Mapping) else {}
        anon = self.anonymous_id(out.get("username") or inner.get("username"), inner.get("user_id"))
        for values in (out, inner):
            if "username" in values:
                values["username"] = anon or ""
            if "user_id" in values:
                values["user_id"] = anon
            if "ip" in values:
                values["ip"] = truncate_ip(values["ip"])
            if "session" in values:
                values["session"] = self._session(values["session"])
        if isinstance(context, Mapping):
            out["context"] = inner
        return out

    def scrub_text(self, text: str) -> str:
        """Raw text (a line that is not JSON, a torn body) with every identity value
        that can be found in it anonymised."""
        if '"' not in text:
            return text
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                return json.dumps(self.scrub(parsed), ensure_ascii=False)
        return _PERSONAL_IN_TEXT.sub(self._scrub_match, text)

    def _scrub_match(self, match: re.Match[str]) -> str:
        key, raw = match.group("key"), match.group("value")
        value: Any = raw.strip('"')
        if key == "ip":
            new: Any = truncate_ip(value)
        elif key == "session":
            new = self._session(value)
        elif key == "username":
            new = self.anonymous_id(value, None) or ""
        else:
            new = self.anonymous_id(None, value)
        return f'"{key}"{match.group("sep")}{json.dumps(new)}'

    def _session(self, value: Any) -> Any:
        if isinstance(value, str) and value:
            return keyed_hash(self.key, value, purpose="session-anon")
        return value


def without_identity(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event with no identity at all (for the failed table when a privacy processor
    failed): the identity fields and their copies in the context are removed."""
    out = dict(event)
    for key in _PERSONAL_KEYS:
        if key in out:
            out[key] = None
    context = out.get("context")
    if isinstance(context, Mapping):
        out["context"] = {k: v for k, v in context.items() if k not in _PERSONAL_KEYS}
    original = out.get("original")
    if isinstance(original, Mapping):
        values = original.get("values", {})
        out["original"] = {
            **original,
            "values": {k: v for k, v in values.items() if k not in _PERSONAL_KEYS},
        }
    return out
