"""Known content never reaches a human twice: auto-match against the hash list at ingest, and
near-duplicate clusters in the open queue. Real corpus media, on SQLite and PostgreSQL.

Each corpus file is analysed once per test session and recorded into each test's database.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.ingest.media import analyze_file
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, ItemStatus, SightingInfo, Verdict, utcnow
from app.storage.models import Decision, Item
from app.storage.review import ReviewService
from tests.helpers import make_user
from tests.helpers import recorder as make_recorder

_cache: dict[str, object] = {}


def analysed(path):
    key = str(path)
    if key not in _cache:
        _cache[key] = analyze_file(path)
    return _cache[key]


def record(db, store, paths, policy=None):
    rec = make_recorder(db, store, policy=policy)
    sighting = SightingInfo("test", None, None, "test", None, utcnow())
    out = {}
    for p in paths:
        out[p.name] = rec.record(p, analysed(p), sighting)
    return out


def item_by_name(db, name):
    with db.session() as s:
        from app.storage.models import Sighting

        return s.scalar(
            select(Item)
            .join(Sighting, Sighting.item_id == Item.id)
            .where(Sighting.original_name == name)
        )


def confirm(db, name, category="attack_recording"):
    review = ReviewService(db)
    user = make_user(db, "confirmer")
    item = item_by_name(db, name)
    review.decide(DecisionRequest(item.id, user.id, Verdict.CONFIRM, category, "label"))
    return user


@pytest.mark.corpus
def test_bridge_edits_and_rotations_auto_match_labelme_does_not(db, store, corpus):
    imgs = corpus / "pdq-images"
    record(db, store, [imgs / "bridge-mods__aaa-orig.jpg"])
    confirm(db, "bridge-mods__aaa-orig.jpg")
    edits = sorted(imgs.glob("bridge-mods__*"))[1:]
    rotations = sorted(p for p in imgs.glob("dih__*") if "original" not in p.name)
    others = sorted(imgs.glob("labelme-subset__*"))
    outcome = record(db, store, edits + rotations + others)
    missed = [p.name for p in edits + rotations if outcome[p.name] != "auto_matched"]
    assert missed == []
    assert all(outcome[p.name] == "new" for p in others)
    item = item_by_name(db, "bridge-mods__blur-a-lot.jpg")
    assert item.status == ItemStatus.AUTO_MATCHED.value
    with db.session() as s:
        d = s.scalar(select(Decision).where(Decision.item_id == item.id))
    assert d.method == DecisionMethod.AUTO_MATCH.value and d.verdict == "confirm"
    assert d.user_id is None and d.matched_entry_id is not None
    assert d.match_distance is not None and d.match_distance <= 31
    assert "confirmed by confirmer" in d.note and d.category == "attack_recording"


@pytest.mark.corpus
def test_badge_policy_queues_known_match(db, store, corpus):
    imgs = corpus / "pdq-images"
    record(db, store, [imgs / "bridge-mods__aaa-orig.jpg"])
    confirm(db, "bridge-mods__aaa-orig.jpg")
    policy = MatchPolicy(auto_resolve=False)
    out = record(db, store, [imgs / "bridge-mods__blur-a-little.jpg"], policy)
    assert out == {"bridge-mods__blur-a-little.jpg": "new"}
    item = item_by_name(db, "bridge-mods__blur-a-little.jpg")
    assert item.status == ItemStatus.QUEUED.value
    assert item.match_note.startswith("known match: matches hash-list entry #")


@pytest.mark.corpus
def test_retracted_hashes_do_not_match(db, store, corpus):
    imgs = corpus / "pdq-images"
    record(db, store, [imgs / "bridge-mods__aaa-orig.jpg"])
    user = confirm(db, "bridge-mods__aaa-orig.jpg")
    ReviewService(db).undo_last(user.id)
    out = record(db, store, [imgs / "bridge-mods__blur-a-little.jpg"])
    assert out["bridge-mods__blur-a-little.jpg"] == "new"
    assert item_by_name(db, "bridge-mods__blur-a-little.jpg").status == "queued"


@pytest.mark.corpus
def test_bridge_mods_form_one_cluster_decided_once(db, store, corpus):
    imgs = corpus / "pdq-images"
    paths = [*sorted(imgs.glob("bridge-mods__*")), imgs / "labelme-subset__q0003.jpg"]
    record(db, store, paths)
    review = ReviewService(db)
    user = make_user(db)
    first = review.claim_next(user.id)
    assert first.cluster_size == len(paths) - 1
    out = review.decide(DecisionRequest(first.id, user.id, Verdict.CONFIRM, "manifesto", "M"))
    assert out.cluster_members == len(paths) - 2
    with db.session() as s:
        rows = s.scalars(select(Decision).order_by(Decision.id)).all()
    assert [r.method for r in rows].count("cluster") == len(paths) - 2
    assert all(r.parent_uuid == out.uuid for r in rows if r.method == "cluster")
    nxt = review.claim_next(user.id)
    assert nxt is not None and nxt.cluster_size == 1  # only the unrelated photo is left
    assert review.claim_next(user.id) is None
    # Undo takes the whole cluster back.
    undo = review.undo_last(user.id)
    assert undo.cluster_members == len(paths) - 2
    assert undo.hashes_retracted == out.hashes_added
    with db.session() as s:
        statuses = {i.status for i in s.scalars(select(Item).where(Item.cluster_id == first.id))}
    assert statuses == {"claimed", "queued"}


VIDEO_MATCHES = [
    "chair-22-sd-grey-bar.mp4",
    "chair-22-sd-sepia-bar.mp4",
    "chair-22-with-small-logo-bar.mp4",
    "chair-22-with-large-logo-bar.mp4",
    "chair-20-sd-bar.mp4",
]


@pytest.mark.corpus
def test_chair_edits_auto_match_after_confirming_original(db, store, corpus):
    vids = corpus / "videos"
    record(db, store, [vids / "chair-orig-22-sd-bar.mp4"])
    confirm(db, "chair-orig-22-sd-bar.mp4")
    out = record(db, store, [vids / n for n in VIDEO_MATCHES] + [vids / "doorknob-hd-no-bar.mp4"])
    report = {n: out[n] for n in VIDEO_MATCHES}
    assert report == dict.fromkeys(VIDEO_MATCHES, "auto_matched"), report
    assert out["doorknob-hd-no-bar.mp4"] == "new"
    # The large logo hides the top right: only the bottom half of each frame still matches.
    note = item_by_name(db, "chair-22-with-large-logo-bar.mp4").match_note
    assert "region:" in note, note
    assert "region:" not in item_by_name(db, "chair-20-sd-bar.mp4").match_note


@pytest.mark.corpus
def test_letterboxed_pattern_edits_auto_match_after_confirming_hd(db, store, corpus):
    vids = corpus / "videos"
    record(db, store, [vids / "pattern-hd-no-bar.mp4"])
    confirm(db, "pattern-hd-no-bar.mp4")
    names = [
        "pattern-sd-grey-bar.mp4",
        "pattern-sd-with-small-logo-bar.mp4",
        "pattern-sd-with-large-logo-bar.mp4",
    ]
    out = record(db, store, [vids / n for n in [*names, "doorknob-hd-no-bar.mp4"]])
    assert out == {**dict.fromkeys(names, "auto_matched"), "doorknob-hd-no-bar.mp4": "new"}
    note = item_by_name(db, names[0]).match_note
    assert "pdq_frame (trimmed)" in note  # the bars had to be trimmed for it to match
    note = item_by_name(db, names[2]).match_note
    assert "region:" in note, note  # bars trimmed, then half of each frame


def _without_sound(src, dst):
    """A copy of the video ``src`` with its pictures only (the packets copied, not re-encoded)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for pkt in inp.demux(vin):
            if pkt.dts is not None:
                pkt.stream = vout
                out.mux(pkt)
    return dst


