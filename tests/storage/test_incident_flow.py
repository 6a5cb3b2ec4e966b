"""The whole incident flow on the team server, each role on its own PostgreSQL login (issue 23):
the admin ingests, a lead declares an incident from a seed item and a seed hash and moves a
moderator onto it, the moderators work the queue through their workstation journals (the
incident's items first, with the banner; a confirm lands, then its re-scan runs, as the review
window's writer runs it), the lead's confirm of the seed resolves the copies waiting apart by
re-scan, the lead concludes. The record verifies.

Written as steps over one shared :class:`Flow`, in order: a later step (hash deltas out, the
debrief) is one more function appended to ``STEPS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.media import analyze_file
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Role, UserInfo, Verdict
from app.core.model.queues import Queue
from app.storage.audit import verify_chains
from app.storage.db import Database
from app.storage.exposure import ExposureService
from app.storage.incidents import IncidentService
from app.storage.journal import DecisionJournal, JournalSync
from app.storage.models import AuditEvent, HashListEntry, Item, Rescan
from app.storage.rescan import Rescanner
from app.storage.review import ReviewService
from app.storage.verification import verify_hash_list, verify_other_records
from tests.helpers import ingest, write_samples

pytestmark = pytest.mark.postgres

LABEL = "CIP-2026-1206"


@dataclass
class Flow:
    """What the steps share: the server, the people and their connections, the files."""

    team: object
    tmp: Path
    users: dict[str, UserInfo] = field(default_factory=dict)
    dbs: dict[str, Database] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    incident_id: int | None = None
    rescans: list = field(default_factory=list)

    def item(self, name: str) -> Item:
        with self.team.owner.session() as s:
            return s.scalar(select(Item).where(Item.sightings.any(original_name=name)))

    def ingest(self, *names: str) -> None:
        ingest(self.dbs["root"], ContentStore(self.tmp / "media"), [self.files[n] for n in names])

    def workstation(self, who: str) -> tuple[ReviewService, DecisionJournal, JournalSync]:
        """A moderator's workstation: the review service on their own login, the journal, and
        the writer that lands decisions and runs the re-scan after a confirm (as
        app.ui.review_controller wires it)."""
        db = self.dbs[who]
        review = ReviewService(db, second_review_share=0.0)
        journal = DecisionJournal(self.tmp / f"{who}.journal")
        rescanner = Rescanner(db, MatchPolicy(), actor=self.users[who])

        def rescan(uuid: str, _user: int) -> None:
            self.rescans.append(rescanner.after_confirm(uuid))

        return review, journal, JournalSync(journal, review, ExposureService(db), rescan=rescan)


def _variant(src: Path, dst: Path, shrink: int) -> Path:
    img = Image.open(src).convert("RGB")
    img.resize((img.width - shrink, img.height - shrink * 2 // 3)).save(dst, quality=70)
    return dst


def step_people_and_media(f: Flow) -> None:
    root = f.team.add("root", Role.ADMIN)
    f.users["root"] = root
    f.dbs["root"] = f.team.connect("root")
    for name, role in [("lena", Role.LEAD), ("mo1", Role.MODERATOR), ("mo2", Role.MODERATOR)]:
        f.users[name] = f.team.add(name, role, actor=root, via=f.dbs["root"])
        f.dbs[name] = f.team.connect(name)
    f.team.set_second_review_share(0.0)
    seed, other, original = write_samples(f.tmp / "in", [41, 42, 43])
    f.files.update(seed=seed, other=other, original=original)
    f.files["copy1"] = _variant(seed, f.tmp / "copy1.jpg", 40)
    f.files["copy2"] = _variant(seed, f.tmp / "copy2.jpg", 60)
    f.files["variant"] = _variant(original, f.tmp / "variant.jpg", 40)


def step_first_sighting_escalated(f: Flow) -> None:
    """The stream's first copy arrives; the moderator on duty sends it to the leads."""
    f.ingest("seed", "other")
    review, journal, sync = f.workstation("mo1")
    got = review.claim_next(f.users["mo1"].id)
    assert got.id == f.item(f.files["seed"].name).id
    journal.record_decision(
        DecisionRequest(got.id, f.users["mo1"].id, Verdict.ESCALATE, note="attack footage?")
    )
    assert sync.sync().landed
    # Copies arrive while it waits for a lead: nothing open to join, they wait apart (copy2
    # joins copy1's cluster).
    f.ingest("copy1", "copy2")
    assert f.item("copy2.jpg").cluster_id == f.item("copy1.jpg").id


