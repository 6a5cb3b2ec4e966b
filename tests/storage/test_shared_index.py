"""One hash-list index per process: the context's, loaded once and kept current, used by every
ingest (the GUI's and the CLI's alike). On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from app.compose import AppContext
from app.core.ingest.jobs import jobs_from_paths
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Verdict
from app.core.settings.config import Settings
from app.storage.models import HashListEntry, Item, Sighting
from app.storage.review import ReviewService
from tests.helpers import make_user, write_cluster


def test_ingests_share_the_contexts_index_and_see_entries_added_since(
    db, store, taxonomy, tmp_path
):
    settings = Settings(database_url=str(db.engine.url), media_root=store.root)
    ctx = AppContext(settings=settings, db=db, store=store, taxonomy=taxonomy)
    original, near_copy = write_cluster(tmp_path / "pics", seed=21, size=2)
    assert ctx.watcher.loads == 0  # nothing loaded before it is needed

    first = ctx.ingest(jobs_from_paths([original], source="test", reason="flag"))
    assert first.new == 1 and first.auto_matched == 0
    assert ctx.watcher.loads == 1
    index = ctx.watcher.index

    # Confirmed (in this process, as a moderator's decision would be): on the hash list now.
    with db.session() as s:
        item_id = s.scalar(
            select(Item.id).join(Sighting).where(Sighting.original_name == original.name)
        )
    review = ReviewService(db)
    review.decide(
        DecisionRequest(item_id, make_user(db).id, Verdict.CONFIRM, "attack_recording", "x")
    )
    with db.session() as s:
        assert s.scalar(select(HashListEntry.id).where(HashListEntry.item_id == item_id))

    second = ctx.ingest(jobs_from_paths([near_copy], source="test", reason="flag"))
    assert second.new == 1 and second.auto_matched == 1  # the entry added since was seen
    assert ctx.watcher.loads == 1  # ... without loading the list again
    assert ctx.watcher.index is index and len(index) > 0
    assert ctx.recorder()._indexes()[0] is index
    ctx.watcher.stop()
