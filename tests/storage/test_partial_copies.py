"""Partial copies (issue 22, item 4) on real media: a compilation written with PyAV (a photo
slideshow, 7 s of a corpus video, another slideshow) ingested after that video was confirmed is
badged "contains known video #N from 0:08 to 0:14" (or resolved, by the list's policy), both
spans and both shares recorded on the item, on SQLite, PostgreSQL and a team server (through
its write API); the same when the compilation was waiting before the confirm (its re-scan); a
compilation of other footage is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import jobs_from_paths
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Role, Verdict
from app.storage.db import Database
from app.storage.ingest_recorder import ingest_jobs
from app.storage.models import Decision, Item
from app.storage.rescan import Rescanner
from app.storage.review import ReviewService
from app.tools.runs_bench import video_part, write_compilation
from tests.conftest import CORPUS, skip_without_corpus
from tests.helpers import make_user
from tests.helpers import recorder as make_recorder

ORIGINAL = "chair-orig-22-sd-bar.mp4"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    skip_without_corpus()
    folder = tmp_path_factory.mktemp("compilations")
    videos, photos = CORPUS / "videos", CORPUS / "pdq-images"
    return {
        # 8 s of slides, the original's seconds 5 to 12 (7 s), 8 s of slides
        "with": write_compilation(
            folder / "with.mp4", photos, video_part(videos / ORIGINAL, 5.0, 7)
        ),
        # the same slides around 4 s of another video: nothing of the original
        "without": write_compilation(
            folder / "without.mp4", photos, video_part(videos / "doorknob-hd-no-bar.mp4", 0.0, 4)
        ),
    }


def confirm_original(db: Database, store: ContentStore, mod) -> int:
    ingest_jobs(make_recorder(db, store), jobs_from_paths([CORPUS / "videos" / ORIGINAL]), 1)
    review = ReviewService(db)
    item = review.claim_next(mod.id)
    assert item is not None
    review.decide(DecisionRequest(item.id, mod.id, Verdict.CONFIRM, "glorification"))
    return item.id


def ingest_one(db: Database, store: ContentStore, path: Path, policy: MatchPolicy) -> Item:
    ingest_jobs(make_recorder(db, store, policy=policy), jobs_from_paths([path]), workers=1)
    with db.session() as s:
        return s.scalars(select(Item).order_by(Item.id.desc()).limit(1)).one()


def check_badged(item: Item, original: int) -> None:
    assert item.status == ItemStatus.QUEUED
    note = item.match_note or ""
    assert note.startswith("known match: ")
    assert f"contains known video #{original} from 0:08 to 0:14 (query share " in note
    assert "reference share" in note and "; its 0:05 to 0:11, pdq_frame within" in note
    # The spans, within a sample of where the footage was put and where it came from.
    assert abs(item.match_start - 8.0) <= 1.0 and abs(item.match_end - 14.0) <= 1.0
    assert abs(item.match_ref_start - 5.0) <= 1.0 and abs(item.match_ref_end - 11.0) <= 1.0
    # About 7 of the compilation's 23 s and of the original's 22 s.
    assert 0.2 <= item.match_query_share <= 0.4
    assert 0.2 <= item.match_ref_share <= 0.45
    assert item.known_entry_id is not None


def test_a_compilation_with_part_of_a_confirmed_video_is_badged_with_the_span(db, store, clips):
    mod = make_user(db, "mod0")
    original = confirm_original(db, store, mod)
    queue = MatchPolicy(auto_resolve=False)
    check_badged(ingest_one(db, store, clips["with"], queue), original)
    plain = ingest_one(db, store, clips["without"], queue)
    assert plain.match_note is None and plain.known_entry_id is None
    assert plain.match_start is None and plain.match_query_share is None


def test_the_list_policy_decides_a_partial_copy_as_any_match(db, store, clips):
    mod = make_user(db, "mod0")
    original = confirm_original(db, store, mod)
    item = ingest_one(db, store, clips["with"], MatchPolicy())  # local list: resolve
    assert item.status == ItemStatus.AUTO_MATCHED
    assert f"contains known video #{original} from 0:08 to 0:14" in (item.match_note or "")
    assert item.match_start is not None and item.match_ref_share is not None
    with db.session() as s:
        decision = s.scalars(select(Decision).where(Decision.item_id == item.id)).one()
    assert decision.matched_entry_id == item.known_entry_id
    assert "contains known video" in (decision.note or "")


def test_on_a_team_server_the_span_goes_through_the_write_api(team_server, tmp_path, clips):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mod = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    store = ContentStore(tmp_path / "store")
    modb = team_server.connect("mo")
    ingest_jobs(make_recorder(rootdb, store), jobs_from_paths([CORPUS / "videos" / ORIGINAL]), 1)
    review = ReviewService(modb)
    first = review.claim_next(mod.id)
    assert first is not None
    review.decide(DecisionRequest(first.id, mod.id, Verdict.CONFIRM, "glorification"))
    item = ingest_one(rootdb, store, clips["with"], MatchPolicy(auto_resolve=False))
    check_badged(item, first.id)


def rescan_badges(admin_db: Database, mod_db: Database, store, mod, clip: Path) -> None:
    """The compilation arrives before its original is confirmed: the confirm's re-scan badges
    it, with the spans and shares."""
    videos = CORPUS / "videos"
    ingest_jobs(make_recorder(admin_db, store), jobs_from_paths([videos / ORIGINAL, clip]), 1)
    with admin_db.session() as s:
        waiting = s.scalars(select(Item).order_by(Item.id)).all()
        assert [i.match_note for i in waiting] == [None, None]
    review = ReviewService(mod_db)
    first = review.claim_next(mod.id)
    assert first is not None and first.id == waiting[0].id  # the original: the older
    out = review.decide(DecisionRequest(first.id, mod.id, Verdict.CONFIRM, "glorification"))
    report = Rescanner(mod_db, MatchPolicy(auto_resolve=False), actor=mod).after_confirm(out.uuid)
    assert report.badged == 1 and report.resolved == 0
    with admin_db.session() as s:
        check_badged(s.get(Item, waiting[1].id), first.id)


def test_the_confirms_rescan_badges_a_compilation_waiting_before_it(db, store, clips):
    rescan_badges(db, db, store, make_user(db, "mod0"), clips["with"])


def test_on_a_team_server_the_rescan_records_the_span_through_its_api(team_server, tmp_path, clips):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mod = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    store = ContentStore(tmp_path / "store")
    rescan_badges(rootdb, team_server.connect("mo"), store, mod, clips["with"])


GOOD_SPAN = {"query": [8.0, 14.0], "ref": [5.0, 11.0], "query_share": 0.3, "ref_share": 0.32}


@pytest.mark.parametrize(
    "span",
    [
        {**GOOD_SPAN, "query": [14.0, 8.0]},  # backwards
        {**GOOD_SPAN, "query": [8.0, 40.0]},  # past the item's 23 s
        {**GOOD_SPAN, "query": [-1.0, 8.0]},
        {**GOOD_SPAN, "ref": [5.0, None]},  # half a reference span
        {**GOOD_SPAN, "ref": [11.0, 5.0]},
        {**GOOD_SPAN, "query_share": 1.5},
        {**GOOD_SPAN, "ref_share": -0.1},
        {**GOOD_SPAN, "query": ["8", 14.0]},  # not a number
        {"query": [8.0, 14.0]},  # shares missing
    ],
)
def test_the_server_refuses_a_claimed_span_that_cannot_be(team_server, span):
    """hd_match_span, which ingest's and the re-scan's write APIs check a claim with: a span
    the item cannot have is refused; a sound one comes back as the item's columns."""
    sql = text("SELECT hd_match_span(CAST(:p AS jsonb), 23.0)")
    with team_server.owner.session() as s:
        assert s.scalar(sql, {"p": json.dumps(GOOD_SPAN)}) == [8.0, 14.0, 5.0, 11.0, 0.3, 0.32]
    with pytest.raises(DBAPIError, match="match span"), team_server.owner.session() as s:
        s.scalar(sql, {"p": json.dumps(span)})
