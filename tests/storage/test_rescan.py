"""Re-scan on every new hash (app.storage.rescan): the open queue and the recent items matched
again, from their stored signals, against the new hashes only; open items resolve or get the
badge by the list's policy, rejected ones are flagged for the leads, decided ones counted;
incidents: items matching their hashes go under them, first in the queue, with the banner, and
a confirm of one carries the incident's label into the hash list. SQLite and PostgreSQL."""

from __future__ import annotations

from PIL import Image
from sqlalchemy import select

from app.core.matching.hash_lists import ListPolicy
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Role, Verdict
from app.storage.audit import verify_chains
from app.storage.hash_lists import HashListService
from app.storage.incidents import IncidentService
from app.storage.list_import import ListSettings
from app.storage.models import Decision, HashListEntry, Item, Rescan, SignalRow
from app.storage.rescan import Rescanner, high_water
from app.storage.review import ReviewService
from app.storage.verification import verify_hash_list
from tests.helpers import ingest, make_user, write_samples


def _variant(src, dst, shrink: int = 40):
    """A near-duplicate of ``src``: smaller and recompressed."""
    img = Image.open(src).convert("RGB")
    img.resize((img.width - shrink, img.height - shrink * 2 // 3)).save(dst, quality=70)
    return dst


def _item(db, name: str) -> Item:
    with db.session() as s:
        return s.scalar(
            select(Item).where(Item.sightings.any(original_name=name))  # type: ignore[arg-type]
        )


def test_a_confirm_resolves_the_variants_waiting_apart_and_flags_a_rejected_one(
    db, store, tmp_path
):
    """A is escalated (out of the queue) when its variant A2 arrives: A2 waits alone. C was
    rejected; its variant C2 arrives later and waits alone. The lead confirms A: A2 resolves
    at once. A moderator confirms C2: C is flagged for the leads as a possible miss."""
    a, c = write_samples(tmp_path / "in", [11, 12])
    mo = make_user(db, "mo1")
    lead = make_user(db, "lead1", Role.LEAD)
    review = ReviewService(db, second_review_share=0.0)
    ingest(db, store, [a, c])
    ia, ic = _item(db, a.name), _item(db, c.name)
    assert review.claim_next(mo.id).id == ia.id  # the older first
    review.decide(DecisionRequest(ia.id, mo.id, Verdict.ESCALATE, note="not sure"))
    assert review.claim_next(mo.id).id == ic.id
    review.decide(DecisionRequest(ic.id, mo.id, Verdict.REJECT))
    ingest(db, store, [_variant(a, tmp_path / "a2.jpg"), _variant(c, tmp_path / "c2.jpg")])
    a2, c2 = _item(db, "a2.jpg"), _item(db, "c2.jpg")
    assert a2.cluster_id is None and c2.cluster_id is None  # nothing open to join
    assert a2.status == c2.status == ItemStatus.QUEUED

    rescanner = Rescanner(db, MatchPolicy(), actor=lead)
    out = review.decide(DecisionRequest(ia.id, lead.id, Verdict.CONFIRM, "glorification"))
    report = rescanner.after_confirm(out.uuid)
    with db.session() as s:
        n_hashes = s.query(HashListEntry).filter_by(decision_uuid=out.uuid).count()
        n_items = s.query(Item).count()
    # Only the new hashes were searched, over every stored item (all recent here).
    assert report.searched_hashes == rescanner.last_index_size > 0
    assert report.searched_hashes <= n_hashes
    assert report.items_scanned == n_items
    assert report.resolved == 1 and report.matched >= 1
    a2 = _item(db, "a2.jpg")
    assert a2.status == ItemStatus.AUTO_MATCHED and "confirmed by lead1" in a2.match_note
    with db.session() as s:
        d = s.scalar(select(Decision).where(Decision.item_id == a2.id))
        assert d.method == "auto_match" and d.matched_entry_id is not None
        row = s.get(Rescan, report.rescan_id)
        assert (row.resolved, row.searched_hashes) == (1, report.searched_hashes)

    got = review.claim_next(mo.id)
    assert got.id == c2.id  # what is left in the queue
    out = review.decide(DecisionRequest(c2.id, mo.id, Verdict.CONFIRM, "glorification"))
    report = rescanner.after_confirm(out.uuid)
    assert report.flagged_misses == 1 and report.resolved == 0
    misses = IncidentService(db).possible_misses()
    assert [m.item_id for m in misses] == [ic.id]
    assert _item(db, c.name).status == ItemStatus.DECIDED  # the decision stands
    # Again: nothing new is flagged twice.
    assert rescanner.after_confirm(out.uuid).flagged_misses == 0


def test_an_imported_list_resolves_or_badges_the_waiting_copies_by_its_policy(db, store, tmp_path):
    """A partner's list arrives while two variants of its picture wait: a "resolve" list
    resolves both at once; a "queue" list only badges them."""
    a, b = write_samples(tmp_path / "in", [21, 22])
    ingest(db, store, [a])
    admin = make_user(db, "root", Role.ADMIN)
    ia = _item(db, a.name)
    with db.session() as s:
        pdq = s.scalar(
            select(SignalRow.value).where(
                SignalRow.item_id == ia.id, SignalRow.algorithm == "pdq", SignalRow.variant == ""
            )
        )
        s.execute(Item.__table__.update().values(status="escalated"))  # A out of the way
    ingest(db, store, [_variant(a, tmp_path / "a2.jpg"), b])
    ingest(db, store, [_variant(a, tmp_path / "a3.jpg", 60)])  # joins a2's cluster
    a2, a3 = _item(db, "a2.jpg"), _item(db, "a3.jpg")
    assert a3.cluster_id == a2.id
    path = tmp_path / "partner.txt"
    path.write_text(f"pdq {pdq}\n")
    lists = HashListService(db)
    before = high_water(db)
    lists.import_file(path, "partner_q", actor=admin, fmt="pytx")
    report = Rescanner(db, MatchPolicy(), actor=admin).after_import("partner_q", before)
    assert report.searched_hashes == 1 and report.badged >= 1 and report.resolved == 0
    assert _item(db, "a2.jpg").status == ItemStatus.QUEUED
    assert _item(db, "a2.jpg").match_note.startswith("known match: ")
    assert _item(db, b.name).match_note is None  # unrelated: untouched

    before = high_water(db)
    lists.import_file(
        path, "partner_r", actor=admin, fmt="pytx",
        settings=ListSettings(policy=ListPolicy.RESOLVE),
    )  # fmt: skip
    # a2 carries the first list's badge already; a fresh open copy resolves by the new list
    with db.session() as s:
        s.execute(
            Item.__table__.update()
            .where(Item.id == a2.id)
            .values(match_note=None, known_entry_id=None)
        )
    report = Rescanner(db, MatchPolicy(), actor=admin).after_import("partner_r", before)
    assert report.resolved == 2  # a2, and a3 decided with its representative
    assert _item(db, "a2.jpg").status == _item(db, "a3.jpg").status == ItemStatus.AUTO_MATCHED
    assert verify_hash_list(db) == [] and all(r.ok for r in verify_chains(db))


def test_an_incident_from_seed_to_label(db, store, tmp_path):
    """Declared with a seed item: its variant waiting apart goes under the incident (re-scan),
    so does a new one arriving (ingest), first in the queue with the banner; whoever the lead
    moved onto it claims only its items; a confirm of one puts the label on its hashes."""
    seed, other, later = write_samples(tmp_path / "in", [31, 32, 33])
    mo = make_user(db, "mo1")
    mo2 = make_user(db, "mo2")
    lead = make_user(db, "lead1", Role.LEAD)
    ingest(db, store, [other, later, seed])
    iseed = _item(db, seed.name)
    with db.session() as s:  # the seed is out of the queue when its variant arrives
        s.execute(Item.__table__.update().where(Item.id == iseed.id).values(status="escalated"))
    ingest(db, store, [_variant(seed, tmp_path / "s2.jpg")])
    incidents = IncidentService(db)
    info = incidents.declare("attack", "CIP-2026-12", actor=lead, seed_items=[iseed.id])
    report = Rescanner(db, MatchPolicy(), actor=lead).after_declare(info.id)
    assert report.tagged == 1 and report.resolved == 0
    assert _item(db, "s2.jpg").incident_id == info.id
    ingest(db, store, [_variant(seed, tmp_path / "s3.jpg", 60)])  # joins s2's cluster
    assert _item(db, "s3.jpg").incident_id == info.id

    review = ReviewService(db, second_review_share=0.0)
    first = review.claim_next(mo.id)
    assert first.id == _item(db, "s2.jpg").id  # the incident queue first
    assert first.incident == "INCIDENT attack · CIP-2026-12"
    incidents.assign("attack", ["mo2"], actor=lead)
    assert review.claim_next(mo2.id) is None  # only the incident's items, and mo1 holds it
    # mo2 counts the incident's items only (s2, held by mo1, and s3 behind it); mo1 all four
    assert (review.counts(mo2.id).open_items, review.counts(mo.id).open_items) == (2, 4)
    out = review.decide(DecisionRequest(first.id, mo.id, Verdict.CONFIRM, "glorification"))
    with db.session() as s:
        labels = set(
            s.scalars(
                select(HashListEntry.labels).where(
                    HashListEntry.item_id.in_([first.id, _item(db, "s3.jpg").id])
                )
            )
        )
    assert labels == {"CIP-2026-12"} and out.cluster_members == 1
    nxt = review.claim_next(mo.id)
    assert nxt is not None and nxt.incident is None  # the rest of the queue, no banner
    incidents.conclude("attack", actor=lead)
    review.release(mo.id, [nxt.id])
    assert review.claim_next(mo2.id) is not None  # concluded: mo2 works the whole queue