def step_lead_declares(f: Flow) -> None:
    lena = f.users["lena"]
    with pytest.raises(Exception, match="may not"):
        IncidentService(f.dbs["mo1"]).declare("attack", LABEL, actor=f.users["mo1"])
    # The partner's seed hash: the original's PDQ (shared under the CIP before it reached us).
    original_pdq = next(
        s.value
        for s in analyze_file(f.files["original"]).signals
        if s.algorithm.value == "pdq" and not s.variant
    )
    info = IncidentService(f.dbs["lena"]).declare(
        "attack",
        LABEL,
        actor=lena,
        seed_items=[f.item(f.files["seed"].name).id],
        seed_hashes=[f"pdq:{original_pdq}"],
    )
    f.incident_id = info.id
    report = Rescanner(f.dbs["lena"], MatchPolicy(), actor=lena).after_declare(info.id)
    assert report.tagged == 2  # copy1 and copy2 (its cluster), found by the re-scan
    assert {f.item("copy1.jpg").incident_id, f.item("copy2.jpg").incident_id} == {info.id}
    IncidentService(f.dbs["lena"]).assign("attack", ["mo2"], actor=lena)


def step_new_copies_arrive_under_the_incident(f: Flow) -> None:
    """The original the partner hashed, and a variant of it: the server puts them under the
    incident at ingest (the seed hash); the variant joins the original's cluster."""
    f.ingest("original", "variant")
    assert f.item(f.files["original"].name).incident_id == f.incident_id
    assert f.item("variant.jpg").incident_id == f.incident_id


def step_lead_confirms_the_seed_and_the_rescan_resolves_copies(f: Flow) -> None:
    """The lead confirms the escalated first copy: its hashes carry the incident's label, and
    its re-scan resolves the two copies waiting apart at once (no human sees them)."""
    lena = f.users["lena"]
    review = ReviewService(f.dbs["lena"], second_review_share=0.0)
    esc = review.claim_next(lena.id, queue=Queue.ESCALATIONS)
    assert esc.id == f.item(f.files["seed"].name).id
    out = review.decide(DecisionRequest(esc.id, lena.id, Verdict.CONFIRM, "glorification"))
    report = Rescanner(f.dbs["lena"], MatchPolicy(), actor=lena).after_confirm(out.uuid)
    f.rescans.append(report)
    assert report.resolved == 2  # copy1, and copy2 decided with it
    assert 0 < report.searched_hashes <= out.hashes_added  # the new hashes only
    for name in ("copy1.jpg", "copy2.jpg"):
        assert f.item(name).status == ItemStatus.AUTO_MATCHED
    with f.team.owner.session() as s:
        labels = set(
            s.scalars(select(HashListEntry.labels).where(HashListEntry.decision_uuid == out.uuid))
        )
    assert labels == {LABEL}


def step_moderators_work_the_incident_queue(f: Flow) -> None:
    mo2 = f.users["mo2"]
    review, journal, sync = f.workstation("mo2")
    first = review.claim_next(mo2.id)
    assert first.incident == f"INCIDENT attack · {LABEL}"
    assert first.id == f.item(f.files["original"].name).id
    # mo1 (not moved onto it) gets the rest of the queue: the incident has nothing else open.
    review1, _, _ = f.workstation("mo1")
    second = review1.claim_next(f.users["mo1"].id)
    assert second.id == f.item(f.files["other"].name).id and second.incident is None
    review1.release(f.users["mo1"].id, [second.id])
    journal.record_decision(DecisionRequest(first.id, mo2.id, Verdict.CONFIRM, "glorification"))
    before = len(f.rescans)
    report = sync.sync()
    assert len(report.landed) == 1 and len(f.rescans) == before + 1  # re-scan after landing
    assert review.claim_next(mo2.id) is None  # mo2 works only the incident: done
    variant = f.item("variant.jpg")
    assert variant.status == ItemStatus.DECIDED  # decided with its cluster's representative
    with f.team.owner.session() as s:
        labels = set(
            s.scalars(
                select(HashListEntry.labels).where(
                    HashListEntry.item_id.in_([first.id, variant.id])
                )
            )
        )
    assert labels == {LABEL}


def step_lead_concludes(f: Flow) -> None:
    info = IncidentService(f.dbs["lena"]).conclude("attack", actor=f.users["lena"])
    assert not info.active and info.concluded_by == "lena"
    review = ReviewService(f.dbs["mo2"], second_review_share=0.0)
    left = review.claim_next(f.users["mo2"].id)  # back on the whole queue
    assert left is not None and left.incident is None


