"""An arrival's metadata: the sidecar JSON beside a file in the drop folder (``NAME.json`` beside
``NAME``) and the metadata of an HTTP intake's POST, parsed by one function into
:class:`IntakeMeta`. The fields are the manifest's (app.core.ingest.jobs.sighting_from_row
parses both), plus ``reporter`` and ``received_at``.

Strict where the manifest is lenient: a sidecar that does not parse, has a field of the wrong
kind or a field Hashdesk does not know is a :class:`SidecarError` naming the field and the value
(the drop folder keeps such a file aside with the reason: it is never ingested without the
metadata it came with). ``source_url`` is text only: never fetched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.core.errors import Refusal
from app.core.ingest.jobs import sighting_from_row
from app.core.model.deadlines import DEFAULT_SOURCE_DEADLINES
from app.core.model.domain import SightingInfo

#: The fields a sidecar may have (``url`` is ``source_url``'s short name, as in a manifest).
FIELDS = frozenset(
    {
        "source",
        "external_id",
        "source_url",
        "url",
        "reason",
        "reporter",
        "score",
        "received_at",
        "deadline",
    }
)
_TEXT_LIMITS = {
    "source": 128,
    "external_id": 256,
    "source_url": 8192,
    "url": 8192,
    "reason": 4096,
    "reporter": 256,
}


class SidecarError(Refusal, ValueError):
    """An arrival's metadata Hashdesk does not take; the message names the field and value."""


@dataclass(frozen=True)
class IntakeMeta:
    source: str
    external_id: str | None
    source_url: str | None  # text only: NEVER fetched
    reason: str | None
    reporter: str | None
    score: float | None
    received_at: datetime  # naive UTC: when the intake got it
    deadline: datetime | None  # explicit, or received_at + the source's deadline


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_sidecar(
    obj: Mapping | str | bytes,
    *,
    default_source: str,
    received_at: datetime,
    source_deadlines: Mapping[str, timedelta] | None = None,
) -> IntakeMeta:
    """The metadata in ``obj`` (a JSON object, as text, bytes or already parsed).

    ``received_at``: when the intake got the item (drop folder: when the file was first seen;
    HTTP: when the POST arrived); a ``received_at`` field of the sidecar (the reporter's own
    time, earlier) takes its place. The deadline: an explicit ``deadline``, or the source's
    (``source_deadlines``, by default the built-in ones) counted from the time received.
    """
    if isinstance(obj, bytes):
        try:
            obj = obj.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SidecarError("the sidecar is not UTF-8 text") from None
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as exc:
            raise SidecarError(
                f"the sidecar is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
    if not isinstance(obj, Mapping):
        raise SidecarError(f"the sidecar must be a JSON object, not {type(obj).__name__}")
    unknown = sorted(str(k) for k in obj if k not in FIELDS)
    if unknown:
        raise SidecarError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(known: {', '.join(sorted(FIELDS))})"
        )
    for key, value in obj.items():
        if value is None:
            continue
        if key == "score":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise SidecarError(f"score {_short(value)} is not a number")
        elif not isinstance(value, str):
            raise SidecarError(f"{key} {_short(value)} is not text")
        elif key in _TEXT_LIMITS and len(value) > _TEXT_LIMITS[key]:
            raise SidecarError(f"{key} is longer than {_TEXT_LIMITS[key]} characters")
    if "url" in obj and "source_url" in obj and obj["url"] != obj["source_url"]:
        raise SidecarError("url and source_url differ: give one")
    sighting, problems = sighting_from_row(
        obj, default_source, None, received_at, time_field="received_at"
    )
    if problems:
        raise SidecarError("; ".join(problems))
    if not sighting.source:
        raise SidecarError("source '' is empty")
    score = sighting.score
    if score is not None and score != score:
        raise SidecarError(f"score {_short(obj.get('score'))} is not a number")
    deadline = sighting.deadline
    defaults = DEFAULT_SOURCE_DEADLINES if source_deadlines is None else source_deadlines
    if deadline is None and sighting.source in defaults:
        deadline = sighting.flagged_at + defaults[sighting.source]
    if deadline is not None and deadline < sighting.flagged_at:
        raise SidecarError(
            f"deadline {deadline.isoformat()} is before the time received "
            f"{sighting.flagged_at.isoformat()}"
        )
    reporter = obj.get("reporter")
    return IntakeMeta(
        source=sighting.source,
        external_id=sighting.external_id,
        source_url=sighting.source_url,
        reason=sighting.reason,
        reporter=str(reporter).strip() or None if reporter is not None else None,
        score=score,
        received_at=sighting.flagged_at,
        deadline=deadline,
    )


def meta_from_fields(
    *,
    source: str,
    received_at: datetime,
    reason: str | None = None,
    source_deadlines: Mapping[str, timedelta] | None = None,
) -> IntakeMeta:
    """The metadata of an arrival that came with none of its own (``hashdesk ingest``, a drop
    folder file without a sidecar): its source and reason, the time received."""
    fields: dict[str, str] = {"source": source}
    if reason:
        fields["reason"] = reason
    return parse_sidecar(
        fields,
        default_source=source,
        received_at=received_at,
        source_deadlines=source_deadlines,
    )


def sighting_of(
    meta: IntakeMeta, *, original_name: str | None = None, receipt_id: int | None = None
) -> SightingInfo:
    """The sighting an arrival records: flagged when it was received (so its deadline runs
    from then, not from when a worker hashed it)."""
    return SightingInfo(
        source=meta.source,
        external_id=meta.external_id,
        source_url=meta.source_url,
        reason=meta.reason,
        score=meta.score,
        flagged_at=meta.received_at,
        deadline=meta.deadline,
        original_name=original_name,
        receipt_id=receipt_id,
    )


def meta_to_json(meta: IntakeMeta) -> dict:
    """``meta`` as a sidecar says it (parse_sidecar reads it back unchanged)."""
    out: dict[str, object] = {
        "source": meta.source,
        "received_at": meta.received_at.isoformat(),
    }
    for key in ("external_id", "source_url", "reason", "reporter", "score"):
        value = getattr(meta, key)
        if value is not None:
            out[key] = value
    if meta.deadline is not None:
        out["deadline"] = meta.deadline.isoformat()
    return out
