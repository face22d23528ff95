"""The ``options`` of a destination, read with checks whose messages say the fix."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ...errors import ConfigError

_MISSING: Any = object()

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

    def text(
        self, key: str, default: Any = _MISSING, *, hint: str = "a string", secret: bool = False
    ) -> str:
        """A non-empty string; ``secret``: never quoted in the error."""
        value = self._require(key, default, hint)
        if not isinstance(value, str) or not value:
            shown = f"not a {type(value).__name__}" if secret else f"not {value!r}"
            raise ConfigError(f"{self.where}['{key}'] must be {hint}, {shown}.")
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
                f"{self.where}['{key}'] must be a dict of header names to strings"
                f" (for example {{'Authorization': 'Bearer ...'}})."
            )
        return dict(value)

    def http_url(self, key: str) -> str:
        url = self.text(key, hint="an http:// or https:// URL")
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            valid = False
        if not valid:
            raise ConfigError(
                f"{self.where}['{key}'] must be an http:// or https:// URL"
                " (for example 'https://hooks.example.org/tracking')."
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