@pytest.mark.corpus
def test_ingest_command_follows_the_configured_policy(
    db, store, corpus, monkeypatch, capsys, tmp_path
):
    """`hashdesk ingest` takes the match policy from the settings: with the halves off the
    logo-stamped copy is new content; with known content set to "queue" a known copy waits in
    the queue with its badge instead of being resolved.

    The logo-stamped copy keeps the original's soundtrack (the same recording, 21 ms later), so
    its sound alone rightly matches the confirmed original: the halves are shown on a copy of it
    without sound, where they are the only link."""
    from app.cli import main

    vids = corpus / "videos"
    monkeypatch.setenv("HASHDESK_DATABASE_URL", db.engine.url.render_as_string(False))
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    assert main(["ingest", str(vids / "chair-orig-22-sd-bar.mp4")]) == 0
    user = confirm(db, "chair-orig-22-sd-bar.mp4")

    muted = _without_sound(
        vids / "chair-22-with-large-logo-bar.mp4", tmp_path / "chair-22-large-logo-muted.mp4"
    )
    assert main(["ingest", str(muted)]) == 0  # the halves on (the default): a known copy
    item = item_by_name(db, muted.name)
    assert item.status == ItemStatus.AUTO_MATCHED.value and "region:" in item.match_note
    assert "1 new item(s) matched" in capsys.readouterr().out

    monkeypatch.setenv("HASHDESK_MATCH_HALVES", "off")
    again = muted.with_name("chair-22-large-logo-muted-again.mp4")
    again.write_bytes(muted.read_bytes() + b"\0")  # other bytes, the same pictures
    assert main(["ingest", str(again)]) == 0
    item = item_by_name(db, again.name)
    assert (item.status, item.match_note) == (ItemStatus.QUEUED.value, None)

    monkeypatch.setenv("HASHDESK_KNOWN_CONTENT", "queue")
    assert main(["ingest", str(vids / "chair-22-sd-grey-bar.mp4")]) == 0
    item = item_by_name(db, "chair-22-sd-grey-bar.mp4")
    assert item.status == ItemStatus.QUEUED.value
    assert item.match_note.startswith("known match:") and user.username in item.match_note
    assert "1 new item(s) matched" not in capsys.readouterr().out
