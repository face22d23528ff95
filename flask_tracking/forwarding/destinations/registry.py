"""Kinds of destinations, and ``TRACKING_DESTINATIONS`` read into checked targets."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ...redact import redact
from ..routing import Route, refuse_unknown_keys
from .base import Destination
from .caliper import CaliperDestination
from .logfile import LogDestination
from .mail import EmailDestination
from .slack import SlackDestination
from .webhook import WebhookDestination
from .xapi import XapiDestination

#: Most events one job carries.
MAX_BATCH_SIZE = 5000
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

#: Built-in and registered kinds.
KINDS: dict[str, type[Destination]] = {
    "webhook": WebhookDestination,
    "slack": SlackDestination,
    "email": EmailDestination,
    "log": LogDestination,
    "caliper": CaliperDestination,
    "xapi": XapiDestination,
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
    #: Seconds to wait after attempt 1, 2, ... failed (doubling from ``backoff``, capped).
    backoff: tuple[int, ...]

    def delay(self, attempts_done: int) -> int:
        """Seconds before the next attempt of a row that had ``attempts_done`` attempts
        before the one that just failed (0 after a first failure)."""
        return self.backoff[min(max(attempts_done, 0), len(self.backoff) - 1)]


TARGET_KEYS = ("kind", "options", "route", "batch_size", "max_attempts", "backoff", "backoff_max")


def load_targets(config: Any, *, job_timeout: float) -> dict[str, Target]:
    """Read and check ``TRACKING_DESTINATIONS``; raise ``ConfigError`` with the fix."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(
            "TRACKING_DESTINATIONS must be a dict of name -> settings, for example"
            " {'lrs': {'kind': 'webhook', 'options': {'url': ..., 'secret': ...}}};"
            f" not a {type(config).__name__}."
        )
    return {name: _target(name, spec, job_timeout) for name, spec in config.items()}


def _target(name: Any, spec: Any, job_timeout: float) -> Target:
    where = f"TRACKING_DESTINATIONS[{name!r}]"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: a destination name is 1-100 letters, digits, '_', '.', '-'.")
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{where} must be a dict with 'kind', 'options' and optionally 'route';"
            f" not {redact(repr(spec))}."
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
        raise ConfigError(f"{where}['options'] must be a dict, not a {type(options).__name__}.")
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
    return Target(name, destination, route, batch_size, max_attempts, backoff)


def _int(where: str, spec: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"{where}['{key}'] must be an integer from {low} to {high}, not {value!r}."
        )
    return value
