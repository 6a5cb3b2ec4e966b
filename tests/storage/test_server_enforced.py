"""The server enforces the roles: each person connects as their own PostgreSQL login, and what a
role may not do is refused by PostgreSQL itself, outside the application too (the insider drill,
tests/drills/insider.py). Every flow still works as each role."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select, text

from app.core.matching.hash_index import HashIndex
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, ItemStatus, Role, Verdict
from app.core.model.history_types import HistoryFilter
from app.core.model.roles import PermissionDenied
from app.storage.audit import verify_chains
from app.storage.exposure import ExposureService
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.history_queries import HistoryService
from app.storage.journal import DecisionJournal, JournalSync
from app.storage.leads import LeadService
from app.storage.models import AuditEvent, Decision, HashListEntry, Item
from app.storage.review import ReviewService
from app.storage.users import UserService
from app.storage.verification import verify_hash_list
from tests.drills import insider
from tests.helpers import ingest, write_samples
from tests.helpers import recorder as make_recorder

pytestmark = pytest.mark.postgres


@pytest.fixture
def facts(team_server, tmp_path):
    f = insider.setup(team_server, tmp_path)
    f["prefix"] = team_server.prefix
    return f


def test_insider_drill_every_attempt_refused_and_nothing_changed(team_server, facts):
    before = insider.fingerprint(team_server)
    with insider.psql(team_server, "mo") as conn:
        outcomes = insider.run(conn, insider.moderator_attempts(facts))
    with insider.psql(team_server, "max") as conn:  # the blind second reviewer
        outcomes += insider.run(conn, insider.blind_attempts(facts))
    unexpected = [o for o in outcomes if not o.as_expected]
    assert unexpected == []
    assert sum(o.result.startswith("refused") for o in outcomes) >= 20
    assert insider.fingerprint(team_server) == before
    # And the record still verifies.
    assert all(r.ok for r in verify_chains(team_server.owner))
    assert verify_hash_list(team_server.owner) == []


def test_deciding_in_another_persons_name_is_refused_through_the_service(team_server, facts):
    max_ = facts["max"]
    review = ReviewService(team_server.connect("mo"))
    item = review.claim_next(facts["mo"].id)
    with pytest.raises(PermissionDenied, match="another person's name"):
        # mo's workstation, max's id: as if the client were patched
        ReviewService(team_server.connect("mo")).decide(
            DecisionRequest(item.id, max_.id, Verdict.CONFIRM, "glorification")
        )


def test_a_disabled_person_cannot_connect_nor_act_on_an_open_connection(team_server, facts):
    mo = facts["mo"]
    open_db = team_server.connect("mo")  # the window open before the account is disabled
    review = ReviewService(open_db)
    item = review.claim_next(mo.id)
    raw = insider.psql(team_server, "mo")
    UserService(facts["rootdb"]).disable("mo", actor=facts["root"])
    with pytest.raises(psycopg.OperationalError):
        insider.psql(team_server, "mo").close()  # NOLOGIN: a new connection is refused
    with pytest.raises(psycopg.Error):  # the psql session was ended, or is refused
        raw.execute("INSERT INTO second_reviews (item_id) VALUES (1)")
    raw.close()
    before = insider.fingerprint(team_server)
    with pytest.raises((PermissionDenied, Exception)):
        review.decide(DecisionRequest(item.id, mo.id, Verdict.CONFIRM, "glorification"))
    assert insider.fingerprint(team_server) == before


def test_every_flow_as_each_role(team_server, tmp_path):
    """Ingest (admin), review with clusters and undo (moderator), escalation, overturn and
    history (lead), second review (another moderator), live hash propagation to the admin's
    ingest index, and the journal's replay: all on the person's own connection."""
    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    lead = server.add("lena", Role.LEAD, actor=root, via=rootdb)
    mo = server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    max_ = server.add("max", Role.MODERATOR, actor=root, via=rootdb)
    server.set_second_review_share(1.0)  # the server draws: every decision is sampled
    from app.core.ingest.contentstore import ContentStore

    store = ContentStore(tmp_path / "media")
    paths = write_samples(tmp_path / "in", range(4))
    assert ingest(rootdb, store, paths).new == 4
    # A near-duplicate of the first sample joins its cluster (ingest as the admin).
    from PIL import Image

    img = Image.open(paths[0]).convert("RGB")
    img.resize((img.width - 8, img.height - 6)).save(tmp_path / "near.jpg", quality=80)
    assert ingest(rootdb, store, [tmp_path / "near.jpg"]).new == 1

    watcher = HashListWatcher(rootdb, HashIndex())
    watcher.load_all()

    modb = server.connect("mo")
    review = ReviewService(modb, second_review_share=1.0)
    first = review.claim_next(mo.id)
    assert first.cluster_size == 2
    out = review.decide(DecisionRequest(first.id, mo.id, Verdict.CONFIRM, "glorification"))
    assert out.cluster_members == 1 and out.hashes_added > 0
    assert watcher.refresh().added == out.hashes_added  # reached the admin's matcher
    undo = review.undo_last(mo.id)
    assert undo.hashes_retracted == out.hashes_added and undo.cluster_members == 1
    assert watcher.refresh().retracted == out.hashes_added
    again = review.decide(DecisionRequest(first.id, mo.id, Verdict.CONFIRM, "glorification"))
    assert again.hashes_added == out.hashes_added

    # The journal: decisions written offline land, once, on the moderator's connection.
    journal = DecisionJournal(tmp_path / "journal.sqlite3")
    nxt = review.claim_next(mo.id)
    journal.record_decision(DecisionRequest(nxt.id, mo.id, Verdict.ESCALATE, note="unsure"))
    report = JournalSync(journal, review, ExposureService(modb)).sync()
    assert report.error is None and len(report.landed) == 1 and not report.refused
    journal.close()

    # Second review, blind, by another moderator: sees the item, not mo's verdict.
    maxdb = server.connect("max")
    second = ReviewService(maxdb).claim_next(max_.id, queue="second_review")
    assert second is not None and second.id == first.id and second.match_note is None
    with maxdb.session() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(Decision.item_id == first.id, Decision.verdict == "confirm")
            )
            == 0
        )
    ReviewService(maxdb).decide(
        DecisionRequest(second.id, max_.id, Verdict.REJECT, method=DecisionMethod.SECOND_REVIEW)
    )

    # The lead: escalations (the disagreement and mo's escalation), history, overturn.
    leaddb = server.connect("lena")
    lreview = ReviewService(leaddb)
    handled = []
    while (esc := lreview.claim_next(lead.id, exclude=handled, queue="escalations")) is not None:
        lreview.decide(DecisionRequest(esc.id, lead.id, Verdict.REJECT, note="news report"))
        handled.append(esc.id)
    assert sorted(handled) == sorted([first.id, nxt.id])  # the disagreement, the escalation
    rows = HistoryService(leaddb).page(lead, HistoryFilter()).rows
    assert {r.username for r in rows} >= {"mo", "max", "lena"}
    # The cluster member's confirm still stands (the lead rejected only the representative).
    standing = [
        r
        for r in rows
        if r.verdict is Verdict.CONFIRM and r.superseded_by is None and r.item_id not in handled
    ]
    assert len(standing) == 1
    ov = LeadService(leaddb).overturn(lead, standing[0].uuid, "satire")
    assert ov.now is Verdict.REJECT and ov.hashes_retracted == out.hashes_added // 2
    # Everything each person did is on a record that verifies.
    assert all(r.ok for r in verify_chains(server.owner))
    assert verify_hash_list(server.owner) == []
    with server.owner.session() as s:
        authors = set(s.scalars(select(Decision.user_id).distinct()))
        assert {mo.id, max_.id, lead.id} <= authors
        assert (
            s.scalar(
                select(func.count())
                .select_from(Item)
                .where(Item.status == ItemStatus.ESCALATED.value)
            )
            == 0  # the lead resolved every escalation
        )


def test_the_roles_of_two_databases_do_not_collide(team_server):
    from app.storage.server_roles import role_prefix

    assert role_prefix("hashdesk", "public") != role_prefix("hashdesk_staging", "public")
    assert role_prefix("test", "t_a") != role_prefix("test", "t_b")
    with team_server.owner.engine.connect() as conn:
        groups = set(
            conn.execute(
                text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"),
                {"p": team_server.prefix + "%"},
            ).scalars()
        )
    assert groups == {team_server.prefix + g for g in ("moderator", "lead", "admin", "worker")}


def test_hash_list_rows_need_their_confirm(team_server, facts):
    """The service's own paths are checked too: a moderator's connection cannot add a hash
    under a decision that is not theirs (the ORM, not psql)."""
    mo_db = team_server.connect("max")
    c = facts["confirmed"]
    with pytest.raises(PermissionDenied), mo_db.session() as s:
        s.add(
            HashListEntry(
                algorithm="md5",
                value="0" * 32,
                list_name="local",
                decision_uuid=c.uuid,
                item_id=c.item_id,
                added_by=facts["max"].id,
            )
        )


@pytest.mark.parametrize("team_server", [False], indirect=True)
def test_upgrading_an_older_team_database_keeps_its_accounts(team_server, tmp_path, monkeypatch):
    """A team database made with a shared credential: `hashdesk db upgrade` as the owner
    installs the roles; each older account gets a login role with no login until its password
    is set (the owner, acting itself: the Hashdesk password hashes of before are gone)."""
    from app.cli import main

    old = UserService(team_server.owner)
    root = old.create_first_admin("root", "old admin password")
    old.add("mo", "old moderator pw", Role.MODERATOR, actor=root)
    monkeypatch.setenv("HASHDESK_DATABASE_URL", team_server.owner_url)
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    assert main(["db", "upgrade"]) == 0
    with pytest.raises(psycopg.OperationalError):
        insider.psql(team_server, "mo").close()  # no password yet: no login
    with team_server.owner.engine.connect() as conn:
        assert set(conn.execute(text("SELECT password_hash FROM users")).scalars()) == {
            "(PostgreSQL login)"
        }
    import io

    for name in ("root", "mo"):
        monkeypatch.setattr("sys.stdin", io.StringIO(team_server.PASSWORD + "\n"))
        assert main(["users", "passwd", name, "--password-stdin"]) == 0
    with insider.psql(team_server, "mo") as conn:  # now mo signs in as themself
        assert conn.execute("SELECT session_user").fetchone()[0] == f"{team_server.prefix}u_mo"
        with pytest.raises(psycopg.Error):
            conn.execute("DELETE FROM decisions")


def test_hash_list_exchange_as_each_role(team_server, tmp_path, corpus):
    """Partner lists on the enforced server: the admin imports (COPY, checked by the server)
    and re-imports with a deletion (retracted under the import's event); a lead disables and
    enables an entry; ingest's flood guard; a moderator's verdict on a badged item becomes
    feedback; a moderator may not import, disable or touch an imported row by hand."""
    import json

    from app.core.matching.hash_lists import ListPolicy
    from app.core.matching.match_rules import MatchPolicy
    from app.storage.hash_lists import HashListService
    from app.storage.ingest_recorder import ingest_jobs
    from app.storage.list_import import ListSettings
    from app.storage.models import HashListFeedback
    from tests.storage.test_hash_list_exchange import bridge, pytx_file, reference_pdq

    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    lead = server.add("lena", Role.LEAD, actor=root, via=rootdb)
    mo = server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    path = pytx_file(tmp_path, "p.txt", [ref[orig.name], "ab" * 32, "cd" * 32])
    admin_lists = HashListService(rootdb)
    first = admin_lists.import_file(
        path, "partner", actor=root, settings=ListSettings(policy=ListPolicy.RESOLVE)
    )
    assert first.added == 3
    path.write_text(path.read_text().replace("cd" * 32, "ef" * 32))  # one gone, one new
    second = admin_lists.import_file(path, "partner", actor=root)
    assert (second.added, second.retracted) == (1, 1)

    mo_lists = HashListService(server.connect("mo"))
    with pytest.raises(PermissionDenied):
        mo_lists.import_file(path, "partner", actor=mo)
    with server.owner.session() as s:
        entry_id = s.scalar(select(HashListEntry.id).where(HashListEntry.value == ref[orig.name]))
    with pytest.raises(PermissionDenied):
        mo_lists.set_enabled([entry_id], False, "looks benign", actor=mo)
    with insider.psql(server, "mo") as conn, pytest.raises(psycopg.Error):
        conn.execute(f"UPDATE hash_list SET labels = 'x' WHERE id = {entry_id}")

    lead_lists = HashListService(server.connect("lena"))
    assert lead_lists.set_enabled([entry_id], False, "a news photo", actor=lead) == 1
    assert lead_lists.set_enabled([entry_id], True, "checked again", actor=lead) == 1

    # Ingest (the admin) badges the bridge edits; the flood guard trips after 2.
    from app.core.ingest.contentstore import ContentStore
    from app.core.ingest.jobs import jobs_from_paths

    recorder = make_recorder(
        rootdb,
        ContentStore(tmp_path / "media"),
        policy=MatchPolicy(flood_per_hour=2),
        actor=root,
    )
    ingest_jobs(recorder, jobs_from_paths(edits[:3]), workers=1)
    with server.owner.session() as s:
        flood = s.scalar(select(HashListEntry.flood_guarded_at).where(HashListEntry.id == entry_id))
    assert flood is not None

    # A moderator's verdict on a badged item is feedback, in their own name.
    review = ReviewService(server.connect("mo"))
    item = review.claim_next(mo.id)
    assert item.match_note and "partner" in item.match_note
    review.decide(DecisionRequest(item.id, mo.id, Verdict.REJECT))
    with server.owner.session() as s:
        fb = s.execute(select(HashListFeedback.user_id, HashListFeedback.verdict)).all()
    assert fb == [(mo.id, "disagree")]
    assert all(r.ok for r in verify_chains(server.owner))
    assert verify_hash_list(server.owner) == []
    with server.owner.session() as s:
        events = [
            json.loads(d or "{}")
            for d in s.scalars(select(AuditEvent.detail).where(AuditEvent.kind == "import"))
        ]
    assert [e["added"] for e in events] == [3, 1]


def test_exposure_only_in_ones_own_name_and_read_by_the_leads(team_server, facts):
    """A moderator records what they saw unblurred in their own name only (through the service
    or by hand), never changes it, and reads only their own rows; a lead reads everyone's."""
    from app.core.model.domain import utcnow
    from app.core.model.exposure import ExposureEvent, ExposureKind
    from app.storage.exposure import ExposureService

    mo, max_, lead = facts["mo"], facts["max"], facts["lead"]
    item = facts["confirmed"].item_id
    as_mo = ExposureService(team_server.connect("mo"))
    assert as_mo.record(ExposureEvent(mo.id, item, ExposureKind.REVEAL, utcnow(), 2.0))
    ExposureService(team_server.connect("max")).record(
        ExposureEvent(max_.id, item, ExposureKind.REVEAL, utcnow(), 5.0)
    )
    with pytest.raises(PermissionDenied, match="another person's name"):
        as_mo.record(ExposureEvent(max_.id, item, ExposureKind.REVEAL, utcnow(), 1.0))
    with insider.psql(team_server, "mo") as conn:
        for sql in (
            "INSERT INTO exposure_events (uuid, user_id, item_id, kind, started_at, seconds, "
            f"area, recorded_at) VALUES ('x', {max_.id}, {item}, 'reveal', now(), 1, 1, now())",
            "UPDATE exposure_events SET seconds = 0",
            "DELETE FROM exposure_events",
        ):
            with pytest.raises(psycopg.Error):
                conn.execute(sql)
            conn.rollback()
        # Reading by hand: only mo's own row is visible to mo.
        assert conn.execute("SELECT user_id, seconds FROM exposure_events").fetchall() == [
            (mo.id, 2.0)
        ]
    assert [e.seconds for e in as_mo.events(mo)] == [2.0]
    as_lead = ExposureService(team_server.connect("lena"))
    assert sorted(e.seconds for e in as_lead.events(lead)) == [2.0, 5.0]
    # Comfort defaults: one's own row only.
    from app.core.review.preview import ComfortDefaults

    as_mo.keep_comfort(mo, ComfortDefaults(True, 2))
    as_mo.keep_comfort(mo, ComfortDefaults(False, 1))
    assert as_mo.comfort(mo.id) == ComfortDefaults(False, 1)
    with pytest.raises(PermissionDenied, match="only their own comfort"):
        as_mo.keep_comfort(max_, ComfortDefaults(True, 0))
    assert as_mo.comfort(max_.id) is None


def test_the_change_counter_needs_no_right_on_its_sequence(team_server, facts):
    """hash_list.change_seq is set by a trigger that runs as the schema owner: a moderator's
    confirm and undo set it with no right on the sequence at all (nor can the moderator then
    take numbers from it directly)."""
    with team_server.owner.engine.begin() as conn:
        conn.execute(
            text("SELECT set_config('hashdesk.test_group', :g, true)"),
            {"g": f"{team_server.prefix}moderator"},
        )
        conn.execute(
            text(
                "DO $$ BEGIN EXECUTE format('REVOKE ALL ON SEQUENCE hash_list_change_seq "
                "FROM %I', current_setting('hashdesk.test_group')); END $$"
            )
        )
        before = conn.scalar(select(func.max(HashListEntry.change_seq)))
    mo = facts["mo"]
    review = ReviewService(team_server.connect("mo"))
    item = review.claim_next(mo.id)
    out = review.decide(DecisionRequest(item.id, mo.id, Verdict.CONFIRM, "glorification"))
    assert out.hashes_added > 0

    def seqs() -> list[int]:
        with team_server.owner.session() as s:
            return list(
                s.scalars(select(HashListEntry.change_seq).where(HashListEntry.item_id == item.id))
            )

    added = seqs()
    assert len(added) == out.hashes_added and min(added) > before
    assert review.undo_last(mo.id).hashes_retracted == out.hashes_added
    assert min(seqs()) > max(added)
    with insider.psql(team_server, "mo") as conn, pytest.raises(psycopg.Error):
        conn.execute("SELECT nextval('hash_list_change_seq')")
