"""The issue's end-to-end check: `hashdesk ingest` the reference photos, confirm the bridge
original in the window, find its PDQ, pHash, MD5 and SHA-256 in the hash list."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.cli import main
from app.core.hashing.imaging import analyze_image_bytes
from app.core.model.domain import Algorithm
from app.storage.models import HashListEntry
from tests.ui.conftest import KEY, press


@pytest.mark.corpus
def test_ingest_corpus_then_confirm_bridge_original(
    qtbot, make_window, db, store, corpus, monkeypatch, capsys
):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", db.engine.url.render_as_string(False))
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(store.root))
    assert main(["ingest", str(corpus / "pdq-images"), "--source", "partner_feed"]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "exact copies" in out

    bridge = (corpus / "pdq-images" / "bridge-mods__aaa-orig.jpg").read_bytes()
    sha = hashlib.sha256(bridge).hexdigest()
    w = make_window(db, paths=[])
    qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
    # Skip forward to the bridge original (the queue serves oldest first: it is first).
    for _ in range(60):
        if w.controller.current.item.sha256 == sha:
            break
        with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
            press(qtbot, w, KEY.Key_S)
        qtbot.waitUntil(lambda: w.controller.current is not None, timeout=10000)
    item = w.controller.current.item
    assert item.sha256 == sha
    # Its exact copies in the corpus came in as sightings of the one item.
    assert len(item.sightings) >= 2
    press(qtbot, w, KEY.Key_5)
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_Y)

    expected = analyze_image_bytes(bridge, sha, hashlib.md5(bridge).hexdigest())
    want = {(s.algorithm.value, s.value) for s in expected.signals if not s.variant}
    with db.session() as s:
        rows = s.scalars(
            select(HashListEntry).where(
                HashListEntry.item_id == item.id, HashListEntry.retracted_at.is_(None)
            )
        ).all()
    got = {(r.algorithm, r.value) for r in rows if not r.variant}
    for algo in (Algorithm.PDQ, Algorithm.PHASH, Algorithm.MD5, Algorithm.SHA256):
        assert any(a == algo.value for a, _ in got), algo
    assert want <= got
    assert (Algorithm.SHA256.value, sha) in got
    assert all(r.category == "attack_recording" for r in rows)