def step_the_record_holds(f: Flow) -> None:
    owner = f.team.owner
    assert all(r.ok for r in verify_chains(owner))
    assert verify_hash_list(owner) == []
    assert verify_other_records(owner) == []  # the deltas' tables among them
    with owner.session() as s:
        kinds = [
            (e.kind, e.actor_name)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.subject == "attack"))
        ]
        rescans = s.scalars(select(Rescan).order_by(Rescan.id)).all()
        copies = [f.item("copy1.jpg"), f.item("copy2.jpg")]
    assert kinds == [
        ("incident_declared", "lena"),
        ("incident_assigned", "lena"),
        ("incident_concluded", "lena"),
    ]
    assert len(rescans) == len(f.rescans) + 1  # + the declare's
    assert [c.status for c in copies] == [ItemStatus.AUTO_MATCHED] * 2
    assert sum(r.resolved for r in rescans) == 2
    assert {r.incident_id for r in rescans} == {f.incident_id}  # what the debrief counts
    assert {r.run_by for r in rescans} == {f.users["lena"].id, f.users["mo2"].id}


def step_a_lead_sends_the_first_delta(f: Flow) -> None:
    """While the incident is active, `hashdesk deltas run`'s round as the lead: delta 1 with
    the incident's label; a moderator may not send."""
    from app.core.exchange.deltas import DeltaCadence, manifest_name, read_manifest
    from app.core.model.roles import PermissionDenied
    from app.storage.deltas import DeltaService

    out = f.tmp / "deltas"
    out.mkdir()
    f.files["deltas"] = out
    with pytest.raises(PermissionDenied):
        DeltaService(f.dbs["mo2"]).run_round(DeltaCadence(folder=out), actor=f.users["mo2"])
    first = DeltaService(f.dbs["lena"]).run_round(DeltaCadence(folder=out), actor=f.users["lena"])
    assert first.written and first.seq == 1 and "(incident attack)" in first.note
    assert read_manifest(out / manifest_name(1)).label == LABEL


def step_the_last_delta_a_partner_and_the_debrief(f: Flow) -> None:
    """Concluded with the moderators' confirms not yet sent: the last delta goes at once; a
    partner (here an admin, into a list of its own) imports both in order and holds what we
    share; the lead's situation and debrief count it all; a moderator may not read them."""
    from app.core.exchange.deltas import DeltaCadence
    from app.core.model.roles import PermissionDenied
    from app.core.model.situation import figure_rows
    from app.core.reports import debrief_html
    from app.storage.deltas import DeltaService
    from app.storage.situation import SituationService

    out = f.files["deltas"]
    lena = f.users["lena"]
    last = DeltaService(f.dbs["lena"]).run_round(DeltaCadence(folder=out), actor=lena)
    assert last.written and last.seq == 2 and "concluded" in last.note
    got = DeltaService(f.dbs["root"]).import_deltas(out, "us", actor=f.users["root"])
    assert [n for n, _ in got.imported] == [1, 2]
    with f.team.owner.session() as s:
        e = HashListEntry

        def active(name: str, plain: bool) -> set[tuple[str, str]]:
            q = select(e.algorithm, e.value).where(
                e.list_name == name, e.retracted_at.is_(None), e.disabled_at.is_(None)
            )
            return set(s.execute(q.where(e.variant == "") if plain else q).all())

        assert active("us", False) == active("local", True) != set()
    sit = SituationService(f.dbs["lena"]).situation("attack", actor=lena)
    figures = dict(figure_rows(sit))
    assert figures["copies resolved by re-scan"] == "2"
    assert int(figures["hashes shared"]) == sum(d.added for d in sit.deltas) > 0
    assert sit.first_sighting <= sit.first_confirm <= sit.first_delta
    assert "What was shared, and when" in debrief_html(sit)
    with pytest.raises(PermissionDenied):
        SituationService(f.dbs["mo2"]).situation("attack", actor=f.users["mo2"])


STEPS: list[Callable[[Flow], None]] = [
    step_people_and_media,
    step_first_sighting_escalated,
    step_lead_declares,
    step_new_copies_arrive_under_the_incident,
    step_lead_confirms_the_seed_and_the_rescan_resolves_copies,
    step_a_lead_sends_the_first_delta,
    step_moderators_work_the_incident_queue,
    step_lead_concludes,
    step_the_last_delta_a_partner_and_the_debrief,
    step_the_record_holds,
]


def test_the_whole_incident_flow_as_each_role(team_server, tmp_path):
    flow = Flow(team_server, tmp_path)
    for step in STEPS:
        step(flow)
