"""Browser events of the video player.

The inventory documents ``play_video`` and ``pause_video`` (``id``, ``code``,
``currentTime``, ``speed``); the other player events follow the same shape. Real logs:
``speed`` is never sent with play/pause, speeds are strings (``"1.50"``), ``currentTime``
is an int or a float, ``code`` is a YouTube id or ``"html5"``, and ``id`` is either an
``i4x-...-video-...`` string or a bare hex block id.
"""

from __future__ import annotations

from typing import Final

from .. import event_types as et
from .spec import Decl, EventSpec, decl, object_event

TITLE: Final = "Video"
INTRO: Final = (
    "Sent by the video player in the browser. All carry the video's `id` and the "
    "`code` of the source; unknown extra keys (`duration`, ...) are accepted."
)


def _id() -> Decl:
    return decl(
        "id",
        "string or integer",
        "Id of the video (`i4x-HarvardX-PH207x-video-Simple_Random_Sample` or a hex block id).",
        required=True,
    )


def _code() -> Decl:
    return decl(
        "code",
        "string",
        "YouTube id of the video being watched, or `html5` / `mobile`.",
        required=True,
    )


def _time(name: str, description: str, *, required: bool = False) -> Decl:
    return decl(name, "number", description, required=required)


def _speed(name: str, description: str) -> Decl:
    return decl(name, "number or numeric string", description)


def _player_event(event_type: str, description: str, *, documented: bool) -> EventSpec:
    """A player event: ``documented`` ones (play/pause) require ``currentTime``, may
    carry ``speed``."""
    time_field = _time(
        "currentTime", "Position in the video, in seconds (int or float).", required=documented
    )
    speed_field = _speed(
        "speed", "Playback speed (`0.75`, `1.0`, `1.25`, `1.50`); real logs omit it."
    )
    decls = [_id(), _code(), time_field, *([speed_field] if documented else [])]
    return object_event(event_type, "browser", description, decls)


SPECS: Final[tuple[EventSpec, ...]] = (
    object_event(
        et.LOAD_VIDEO,
        "browser",
        "The player has loaded the video.",
        [_id(), _code()],
    ),
    _player_event(et.PLAY_VIDEO, "The learner started or resumed playback.", documented=True),
    _player_event(et.PAUSE_VIDEO, "The learner paused playback.", documented=True),
    _player_event(et.STOP_VIDEO, "Playback reached the end of the video.", documented=False),
    object_event(
        et.SEEK_VIDEO,
        "browser",
        "The learner moved to another position in the video.",
        [
            _id(),
            _code(),
            _time("old_time", "Position before the seek, in seconds."),
            _time("new_time", "Position after the seek, in seconds."),
            decl(
                "type",
                "string",
                "How the seek was made (`onSlideSeek`, `slide_seek`, `onCaptionSeek`, ...).",
            ),
        ],
    ),
    object_event(
        et.SPEED_CHANGE_VIDEO,
        "browser",
        "The learner changed the playback speed.",
        [
            _id(),
            _code(),
            _time("currentTime", "Position in the video, in seconds."),
            _time("current_time", "Position in the video, in seconds (newer spelling)."),
            _speed("old_speed", 'Speed before the change; a string such as `"1.50"`.'),
            _speed("new_speed", 'Speed after the change; a string such as `"2.0"`.'),
        ],
    ),
    _player_event(et.SHOW_TRANSCRIPT, "The learner showed the transcript.", documented=False),
    _player_event(et.HIDE_TRANSCRIPT, "The learner hid the transcript.", documented=False),
)
