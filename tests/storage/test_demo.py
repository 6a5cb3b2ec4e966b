"""`hashdesk demo`: the README's first command, without the window."""

from __future__ import annotations

from sqlalchemy import func, select

from app.cli import main
from app.storage.db import open_database
from app.storage.models import Decision, Item


def test_demo_data_has_copies_clusters_video_and_a_corrupt_file(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path), "--no-gui"]) == 0
    out = capsys.readouterr().out
    assert "3 exact copies" in out and "unreadable: " in out and "corrupt-upload.jpg" in out
    db = open_database(f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    with db.session() as s:
        kinds = dict(s.execute(select(Item.kind, func.count()).group_by(Item.kind)).all())
        clusters = s.execute(
            select(Item.cluster_id, func.count())
            .where(Item.cluster_id.is_not(None))
            .group_by(Item.cluster_id)
        ).all()
    db.dispose()
    assert kinds["video"] == 1 and kinds["unreadable"] == 1 and kinds["image"] >= 30
    # The first sample and its four near-duplicates; a sample and its rotated copy.
    assert sorted(n for _, n in clusters) == [2, 5]


def test_demo_for_leads_has_history_with_an_overturn(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path), "--no-gui", "--lead"]) == 0
    assert "simulated a few hours of team work" in capsys.readouterr().out
    db = open_database(f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    with db.session() as s:
        verdicts = dict(
            s.execute(select(Decision.verdict, func.count()).group_by(Decision.verdict)).all()
        )
    db.dispose()
    assert verdicts.get("overturn") == 1
    assert verdicts.get("confirm", 0) > 3 and verdicts.get("reject", 0) > 3


def test_demo_reasons_match_their_sources(tmp_path):
    import json

    from app.tools.demo import REASONS, write_demo_media

    rows = [
        json.loads(line)
        for line in write_demo_media(tmp_path, count=40).read_text(encoding="utf-8").splitlines()
    ]
    assert {r["source"] for r in rows} == set(REASONS)
    for r in rows:
        assert r["reason"] in REASONS[r["source"]], r
    assert not any(
        r["source"] == "removal_order" and "partner" in r["reason"] for r in rows
    )  # the contradiction a new user saw
