"""Plain data of the exchange formats: one entry of a list, a parsed file with its problems,
and the small readers every format shares (hex, times, JSON records with their line numbers)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from app.core.errors import Refusal
from app.core.matching.signal_types import SIGNAL_TYPES
from app.core.model.domain import Algorithm

FORMATS = ("pytx", "pytx-csv", "tat", "tat-csv", "vics", "vpdq")


class ExchangeError(Refusal, ValueError):
    """A file that is not in the format asked for at all (one line: what and where)."""


@dataclass(slots=True)
class ExchangeEntry:
    """One hash of a list, as the formats carry it. ``value`` is lowercase hex.

    ``video``: for vPDQ frames, which video they belong to (frames of one video match
    together). ``meta``: fields of the source format kept so that an export writes them back
    (TAT's ``file_type``, VICS's ``MediaID`` ...). ``line``: where it was read (0: not read)."""

    algorithm: Algorithm
    value: str
    labels: tuple[str, ...] = ()
    external_id: str | None = None
    deleted: bool = False
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    quality: int | None = None
    frame_ts: float | None = None
    video: str | None = None
    category: str | None = None
    meta: tuple[tuple[str, str], ...] = ()
    variant: str = ""
    line: int = 0
    entry_id: int | None = None  # on export: our row id (a stable id where a format wants one)

    def key(self) -> tuple[str, str, str]:
        """What makes two entries of one list the same entry (frames: within their video)."""
        return (self.algorithm.value, self.value, self.video or "")


@dataclass
class ParsedList:
    fmt: str
    entries: list[ExchangeEntry] = field(default_factory=list)
    lines: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    unsupported: Counter[str] = field(default_factory=Counter)
    #: Whether the file is a whole list (entries missing from it are gone) or a delta.
    complete: bool = True


def check_hex(algorithm: Algorithm, raw: str) -> str:
    """``raw`` as a lowercase hex hash of ``algorithm``; ValueError saying why not."""
    value = raw.strip().lower()
    t = SIGNAL_TYPES[algorithm]
    shown = raw.strip()[:80]
    if not value or not all(c in "0123456789abcdef" for c in value):
        raise ValueError(f"{t.label} hash {shown!r} is not hexadecimal")
    if len(value) != t.hex_len:
        raise ValueError(f"{t.label} hash {shown!r} has {len(value)} hex digits, not {t.hex_len}")
    return value


def line_of(text: str, pos: int) -> int:
    """1-based line number of character ``pos`` of ``text``."""
    return text.count("\n", 0, pos) + 1


def json_records(
    text: str, keys: tuple[str, ...]
) -> tuple[list[tuple[int, object]], tuple[int, str] | None]:
    """The records of a JSON array, each with the line it starts on: the top-level array, or
    the array under the first of ``keys`` in a top-level object. Returns (records, the line
    and what is wrong with the document, or None). A record that does not parse ends the
    array: JSON cannot be read past a syntax error."""
    import json

    dec = json.JSONDecoder()
    s = text.lstrip("\ufeff")
    i = _skip_ws(s, 0)
    if i < len(s) and s[i] == "{":
        # Find the array under one of ``keys`` by decoding the object's members one by one.
        i = _skip_ws(s, i + 1)
        while i < len(s) and s[i] != "}":
            try:
                key, i = dec.raw_decode(s, i)
            except json.JSONDecodeError as exc:
                return [], (line_of(s, exc.pos), f"{exc.msg}")
            i = _skip_ws(s, i)
            if i >= len(s) or s[i] != ":":
                return [], (line_of(s, i), "expected ':'")
            i = _skip_ws(s, i + 1)
            if key in keys and i < len(s) and s[i] == "[":
                break
            try:
                _value, i = dec.raw_decode(s, i)
            except json.JSONDecodeError as exc:
                return [], (line_of(s, exc.pos), f"{exc.msg}")
            i = _skip_ws(s, i)
            if i < len(s) and s[i] == ",":
                i = _skip_ws(s, i + 1)
        else:
            return [], (1, f"no {' or '.join(repr(k) for k in keys)} array in the document")
    if i >= len(s) or s[i] != "[":
        return [], (line_of(s, i), "not a JSON array of records")
    out: list[tuple[int, object]] = []
    i = _skip_ws(s, i + 1)
    line = 1
    last = 0
    while i < len(s) and s[i] != "]":
        line += s.count("\n", last, i)
        last = i
        try:
            rec, j = dec.raw_decode(s, i)
        except json.JSONDecodeError as exc:
            return out, (line_of(s, exc.pos), f"{exc.msg} (records after it not read)")
        out.append((line, rec))
        i = _skip_ws(s, j)
        if i < len(s) and s[i] == ",":
            i = _skip_ws(s, i + 1)
        elif i < len(s) and s[i] != "]":
            return out, (line_of(s, i), "expected ',' or ']' (records after it not read)")
    return out, None


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in " \t\r\n":
        i += 1
    return i


def parse_time(raw: object) -> datetime | None:
    """A time as the formats write it (ISO 8601, or seconds since 1970) as naive UTC."""
    from datetime import UTC

    if raw is None or raw == "":
        return None
    if isinstance(raw, int | float) or (isinstance(raw, str) and _is_number(raw)):
        return datetime.fromtimestamp(float(raw), UTC).replace(tzinfo=None)
    text = str(raw).strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def iso(dt: datetime | None) -> str:
    return dt.isoformat(timespec="seconds") + "Z" if dt is not None else ""
