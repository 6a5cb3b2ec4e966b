"""The sidecar's metadata (app.core.ingest.sidecar): each field parsed as a manifest row's, the
deadline counted from when the item was received, and every bad sidecar refused with a message
naming the field and the value."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.core.ingest.sidecar import (
    SidecarError,
    meta_from_fields,
    meta_to_json,
    parse_sidecar,
    sighting_of,
)

T0 = datetime(2026, 12, 6, 10, 0, 0)


def test_every_field_read_and_the_deadline_runs_from_receipt():
    meta = parse_sidecar(
        b'{"source": "removal_order", "external_id": "TCO-77", "url": "https://x.example/v",'
        b' "reason": "order", "reporter": "europol", "score": "0.9"}',
        default_source="drop",
        received_at=T0,
    )
    assert (meta.source, meta.external_id, meta.reporter) == ("removal_order", "TCO-77", "europol")
    assert meta.source_url == "https://x.example/v" and meta.score == 0.9
    assert meta.received_at == T0
    assert meta.deadline == T0 + timedelta(hours=1)  # a removal order: one hour from receipt
    s = sighting_of(meta, original_name="v.mp4", receipt_id=5)
    assert (s.flagged_at, s.deadline, s.original_name, s.receipt_id) == (
        T0,
        T0 + timedelta(hours=1),
        "v.mp4",
        5,
    )
    assert parse_sidecar(meta_to_json(meta), default_source="x", received_at=T0) == meta


def test_own_received_time_and_explicit_deadline_win_offsets_become_utc():
    meta = parse_sidecar(
        {"received_at": "2026-12-06T11:00:00+01:00", "deadline": "2026-12-06T12:00:00Z"},
        default_source="partner",
        received_at=T0 + timedelta(minutes=30),
        source_deadlines={"partner": timedelta(hours=24)},
    )
    assert meta.source == "partner"
    assert meta.received_at == T0
    assert meta.deadline == datetime(2026, 12, 6, 12, 0)
    plain = meta_from_fields(
        source="partner", received_at=T0, source_deadlines={"partner": timedelta(hours=24)}
    )
    assert plain.deadline == T0 + timedelta(hours=24) and plain.reason is None


@pytest.mark.parametrize(
    ("sidecar", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'{"source": "x", "colour": "red"}', "unknown field colour"),
        (b'{"score": "high"}', "score 'high' is not a number"),
        (b'{"score": true}', "score True is not a number"),
        (b'{"reason": 42}', "reason 42 is not text"),
        (b'{"received_at": "yesterday"}', "received_at 'yesterday' is not an ISO 8601 time"),
        (b'{"deadline": "2026-12-06T09:00:00"}', "deadline 2026-12-06T09:00:00 is before"),
        (b'{"url": "a", "source_url": "b"}', "url and source_url differ"),
        (b'{"source": "' + b"s" * 200 + b'"}', "source is longer than 128"),
    ],
)
def test_a_bad_sidecar_is_refused_naming_the_field(sidecar, words):
    with pytest.raises(SidecarError) as err:
        parse_sidecar(sidecar, default_source="drop", received_at=T0)
    assert words in str(err.value)
