"""A held entry does not hide another list's resolving match: copies matching both a partner's
entry (nearer) that the flood guard holds to "queue" and our own confirmed entry resolve on
ours, and still count against the partner's entry; on SQLite, PostgreSQL and the team server
(hd_api_record_items checks the fallback as it checks the known match). Without a resolving
match of another list a held entry still keeps its copies for a human (the guard's purpose)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance
from sqlalchemy import select

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import analyze_file, jobs_from_paths
from app.core.matching.hash_lists import ListPolicy
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.storage.db import Database
from app.storage.hash_lists import HashListService
from app.storage.ingest_recorder import ingest_jobs
from app.storage.list_import import ListSettings
from app.storage.models import AuditEvent, Decision, HashListEntry, Item
from app.storage.review import ReviewService
from app.tools.demo import sample_picture
from tests.helpers import make_user
from tests.helpers import recorder as make_recorder
from tests.storage.test_hash_list_exchange import pytx_file


def _pictures(folder: Path) -> dict[str, Path]:
    """A picture, its contrasted edit (8 PDQ bits off: what we confirm) and three copies of
    the picture (0 to 2 bits from it: nearer to the partner's hash of it than to our edit)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = sample_picture(0, (480, 320))
    made = {
        "picture": base,
        "contrast": ImageEnhance.Contrast(base).enhance(1.4),
        "dark": ImageEnhance.Brightness(base).enhance(0.9),
        "bright": ImageEnhance.Brightness(base).enhance(1.15),
        "q40": base,
    }
    out = {}
    for name, img in made.items():
        p = folder / f"{name}.jpg"
        img.save(p, "JPEG", quality=40 if name == "q40" else 85)
        out[name] = p
    return out


def _pdq(path: Path) -> str:
    sigs = analyze_file(path).signals
    return next(s.value for s in sigs if s.algorithm == "pdq" and not s.variant)


def _scenario(db: Database, mod_db: Database, admin, mod, tmp: Path, auto_resolve: bool = True):
    """Our confirm of the edit, the partner's hash of the picture (resolve), then the three
    copies with a flood guard of 1 an hour. Returns the copies' items by name."""
    pics = _pictures(tmp / "pics")
    store = ContentStore(tmp / "media")
    ingest_jobs(make_recorder(db, store, actor=admin), jobs_from_paths([pics["contrast"]]), 1)
    review = ReviewService(mod_db, second_review_share=0.0)
    got = review.claim_next(mod.id)
    assert got is not None
    review.decide(DecisionRequest(got.id, mod.id, Verdict.CONFIRM, "glorification"))
    HashListService(db).import_file(
        pytx_file(tmp, "partner.txt", [_pdq(pics["picture"])]),
        "partner",
        actor=admin,
        settings=ListSettings(policy=ListPolicy.RESOLVE),
    )
    policy = MatchPolicy(flood_per_hour=1, auto_resolve=auto_resolve)
    copies = [pics["dark"], pics["bright"], pics["q40"]]
    ingest_jobs(make_recorder(db, store, policy=policy, actor=admin), jobs_from_paths(copies), 1)
    with db.session() as s:
        items = {}
        for p in copies:
            sha = analyze_file(p).sha256
            items[p.stem] = s.scalar(select(Item).where(Item.sha256 == sha))
        entries = {e.id: e for e in s.scalars(select(HashListEntry))}
        decisions = {
            d.item_id: d for d in s.scalars(select(Decision).where(Decision.method == "auto_match"))
        }
        guards = [
            json.loads(e.detail)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "flood_guard"))
        ]
    return items, entries, decisions, guards


def _check_resolved_on_ours(items, entries, decisions, guards):
    partner = next(e for e in entries.values() if e.list_name == "partner")
    assert partner.flood_guarded_at is not None
    assert [g["entry"] for g in guards] == [partner.id]
    assert [it.status for it in items.values()] == ["auto_matched"] * 3
    on = {it.id: entries[decisions[it.id].matched_entry_id].list_name for it in items.values()}
    # one copy resolved on the partner's entry (the guard's limit), then the guard held it
    assert list(on.values()).count("partner") == 1
    # the copy that switched it still counts against it, and resolved on our own entry
    switched = guards[0]["item"]
    assert next(it for it in items.values() if it.id == switched).known_entry_id == partner.id
    assert on[switched] == "local"
    note = decisions[switched].note
    assert "(list partner)" in note and "(flood guard: queued for verification)" in note
    assert "; resolved on matches hash-list entry" in note and "(list local)" in note
    assert decisions[switched].category == "glorification"


