"""Deadlines: a source's default (a removal order must be acted on within one hour under the
EU terrorist-content regulation), and whether a decision met the item's deadline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from app.core.errors import Refusal
from app.core.model.domain import SightingInfo

DEFAULT_SOURCE_DEADLINES: dict[str, timedelta] = {"removal_order": timedelta(hours=1)}
ENV_NAME = "HASHDESK_SOURCE_DEADLINES"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class DeadlineConfigError(Refusal, ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text)
    if not m:
        raise DeadlineConfigError(f"{text!r} is not a duration like 30m, 1h or 2d")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_source_deadlines(text: str) -> dict[str, timedelta]:
    """``"removal_order=1h, partner_feed=24h"`` -> {source: duration}."""
    out: dict[str, timedelta] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        source, sep, duration = part.partition("=")
        if not sep or not source.strip():
            raise DeadlineConfigError(f"{part.strip()!r} is not SOURCE=DURATION")
        out[source.strip()] = parse_duration(duration)
    return out


def source_deadlines(env: Mapping[str, str]) -> dict[str, timedelta]:
    """The built-in defaults, overridden and extended by HASHDESK_SOURCE_DEADLINES in ``env``
    (read by app.core.settings.config.load_settings, which turns a bad value into a ConfigError)."""
    merged = dict(DEFAULT_SOURCE_DEADLINES)
    merged.update(parse_source_deadlines(env.get(ENV_NAME, "")))
    return merged


def with_source_deadline(sighting: SightingInfo, defaults: Mapping[str, timedelta]) -> SightingInfo:
    """A sighting without its own deadline gets its source's default, counted from when it was
    flagged. An explicit deadline (from the manifest) always wins."""
    if sighting.deadline is not None or sighting.source not in defaults:
        return sighting
    return replace(sighting, deadline=sighting.flagged_at + defaults[sighting.source])


def deadline_state(decided_at: datetime, deadline: datetime | None) -> str:
    """ "met", "missed", or "" when the item had no deadline."""
    if deadline is None:
        return ""
    return "met" if decided_at <= deadline else "missed"
