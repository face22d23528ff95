"""Video: per video, what learners did and how much they watched; the view curve.

Events: ``load_video``, ``play_video``, ``pause_video``, ``seek_video``,
``speed_change_video``, ``stop_video`` and ``complete_video`` (and their mobile names
``edx.video.*``). SQL selects them (index ``(event_type, time)``) in time order with the
payload fields it needs (``id``, ``currentTime``/``current_time``, ``old_time``/``new_time``,
read by ``json_extract`` / ``->>``); Python replays them.

**Runs.** The events of one viewing (same learner, same ``session``, same video), in time
order, are replayed: a play starts a run at its ``currentTime``; a pause or stop ends it
at its ``currentTime``; a seek ends it at ``old_time`` and, if it was playing, starts the
next at ``new_time``; a speed change ends it and starts the next at its position. A
run whose end is unknown (a play while playing, or the last event is a play) is dropped.
A run is capped at twice the wall time it lasted (the player's fastest speed), so a bad
``currentTime`` cannot count hours.
``watched_seconds`` sums the runs; the curve counts, per bin of ``bin_seconds`` seconds
of the video, the runs that overlap it (``views``) and their distinct learners
(``viewers``), as edX's own video analytics shows where learners drop off.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from ._common import EVENTS, Rows, fetch, json_text, learner, number, where

KINDS: dict[str, str] = {
    "load_video": "load",
    "play_video": "play",
    "pause_video": "pause",
    "seek_video": "seek",
    "speed_change_video": "speed",
    "stop_video": "stop",
    "complete_video": "complete",
    "edx.video.loaded": "load",
    "edx.video.played": "play",
    "edx.video.paused": "pause",
    "edx.video.position.changed": "seek",
    "edx.video.speed.changed": "speed",
    "edx.video.stopped": "stop",
    "edx.video.completed": "complete",
}
MAX_SPEED = 2.0
#: The payload fields read (in SQL).
FIELDS = ("id", "currentTime", "current_time", "old_time", "new_time")


@dataclass(slots=True)
class _Video:
    plays: int = 0
    pauses: int = 0
    seeks: int = 0
    speed_changes: int = 0
    completions: int = 0
    viewers: set[str] = dc_field(default_factory=set)
    #: (learner, start, end) of every run.
    runs: list[tuple[str, float, float]] = dc_field(default_factory=list)


@dataclass(slots=True)
class _Viewing:
    playing: bool = False
    position: float = 0.0
    started: datetime | None = None


def _collect(
    bind: Engine | Connection,
    course_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, _Video]:
    query = (
        select(
            EVENTS.time,
            EVENTS.event_type,
            EVENTS.user_id,
            EVENTS.username,
            EVENTS.session,
            *(json_text(name) for name in FIELDS),
        )
        .where(*where(course_id, since, until, KINDS))
        .order_by(EVENTS.time, EVENTS.id)
    )
    videos: defaultdict[str, _Video] = defaultdict(_Video)
    viewings: defaultdict[tuple[str, str, str], _Viewing] = defaultdict(_Viewing)
    for when, event_type, user_id, username, session, *values in fetch(bind, query):
        video_id, current, current_snake, old_time, new_time = values
        who = learner(user_id, username)
        if video_id is None or who is None:
            continue
        video_id = str(video_id)
        kind = KINDS[event_type]
        video = videos[video_id]
        state = viewings[(who, str(session), video_id)]
        position = number(current if current is not None else current_snake)
        if kind == "play":
            video.plays += 1
            video.viewers.add(who)
            if state.playing:
                _close(video, state, who, None, when)
            state.playing, state.started = True, when
            state.position = position if position is not None else state.position
        elif kind in ("pause", "stop", "complete"):
            if kind == "pause":
                video.pauses += 1
            else:
                video.completions += 1
            if state.playing:
                _close(video, state, who, position, when)
            state.playing = False
            if position is not None:
                state.position = position
        elif kind == "seek":
            video.seeks += 1
            old, new = number(old_time), number(new_time)
            if state.playing:
                _close(video, state, who, old, when)
                state.started = when
            if new is not None:
                state.position = new
        elif kind == "speed":
            video.speed_changes += 1
            if state.playing:
                _close(video, state, who, position, when)
                state.started = when
            if position is not None:
                state.position = position
    return videos


def _close(video: _Video, state: _Viewing, who: str, end: float | None, when: datetime) -> None:
    """End the current run of ``state`` at ``end`` (or where the wall clock got to)."""
    start = state.position
    wall = (when - state.started).total_seconds() if state.started else 0.0
    if end is None:  # the end is unknown (a play after a play): no run
        return
    end = min(end, start + MAX_SPEED * wall)
    if end > start >= 0:
        video.runs.append((who, start, end))
    state.position = max(end, start)


def video(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
) -> Rows:
    """One row per video: ``video_id``, ``plays``, ``viewers`` (distinct learners who
    played it), ``pauses``, ``seeks``, ``speed_changes``, ``completions`` (stop and
    complete events), ``watched_seconds`` (the runs' lengths summed, rounded to 0.1 s).
    ``tz`` is accepted for a uniform signature (no day buckets here)."""
    rows = []
    for video_id, v in _collect(bind, course_id, since, until).items():
        rows.append(
            {
                "video_id": video_id,
                "plays": v.plays,
                "viewers": len(v.viewers),
                "pauses": v.pauses,
                "seeks": v.seeks,
                "speed_changes": v.speed_changes,
                "completions": v.completions,
                "watched_seconds": round(sum(end - start for _, start, end in v.runs), 1),
            }
        )
    return sorted(rows, key=lambda row: (-row["plays"], row["video_id"]))


def video_curve(
    bind: Engine | Connection,
    course_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: str = "UTC",
    bin_seconds: int = 10,
) -> Rows:
    """The view curve: one row per video and bin of ``bin_seconds`` that a run touched:
    ``video_id``, ``start`` and ``end`` (seconds into the video), ``views`` (runs
    overlapping the bin) and ``viewers`` (their distinct learners)."""
    rows = []
    for video_id, v in _collect(bind, course_id, since, until).items():
        views: Counter[int] = Counter()
        viewers: defaultdict[int, set[str]] = defaultdict(set)
        for who, start, end in v.runs:
            first, last = int(start // bin_seconds), _last_bin(end, bin_seconds)
            for b in range(first, last + 1):
                views[b] += 1
                viewers[b].add(who)
        for b in sorted(views):
            rows.append(
                {
                    "video_id": video_id,
                    "start": b * bin_seconds,
                    "end": (b + 1) * bin_seconds,
                    "views": views[b],
                    "viewers": len(viewers[b]),
                }
            )
    return sorted(rows, key=lambda row: (row["video_id"], row["start"]))


def _last_bin(end: float, size: int) -> int:
    """The last bin a run ending at ``end`` overlaps (a run ending at 20.0 ends in bin 1
    of 10 s: the bins are ``[start, end)``)."""
    whole = int(end // size)
    return whole - 1 if whole * size == end else whole


__all__: Any = ["KINDS", "video", "video_curve"]
