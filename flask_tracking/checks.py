"""Readers of ``TRACKING_*`` values: each returns the value in its type or raises a
``ConfigError`` that names the key, shows what was given and says what to write instead.

``config.load_config`` calls one reader per key; unknown ``TRACKING_*`` keys get a
:class:`ConfigWarning` with the nearest known key ("did you mean ...?").
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import warnings
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .errors import ConfigError, ConfigWarning

#: Strings read as booleans (any case, spaces around ignored); others are refused.
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def shown(value: Any) -> str:
    """``value`` as a message shows it: its repr (cut at 60 characters) and its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({a_type(value)})"


def a_type(value: Any) -> str:
    """``"an int"``, ``"a str"``: the type of ``value`` with its article."""
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def boolean(key: str, value: Any) -> bool:
    """``True``/``False``, ``1``/``0``, or one of the words of ``TRUE_WORDS``/``FALSE_WORDS``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConfigError(
        f"{key} must be True or False (or one of the strings 'true', 'false', 'yes', 'no',"
        f" 'on', 'off', '1', '0'), not {shown(value)}."
    )


def integer(key: str, value: Any, *, minimum: int = 0, example: int = 1, unit: str = "") -> int:
    """A whole number (not a bool, not a string) of at least ``minimum``."""
    what = f"a whole number of {unit}" if unit else "a whole number"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{key} must be {what}, for example {key} = {example}, not {shown(value)}."
        )
    if value < minimum:
        raise ConfigError(f"{key} must be {what} >= {minimum}, not {value!r}.")
    return value


def seconds(key: str, value: Any, *, positive: bool = False, example: float = 1.0) -> float:
    """A number of seconds (int or float, not a bool or a string), >= 0 or > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(
            f"{key} must be a number of seconds, for example {key} = {example}, not {shown(value)}."
        )
    if value < 0 or (positive and value == 0):
        raise ConfigError(
            f"{key} must be {'more than 0' if positive else 'at least 0'} seconds, not {value!r}."
        )
    return float(value)


def choice(key: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices``."""
    options = tuple(choices)
    if value not in options:
        listed = " or ".join(repr(o) for o in options)
        raise ConfigError(f"{key} must be {listed}, not {shown(value)}.")
    return str(value)


def optional_choice(key: str, value: Any, choices: Iterable[str]) -> str | None:
    """``None`` or one of ``choices``."""
    options = tuple(choices)
    if value is None or value in options:
        return value if value is None else str(value)
    listed = ", ".join(repr(o) for o in options)
    raise ConfigError(f"{key} must be None or one of {listed}, not {shown(value)}.")


def optional_integer(key: str, value: Any, *, minimum: int, example: int) -> int | None:
    """``None`` (off) or a whole number of days >= ``minimum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{key} must be a whole number of days, for example {key} = {example}, or None"
            f" to keep everything; not {shown(value)}."
        )
    if value < minimum:
        raise ConfigError(f"{key} must be a whole number of days >= {minimum}, not {value!r}.")
    return value


def text(key: str, value: Any, *, example: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{key} must be a non-empty string, for example {key} = {example!r}, not"
            f" {shown(value)}."
        )
    return value


def secret(key: str, value: Any) -> bytes:
    """A non-empty ``str`` or ``bytes`` key, as bytes."""
    if isinstance(value, str) and value:
        return value.encode()
    if isinstance(value, bytes | bytearray) and value:
        return bytes(value)
    raise ConfigError(
        f"{key} must be a non-empty str or bytes (for example secrets.token_hex(32)),"
        f" not {a_type(value)}."
    )


def optional_path(key: str, value: Any) -> str | None:
    """A file path (``str`` or ``os.PathLike``), or ``None``/``""`` for none."""
    if value is None or value == "":
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise ConfigError(
        f"{key} must be a file path (a str or pathlib.Path) or None, not {shown(value)}."
    )


def pattern(key: str, value: Any, *, group: str, example: str) -> re.Pattern[str] | None:
    """A regular expression (a string or a compiled pattern) with the named ``group``."""
    if value is None or value == "":
        return None
    if isinstance(value, re.Pattern):
        compiled = value
    elif isinstance(value, str):
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ConfigError(
                f"{key} is not a valid regular expression ({exc}): {value!r}. Write it as a"
                f" raw string, for example {key} = r{example!r}, or None to turn it off."
            ) from None
    else:
        raise ConfigError(f"{key} must be a regular expression string or None, not {shown(value)}.")
    if not isinstance(compiled.pattern, str):
        raise ConfigError(f"{key} must be a str pattern, not a bytes pattern.")
    if group not in compiled.groupindex:
        raise ConfigError(
            f"{key} must have a named group {group!r}, for example {key} = r{example!r}."
        )
    return compiled


def string_list(key: str, value: Any, *, example: str) -> tuple[str, ...]:
    """A list/tuple/set of strings, or one comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple | set | frozenset) and all(
        isinstance(item, str) for item in value
    ):
        return tuple(value)
    raise ConfigError(
        f"{key} must be a list of strings or one comma-separated string, for example"
        f" {key} = [{example!r}], not {shown(value)}."
    )


def warn_unknown_keys(config: Mapping[str, Any], known: Collection[str], prefix: str) -> None:
    """A :class:`ConfigWarning` for each key of ``config`` starting with ``prefix`` that
    is not in ``known``, naming the nearest known keys when there are some."""
    names = {k[len(prefix) :]: k for k in known if k.startswith(prefix)}
    for key in sorted(k for k in config if isinstance(k, str) and k.startswith(prefix)):
        if key in known:
            continue
        nearest = difflib.get_close_matches(key[len(prefix) :], list(names), n=2, cutoff=0.6)
        hint = (
            f"did you mean {' or '.join(names[n] for n in nearest)}?"
            if nearest
            else "the settings are listed in docs/config.md."
        )
        warnings.warn(
            f"{key} is not a flask-tracking setting and is ignored: {hint}",
            ConfigWarning,
            stacklevel=_caller_level(),
        )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package (the app's
    ``Tracking(app)`` or ``init_app(app)`` line), so the warning points there."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package + os.sep
    ):
        frame = frame.f_back
        level += 1
    return level