def _check_held(items, entries):
    assert [it.status for it in items.values()] == ["auto_matched", "queued", "queued"]
    switched, after = list(items.values())[1:]
    assert switched.match_note.startswith("known match:")  # switched by this one
    assert "flood guard: queued for verification" in after.match_note


@pytest.mark.parametrize("auto_resolve", [True, False])
def test_a_held_partner_entry_does_not_hide_our_resolving_confirm(db, tmp_path, auto_resolve):
    admin = make_user(db, "admin1", Role.ADMIN)
    mod = make_user(db, "mod1", Role.MODERATOR)
    items, entries, decisions, guards = _scenario(db, db, admin, mod, tmp_path, auto_resolve)
    if auto_resolve:
        _check_resolved_on_ours(items, entries, decisions, guards)
    else:  # our list queues known content: nothing resolves the held entry's copies
        _check_held(items, entries)


def test_the_team_server_resolves_on_the_fallback_and_checks_it(team_server, tmp_path):
    admin = team_server.add("lead1", Role.ADMIN)
    mod = team_server.add("mod1", Role.MODERATOR)
    admin_db = team_server.connect("lead1")
    mod_db = team_server.connect("mod1")
    items, entries, decisions, guards = _scenario(admin_db, mod_db, admin, mod, tmp_path)
    _check_resolved_on_ours(items, entries, decisions, guards)


def test_the_team_server_refuses_a_fallback_the_item_does_not_match(team_server, tmp_path):
    """A workstation cannot resolve a copy of a held entry on an entry it does not match."""
    from sqlalchemy import text

    from app.core.model.domain import SightingInfo, utcnow
    from app.storage.ingest_recorder import _item_payload
    from app.storage.server_api import call

    admin = team_server.add("lead1", Role.ADMIN)
    mod = team_server.add("mod1", Role.MODERATOR)
    admin_db = team_server.connect("lead1")
    _scenario(admin_db, team_server.connect("mod1"), admin, mod, tmp_path)
    other = tmp_path / "other.jpg"
    sample_picture(9, (480, 320)).save(other, "JPEG", quality=85)
    HashListService(admin_db).import_file(
        pytx_file(tmp_path, "partner2.txt", [_pdq(other)]),
        "partner2",
        actor=admin,
        settings=ListSettings(policy=ListPolicy.RESOLVE),
    )
    with admin_db.session() as s:
        held = s.scalar(select(HashListEntry.id).where(HashListEntry.list_name == "partner"))
        unrelated = s.scalar(select(HashListEntry.id).where(HashListEntry.list_name == "partner2"))
        n_items = len(s.scalars(select(Item.id)).all())
    copy = tmp_path / "copy.jpg"
    Image.open(tmp_path / "pics" / "picture.jpg").save(copy, "JPEG", quality=60)
    payload = _item_payload(
        copy, analyze_file(copy), SightingInfo("test", None, None, None, None, utcnow()), None, None
    )
    payload["known"] = {
        "entry": held, "distance": 0, "resolve": True, "note": "the partner's",
        "fallback": {"entry": unrelated, "distance": 0, "note": "claimed"},
    }  # fmt: skip
    batch = {
        "policy": {"pdq_threshold": 31, "phash_threshold": 10, "flood_per_hour": 1},
        "items": [payload],
    }
    refused = pytest.raises(Exception, match=f"entry #{unrelated} does not match item")
    with refused, admin_db.session() as s:
        call(s, text("SELECT * FROM hd_api_record_items(CAST(:b AS jsonb))"),
             {"b": json.dumps(batch)})  # fmt: skip
    with admin_db.session() as s:
        assert len(s.scalars(select(Item.id)).all()) == n_items  # nothing recorded
