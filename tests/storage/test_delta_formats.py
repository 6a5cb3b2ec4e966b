"""Issue 23, 3: the files of a delta are valid in their formats, with python-threatexchange as
the oracle: its local-file exchange reads our pytx files (the added and the retracted one), its
signal types accept every hash, its dataset CSV header and opinion names are those of our pytx
CSV (a retraction as NEGATIVE_CLASS), and its Tech Against Terrorism client takes every TAT
record, reading a retraction as a deletion. VICS has no reader in python-threatexchange: it is
checked as JSON against the VICS 2.0 media-record shape and by our own reader."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select
from threatexchange.exchanges.clients.techagainstterrorism.api import TATHashListEntry
from threatexchange.exchanges.fetch_state import SignalOpinionCategory
from threatexchange.exchanges.impl.file_api import (
    FileCollaborationConfig,
    LocalFileSignalExchangeAPI,
)
from threatexchange.exchanges.impl.techagainstterrorism_api import _get_delta_mapping
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from app.core.exchange import read_file
from app.core.exchange.deltas import manifest_name, read_manifest
from app.storage.hash_lists import HashListService
from app.storage.models import DeltaEntry, HashListEntry
from tests.storage.test_deltas import Team

PYTX_TYPES = {t.get_name(): t for t in (PdqSignal, VideoMD5Signal, VideoSHA256Signal)}
ALL = ("pytx", "pytx-csv", "tat", "tat-csv", "vics")


def _delta_entries(db, seq: int, op: str) -> set[tuple[str, str]]:
    with db.session() as s:
        return {
            (a, v)
            for a, v in s.execute(
                select(HashListEntry.algorithm, HashListEntry.value)
                .join(DeltaEntry, DeltaEntry.entry_id == HashListEntry.id)
                .where(DeltaEntry.delta_seq == seq, DeltaEntry.op == op)
            )
        }


def _pytx_name(algorithm: str) -> str:
    return {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256"}.get(algorithm, algorithm)


def test_python_threatexchange_reads_every_file_of_a_delta(db, store, tmp_path):
    team = Team(db, store, tmp_path / "flagged", range(1, 4))
    out = tmp_path / "out"
    out.mkdir()
    team.confirm(0)
    team.confirm(1)
    assert team.out(out, formats=ALL) == 1
    with db.session() as s:
        first = s.scalars(
            select(HashListEntry.id).where(
                HashListEntry.item_id == team.items[0], HashListEntry.variant == ""
            )
        ).all()
    HashListService(db).retract(first, "not the attack", actor=team.lead)
    team.confirm(2)
    assert team.out(out, formats=ALL) == 2
    added, gone = _delta_entries(db, 2, "add"), _delta_entries(db, 2, "retract")
    assert added and gone
    m = read_manifest(out / manifest_name(2))
    files = {(f["format"], f["holds"]): out / f["name"] for f in m.files}

    # pytx's local file, added and retracted: its own exchange reads both, its signal types
    # accept every hash, and they are exactly the delta's (the types pytx knows).
    for holds, expected in (("added", added), ("retracted", gone)):
        api = LocalFileSignalExchangeAPI(
            FileCollaborationConfig(
                name="d", api="local_file", enabled=True, filename=str(files["pytx", holds])
            )
        )
        (fetched,) = list(api.fetch_iter(list(PYTX_TYPES.values()), None))
        known = {(t, sig) for t, sig in fetched.updates if t in PYTX_TYPES}
        for t, sig in known:
            assert PYTX_TYPES[t].validate_signal_str(sig) == sig
        assert known == {(_pytx_name(a), v) for a, v in expected if _pytx_name(a) in PYTX_TYPES}
        assert known

    # pytx CSV: threatexchange's own `dataset --csv` header, its opinion names, a retraction
    # as NEGATIVE_CLASS.
    text = files["pytx-csv", "added+retracted"].read_text()
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == ["signal_type", "signal_str", "collab", "category", "tags"]
    rows = list(reader)
    seen = {"POSITIVE_CLASS": set(), "NEGATIVE_CLASS": set()}
    for r in rows:
        assert r["category"] in SignalOpinionCategory.__members__
        if r["signal_type"] in PYTX_TYPES:
            PYTX_TYPES[r["signal_type"]].validate_signal_str(r["signal_str"])
            seen[r["category"]].add((r["signal_type"], r["signal_str"]))
    assert seen["NEGATIVE_CLASS"] == {
        (_pytx_name(a), v) for a, v in gone if _pytx_name(a) in PYTX_TYPES
    }
    assert seen["POSITIVE_CLASS"] == {
        (_pytx_name(a), v) for a, v in added if _pytx_name(a) in PYTX_TYPES
    }

    # TAT: every record is one python-threatexchange's TAT client takes; its own mapping reads
    # the PDQ hashes, a retraction as a deletion (MD5 is for videos only in its rules).
    records = json.loads(files["tat", "added+retracted"].read_text())["results"]
    pdq_seen = {}
    for rec in records:
        entry = TATHashListEntry(**rec)
        (stype, digest), meta = _get_delta_mapping(entry)
        if rec["algorithm"] == "PDQ":
            assert stype == "pdq"
            pdq_seen[digest] = meta is not None
    assert pdq_seen == {v: True for a, v in added if a == "pdq"} | {
        v: False for a, v in gone if a == "pdq"
    }
    assert read_file(files["tat-csv", "added+retracted"]).problems == []

    # VICS: media records of the 2.0 data model; our reader finds the delta's hashes in them.
    for holds, expected in (("added", added), ("retracted", gone)):
        doc = json.loads(files["vics", holds].read_text())
        assert doc["@odata.context"].endswith("$metadata#Media")
        assert all("MediaID" in rec for rec in doc["value"])
        parsed = read_file(files["vics", holds])
        assert parsed.problems == []
        vics_types = {"pdq", "md5", "sha256"}
        assert {(e.algorithm.value, e.value) for e in parsed.entries} == {
            (a, v) for a, v in expected if a in vics_types
        }
