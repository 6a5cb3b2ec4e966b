"""The exchange formats on their own (no database): sample files written here from the published
field layouts read without loss, written back and read again the same; bad lines reported by
number while the good ones come through; python-threatexchange's own readers accept what we
write. The corpus's vPDQ reference frame lists read as frames."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from threatexchange.exchanges.clients.techagainstterrorism.api import TATHashListEntry
from threatexchange.exchanges.impl.file_api import (
    FileCollaborationConfig,
    LocalFileSignalExchangeAPI,
)
from threatexchange.exchanges.impl.techagainstterrorism_api import _get_delta_mapping
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from app.core.exchange import detect_format, read_file, vpdq, write_file
from app.core.model.domain import Algorithm

PDQ = [
    "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
    "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064",
    "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
]
MD5 = ["0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"]
SHA1 = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"

# Tech Against Terrorism's hash-list record, field for field as the API returns it
# (python-threatexchange's TATHashListEntry: hash_digest, algorithm, ideology, file_type,
# deleted, updated_on, created_on, id).
TAT_RECORDS = [
    {
        "hash_digest": PDQ[0],
        "algorithm": "PDQ",
        "ideology": "islamist",
        "file_type": "jpg",
        "deleted": False,
        "updated_on": 1704085200.0,
        "created_on": "2023-12-30T10:00:00Z",
        "id": 101,
    },
    {
        "hash_digest": MD5[0],
        "algorithm": "MD5",
        "ideology": "far-right",
        "file_type": "mp4",
        "deleted": False,
        "updated_on": 1704171600.0,
        "created_on": "2023-12-31T11:30:00Z",
        "id": 102,
    },
    {
        "hash_digest": PDQ[1],
        "algorithm": "PDQ",
        "ideology": "far-right",
        "file_type": "png",
        "deleted": True,
        "updated_on": 1704258000.0,
        "created_on": "2024-01-01T09:15:00Z",
        "id": 103,
    },
]

# Project VIC VICS 2.0 media records (the OData JSON of a VICS export).
VICS_DOC = {
    "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/"
    "$metadata#Media",
    "value": [
        {
            "MediaID": 1,
            "Category": 2,
            "MD5": MD5[0].upper(),
            "SHA1": SHA1.upper(),
            "MediaSize": 2835,
            "AlternativeHashes": [{"HashName": "PDQ", "HashValue": PDQ[0]}],
        },
        {"MediaID": 2, "Category": 0, "MD5": MD5[1].upper(), "MediaSize": 1200},
    ],
}


def _tat_fields(e) -> tuple:
    return (
        e.algorithm,
        e.value,
        e.labels,
        e.external_id,
        e.deleted,
        e.first_seen,
        e.last_seen,
        dict(e.meta),
    )


def test_tat_json_and_csv_read_without_loss_and_write_back_the_same(tmp_path):
    src = tmp_path / "tat.json"
    src.write_text(
        json.dumps(
            {
                "count": 3,
                "next": None,
                "previous": None,
                "checkpoint": "1704258000,103",
                "results": TAT_RECORDS,
            },
            indent=2,
        )
    )
    parsed = read_file(src)
    assert parsed.fmt == "tat" and parsed.problems == [] and len(parsed.entries) == 3
    first = parsed.entries[0]
    assert (first.algorithm, first.labels, first.external_id) == (
        Algorithm.PDQ,
        ("islamist",),
        "101",
    )
    assert first.first_seen == datetime(2023, 12, 30, 10, 0)
    assert parsed.entries[2].deleted and parsed.entries[1].algorithm is Algorithm.MD5

    for fmt in ("tat", "tat-csv"):
        out = tmp_path / f"again.{fmt}"
        n, skipped = write_file(out, fmt, parsed.entries)
        assert n == 3 and not skipped
        again = read_file(out)
        assert again.fmt == fmt and again.problems == []
        assert [_tat_fields(e) for e in again.entries] == [_tat_fields(e) for e in parsed.entries]
    # Every record we write is a record python-threatexchange's TAT client accepts, and its
    # own mapping reads the hash (and the deletion) from it.
    written = json.loads((tmp_path / "again.tat").read_text())["results"]
    for rec, original in zip(written, TAT_RECORDS, strict=True):
        (stype, digest), meta = _get_delta_mapping(TATHashListEntry(**rec))
        assert stype == {"PDQ": "pdq", "MD5": "video_md5"}[original["algorithm"]]
        assert digest == original["hash_digest"]
        assert (meta is None) == original["deleted"]
        assert rec["id"] == original["id"] and rec["ideology"] == original["ideology"]


def test_vics_reads_md5_and_pdq_counts_sha1_and_writes_back_without_loss(tmp_path):
    src = tmp_path / "vics.json"
    src.write_text(json.dumps(VICS_DOC, indent=2))
    parsed = read_file(src)
    assert parsed.fmt == "vics" and parsed.problems == []
    assert parsed.unsupported == {"SHA1": 1}  # Hashdesk cannot match SHA-1: counted, reported
    got = {(e.external_id, e.algorithm, e.value) for e in parsed.entries}
    assert got == {
        ("1", Algorithm.MD5, MD5[0]),
        ("1", Algorithm.PDQ, PDQ[0]),
        ("2", Algorithm.MD5, MD5[1]),
    }
    out = tmp_path / "out.json"
    assert write_file(out, "vics", parsed.entries)[0] == 3
    doc = json.loads(out.read_text())
    media = {m["MediaID"]: m for m in doc["value"]}
    assert set(media) == {1, 2}
    for original in VICS_DOC["value"]:
        m = media[original["MediaID"]]
        assert m["MD5"] == original["MD5"] and m["Category"] == original["Category"]
        assert m["MediaSize"] == original["MediaSize"]
        assert m.get("AlternativeHashes") == original.get("AlternativeHashes")
    again = read_file(out)
    assert sorted((e.external_id, e.value) for e in again.entries) == sorted(
        (e.external_id, e.value) for e in parsed.entries
    )


def test_bad_lines_are_reported_by_number_and_the_good_ones_come_through(tmp_path):
    local = tmp_path / "list.txt"
    local.write_text(
        f"pdq {PDQ[0]}\n"
        "pdq 1234\n"  # 2: too short
        f"video_md5 {MD5[0]}\n"
        f"pdq {PDQ[1][:-1]}x\n"  # 4: not hex
        "this is not a line\n"  # 5
        f"tmk {'0' * 40}\n"  # a type Hashdesk cannot match: counted
        f"PDQ {PDQ[2].upper()}\n"
    )
    p = read_file(local)
    assert p.fmt == "pytx"
    assert [n for n, _ in p.problems] == [2, 4, 5]
    assert [e.value for e in p.entries] == [PDQ[0], MD5[0], PDQ[2]]
    assert p.unsupported == {"tmk": 1}

    rows = [dict(r) for r in TAT_RECORDS]
    rows[1]["hash_digest"] = "nothex"
    rows[2]["deleted"] = "perhaps"
    tat_csv = tmp_path / "tat.csv"
    with tat_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, list(TAT_RECORDS[0]))
        w.writeheader()
        w.writerows(rows)
    p = read_file(tat_csv)
    assert p.fmt == "tat-csv"
    assert [n for n, _ in p.problems] == [3, 4]
    assert [e.value for e in p.entries] == [PDQ[0]]

    doc = json.dumps(VICS_DOC, indent=2).replace(MD5[1].upper(), "XYZ")
    vics = tmp_path / "vics.json"
    vics.write_text(doc)
    p = read_file(vics)
    line = doc.splitlines().index(next(x for x in doc.splitlines() if '"MediaID": 2' in x))
    assert [n for n, _ in p.problems] == [line]  # the line its record starts on
    assert {e.external_id for e in p.entries} == {"1"}


def test_python_threatexchange_reads_our_local_file_and_we_read_its(tmp_path):
    from app.core.exchange import ExchangeEntry

    ours = tmp_path / "ours.txt"
    entries = [ExchangeEntry(Algorithm.PDQ, v) for v in PDQ] + [
        ExchangeEntry(Algorithm.MD5, m) for m in MD5
    ]
    write_file(ours, "pytx", entries)
    api = LocalFileSignalExchangeAPI(
        FileCollaborationConfig(name="c", api="local_file", enabled=True, filename=str(ours))
    )
    (delta,) = list(api.fetch_iter([PdqSignal, VideoMD5Signal], None))
    assert set(delta.updates) == {("pdq", v) for v in PDQ} | {("video_md5", m) for m in MD5}

    # python-threatexchange writes the same lines with `threatexchange dataset -P`
    # (DatasetCommand._print_stdout, signals only, every signal type).
    from threatexchange.cli.dataset_cmd import DatasetCommand

    theirs = tmp_path / "theirs.txt"
    cmd = SimpleNamespace(only_signals=(), print_signals_only=True, only_collabs=set())
    buf = io.StringIO()
    with redirect_stdout(buf):
        for v in PDQ:
            DatasetCommand._print_stdout(cmd, "c", PdqSignal, v, None)
        DatasetCommand._print_stdout(cmd, "c", VideoMD5Signal, MD5[0], None)
    theirs.write_text(buf.getvalue())
    p = read_file(theirs)
    assert [e.value for e in p.entries] == [*PDQ, MD5[0]] and p.problems == []


def test_dataset_csv_as_threatexchange_prints_it(tmp_path):
    from threatexchange.cli.dataset_cmd import DatasetCommand
    from threatexchange.exchanges.fetch_state import FetchedSignalMetadata

    path = tmp_path / "dataset.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["signal_type", "signal_str", "collab", "category", "tags"])
        w.writeheader()
        for v in PDQ:
            DatasetCommand._print_csv(
                None, w, "Sample Collab", PdqSignal, v, FetchedSignalMetadata()
            )
        f.write("pdq,not-a-hash,Sample Collab,POSITIVE_CLASS,\n")
        f.write(f"pdq,{PDQ[0][:-2]}00,Sample Collab,NEGATIVE_CLASS,benign news\n")
    p = read_file(path)
    assert p.fmt == "pytx-csv"
    assert [n for n, _ in p.problems] == [5]
    assert [e.value for e in p.entries if not e.deleted] == PDQ
    negative = [e for e in p.entries if e.deleted]
    assert len(negative) == 1 and negative[0].labels == ("benign", "news")
    assert dict(p.entries[0].meta) == {"collab": "Sample Collab", "opinion": "INVESTIGATION_SEED"}


@pytest.mark.corpus
def test_vpdq_reference_frame_lists_read_as_frames_of_their_video(corpus, tmp_path):
    folder = corpus / "vpdq-hashes"
    one = folder / "chair-19-sd-bar.txt"
    p = read_file(one)
    assert p.fmt == "vpdq" and p.problems == []
    lines = [x for x in one.read_text().splitlines() if x.strip()]
    assert len(p.entries) == len(lines)
    assert {e.video for e in p.entries} == {"chair-19-sd-bar"}
    assert all(e.algorithm is Algorithm.PDQ_FRAME for e in p.entries)
    first = lines[0].split(",")
    assert (p.entries[0].quality, p.entries[0].value, p.entries[0].frame_ts) == (
        int(first[1]),
        first[2],
        float(first[3]),
    )
    whole = read_file(folder)
    assert len({e.video for e in whole.entries}) == len(list(folder.glob("*.txt")))
    out = tmp_path / "frames"
    n, _ = write_file(out, "vpdq", p.entries)
    assert n == len(lines)
    again = read_file(out / "chair-19-sd-bar.txt")
    assert [(e.value, e.quality, e.frame_ts) for e in again.entries] == [
        (e.value, e.quality, e.frame_ts) for e in p.entries
    ]


def test_a_vpdq_frame_list_read_as_rows(tmp_path):
    # The reference's frame lists as rows, for comparing with our frames frame by frame (the
    # parser the import uses: the same checks, a bad line raises).
    path = tmp_path / "x.txt"
    path.write_text("0,100,AB" + "0" * 62 + ",0.000\n\n1,37," + "f" * 64 + ",0.033\n")
    assert vpdq.read_frames(path) == [(0, 100, "ab" + "0" * 62, 0.0), (1, 37, "f" * 64, 0.033)]
    path.write_text("0,100," + "0" * 63 + ",0.000\n")
    with pytest.raises(ValueError, match="63 hex digits"):
        vpdq.read_frames(path)


def test_formats_are_detected_from_the_content(tmp_path):
    cases = {
        "pytx": f"pdq {PDQ[0]}\n",
        "pytx-csv": "signal_type,signal_str,collab,category,tags\n",
        "tat-csv": "hash_digest,algorithm,ideology\n",
        "tat": json.dumps({"results": TAT_RECORDS}),
        "vics": json.dumps(VICS_DOC),
        "vpdq": f"0,100,{PDQ[0]},0.000\n",
    }
    for fmt, text in cases.items():
        p = Path(tmp_path / f"{fmt}.x")
        p.write_text(text)
        assert detect_format(p, text) == fmt
