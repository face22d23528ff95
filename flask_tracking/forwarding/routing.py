"""Routing rules: which events go to a destination, and which fields they lose on the way.

A destination's ``route`` (all keys optional)::

    "route": {
        "include": [                       # any rule matches -> routed (absent: everything)
            {"event_type": ["problem_*", "edx.video.*"], "source": "server"},
            {"course": "course-v1:MITx+*"},
        ],
        "exclude": [{"event_type": "edx.ui.*"}],   # any rule matches -> not routed
        "drop_fields": ["username", "ip", "context.user_id"],
    }

A rule has one or more of ``event_type``, ``source`` (``event_source``) and ``course``
(``context.course_id``, ``""`` when the event has none), each a glob (``fnmatch``, case
sensitive) or a list of globs; a rule matches when every key it has matches. Routing runs
in the storing transaction, so only matching (event, destination) pairs get a delivery
row, and only those are ever put in a job.

``drop_fields`` are paths into the edX tracking-log object sent out: ``username``,
``context.user_id``, ``event.answers`` (a payload stored as a JSON string is decoded,
stripped and encoded again). A missing field is fine.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

RULE_KEYS = ("event_type", "source", "course")
ROUTE_KEYS = ("include", "exclude", "drop_fields")


def _compile(globs: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


@dataclass(frozen=True, slots=True)
class Rule:
    """Globs on event type, source and course; ``None`` means "any"."""

    event_type: re.Pattern[str] | None = None
    source: re.Pattern[str] | None = None
    course: re.Pattern[str] | None = None

    def matches(self, event_type: str, source: str, course_id: str) -> bool:
        return not (
            (self.event_type is not None and not self.event_type.match(event_type))
            or (self.source is not None and not self.source.match(source))
            or (self.course is not None and not self.course.match(course_id))
        )


@dataclass(frozen=True, slots=True)
class Route:
    """The routing rules and field stripping of one destination."""

    include: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()
    drop_fields: tuple[tuple[str, ...], ...] = ()

    def matches(self, event_type: str | None, source: str | None, course_id: str | None) -> bool:
        """Whether an event with these columns goes to the destination."""
        fields = (event_type or "", source or "", course_id or "")
        if self.include and not any(rule.matches(*fields) for rule in self.include):
            return False
        return not any(rule.matches(*fields) for rule in self.exclude)

    def strip(self, line: dict[str, Any]) -> dict[str, Any]:
        """``line`` without the dropped fields (a new dict; ``line`` is left alone)."""
        for path in self.drop_fields:
            line = _drop(line, path)
        return line

    @classmethod
    def from_config(cls, where: str, value: Any) -> Route:
        """Read a ``route`` setting; ``where`` names it in error messages."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where} must be a dict with any of {', '.join(ROUTE_KEYS)},"
                f" for example {{'include': [{{'event_type': 'problem_*'}}]}}; not {value!r}."
            )
        refuse_unknown_keys(where, value, ROUTE_KEYS, f"use {', '.join(ROUTE_KEYS)}.")
        return cls(
            include=_rules(f"{where}['include']", value.get("include")),
            exclude=_rules(f"{where}['exclude']", value.get("exclude")),
            drop_fields=_paths(f"{where}['drop_fields']", value.get("drop_fields")),
        )


def refuse_unknown_keys(
    where: str, value: Mapping[str, Any], allowed: Sequence[str], hint: str
) -> None:
    """Raise ``ConfigError`` naming the keys of ``value`` outside ``allowed``."""
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}: {hint}")


def _rules(where: str, value: Any) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list of rules (dicts), not {value!r}.")
    rules = []
    for index, rule in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(rule, Mapping) or not rule:
            raise ConfigError(
                f"{here} must be a dict with one or more of {', '.join(RULE_KEYS)},"
                f" for example {{'event_type': 'problem_*', 'source': 'server'}}; not {rule!r}."
            )
        refuse_unknown_keys(here, rule, RULE_KEYS, f"a rule selects by {', '.join(RULE_KEYS)}.")
        rules.append(Rule(**{key: _globs(f"{here}['{key}']", rule[key]) for key in rule}))
    return tuple(rules)


def _globs(where: str, value: Any) -> re.Pattern[str]:
    globs = [value] if isinstance(value, str) else value
    if (
        not isinstance(globs, list | tuple)
        or not globs
        or not all(isinstance(g, str) for g in globs)
    ):
        raise ConfigError(
            f"{where} must be a glob string or a non-empty list of them"
            f" (for example 'problem_*' or ['play_video', 'pause_video']), not {value!r}."
        )
    return _compile(globs)


def _paths(where: str, value: Any) -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise ConfigError(f"{where} must be a list of field paths, not {value!r}.")
    paths = []
    for name in names:
        parts = tuple(name.split(".")) if isinstance(name, str) else ()
        if not parts or not all(parts):
            raise ConfigError(
                f"{where} holds {name!r}: a field path is a name or dotted names,"
                " for example 'username' or 'context.user_id'."
            )
        paths.append(parts)
    return tuple(paths)


def _drop(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if not isinstance(decoded, dict):
            return value
        stripped = _drop(decoded, path)
        return value if stripped is decoded else json.dumps(stripped, ensure_ascii=False)
    if not isinstance(value, dict) or path[0] not in value:
        return value
    head, rest = path[0], path[1:]
    out = dict(value)
    if rest:
        child = _drop(out[head], rest)
        if child is out[head]:
            return value
        out[head] = child
    else:
        del out[head]
    return out
