"""`hashdesk bench incident` (issue 23): the surge drill, and the re-scan of a large open queue.

The drill: an incident declared, then ``items`` arriving over simulated hours in bursts: copies
of a few originals' variants (each variant an edit too far from the original for its PDQ to
match it; each copy a re-encode of a variant, a few bits off) among unrelated items. The
signals are generated (no media: PDQ, pHash, MD5, SHA-256 per item) and go through the real
recorder (``IngestRecorder.record_many``: matching against the hash list and the open queue,
clusters, incident membership). After each burst a simulated moderator works the queue
(``ReviewService``): confirms a variant's copy, rejects an unrelated item; each confirm is
followed by its re-scan (``Rescanner.after_confirm``), timed from the confirm landing to the
re-scan finishing. The hash deltas run on the simulated clock (:class:`DeltaStage`: the
application's ``DeltaService``, a round every ``delta_minutes`` of the incident, 5, taking and
writing a delta to a folder when anything changed). Reported: the human decisions needed, the
share resolved without a human (at ingest, by re-scan, or decided with a cluster's confirm),
the confirm-to-re-scan times, and the time to the next delta: from each confirm to the delta
that carries its hashes (simulated minutes: the cadence) and the wall time to take and write a
delta.

The re-scan bench: ``open_items`` open items (generated, bulk-inserted), a few dozen of them
copies of one picture; that picture confirmed; its re-scan timed, with the number of hashes it
searched (only the confirm's) beside the hash list's size.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from app.compose import AppContext, open_context
from app.core.exchange.deltas import DEFAULT_FORMATS
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import (
    Algorithm,
    DecisionMethod,
    ItemStatus,
    MediaAnalysis,
    MediaKind,
    Role,
    SightingInfo,
    Signal,
    Verdict,
    utcnow,
)
from app.core.settings.config import load_settings
from app.storage.models import Decision, DeltaEntry, HashListEntry, Item, SignalRow
from app.tools.benchdata import fill_hash_list


def _flip(rng: random.Random, hex_value: str, bits: int) -> str:
    n = int(hex_value, 16)
    width = len(hex_value) * 4
    for b in rng.sample(range(width), bits):
        n ^= 1 << b
    return f"{n:0{len(hex_value)}x}"


def _rand(rng: random.Random, hex_len: int) -> str:
    return f"{rng.getrandbits(hex_len * 4):0{hex_len}x}"


def _analysis(rng: random.Random, pdq: str, phash: str) -> MediaAnalysis:
    sha, md5 = _rand(rng, 64), _rand(rng, 32)
    return MediaAnalysis(
        sha256=sha,
        md5=md5,
        size=rng.randint(20_000, 900_000),
        kind=MediaKind.IMAGE,
        mime="image/jpeg",
        width=1280,
        height=720,
        signals=[
            Signal(Algorithm.SHA256, sha),
            Signal(Algorithm.MD5, md5),
            Signal(Algorithm.PDQ, pdq, 90),
            Signal(Algorithm.PHASH, phash),
        ],
    )


@dataclass
class _Arrival:
    group: str  # "v<orig>.<variant>" for an attack copy, "" for an unrelated item
    analysis: MediaAnalysis
    at: float  # simulated seconds since the start


def _arrivals(
    rng: random.Random, items: int, originals: int, variants: int, share: float, hours: float
) -> tuple[list[_Arrival], list[tuple[str, str, str]]]:
    """The arrivals, in time order: ``share`` of them copies of the variants, the rest
    unrelated; in bursts (a burst every few simulated minutes, its size drawn heavy-tailed)."""
    groups: list[tuple[str, str, str]] = []
    for o in range(originals):
        pdq, ph = _rand(rng, 64), _rand(rng, 16)
        for v in range(variants):
            # an edit (crop, caption, re-frame): too far from the original for its PDQ to match
            groups.append(
                (f"v{o}.{v}", _flip(rng, pdq, 48 + rng.randrange(16)), _flip(rng, ph, 20))
            )
    out = []
    for _ in range(items):
        if rng.random() < share:
            name, pdq, ph = rng.choice(groups)
            # a copy: re-encoded, a few bits off its variant (a few exact re-uploads too)
            a = _analysis(
                rng, _flip(rng, pdq, rng.randrange(0, 9)), _flip(rng, ph, rng.randrange(0, 4))
            )
            out.append(_Arrival(name, a, 0.0))
        else:
            out.append(_Arrival("", _analysis(rng, _rand(rng, 64), _rand(rng, 16)), 0.0))
    # bursts: the attack's copies come in waves, thinning out over the hours
    t = 0.0
    i = 0
    span = hours * 3600.0
    while i < len(out):
        size = max(1, int(rng.paretovariate(1.3) * len(out) / 300))
        for a in out[i : i + size]:
            a.at = min(t, span)
        i += size
        t += rng.uniform(60.0, 600.0) * (1 + 3 * i / len(out))
    return out, groups


def bench_surge(
    url: str | None = None,
    items: int = 10_000,
    originals: int = 4,
    variants: int = 6,
    share: float = 0.8,
    hours: float = 6.0,
    seed: int = 23,
    deltas: bool = True,
    say: Callable[[str], None] = print,
) -> dict:
    """The surge drill (module docstring). ``url``: a database (default: a throwaway SQLite
    file); ``deltas``: run the delta cadence (:class:`DeltaStage`). Returns the figures."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="hashdesk-incident-") as tmp:
        ctx = _context(url or f"sqlite:///{Path(tmp) / 'surge.sqlite3'}", Path(tmp))
        try:
            return _surge(
                ctx, Path(tmp), rng, items, originals, variants, share, hours, deltas, say
            )
        finally:
            ctx.close()


def _context(url: str, folder: Path) -> AppContext:
    """The application's own context (the composition root) on ``url``: no second review
    draws (the drill counts decisions), the default matching policy."""
    env = {
        "HASHDESK_DATABASE_URL": url,
        "HASHDESK_MEDIA_ROOT": str(folder / "media"),
        "HASHDESK_SECOND_REVIEW_PERCENT": "0",
        "HASHDESK_INDEX_SNAPSHOT": "off",
    }
    return open_context(load_settings(env))


class DeltaStage:
    """The hash deltas of the drill on its simulated clock: a round of the incident's cadence
    (every ``delta_minutes`` of simulated time since the declare) takes a delta of what changed
    (``DeltaService.plan``, the incident's formats and label) and writes it to ``folder``
    (``deliver``), as ``hashdesk deltas run`` does on the wall clock. Each delta: its number,
    the simulated time of its cut, the wall seconds to take and write it."""

    def __init__(self, ctx: AppContext, lead, incident, folder: Path) -> None:
        self.service = ctx.deltas  # the composition root's
        self.lead = lead
        self.incident = incident
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.every = 60.0 * (incident.delta_minutes or 5)
        self.formats = tuple(incident.delta_formats) or DEFAULT_FORMATS
        self.next_round = self.every
        self.cut_at: dict[int, float] = {}  # delta number -> simulated seconds of its cut
        self.wall_s: list[float] = []
        self.failed: list[str] = []

    def until(self, sim_seconds: float) -> None:
        """Every round due at or before ``sim_seconds`` (simulated), in order."""
        while self.next_round <= sim_seconds:
            self._round(self.next_round)
            self.next_round += self.every

    def _round(self, at: float) -> None:
        t = time.perf_counter()
        seq = self.service.plan(actor=self.lead, formats=self.formats, incident_id=self.incident.id)
        if seq is None:
            return  # nothing changed since the last delta
        out = self.service.deliver(seq, actor=self.lead, folder=self.folder)
        if not out.written:
            self.failed.append(f"delta {seq}: {out.error}")
            return
        self.wall_s.append(time.perf_counter() - t)
        self.cut_at[seq] = at


def _surge(ctx, tmp, rng, items, originals, variants, share, hours, deltas, say) -> dict:
    db = ctx.db
    lead = ctx.users.add("benchlead", "benchmark-password", Role.LEAD)
    mod = ctx.users.add("benchmod", "benchmark-password", Role.MODERATOR)
    recorder = ctx.recorder()
    review = ctx.review
    rescanner = ctx.rescanner(mod)
    arrivals, groups = _arrivals(rng, items, originals, variants, share, hours)
    # The lead declares at once, seeded with the hashes a partner shared of the first original's
    # variants (the stream itself); the other originals' variants are found here.
    incident = ctx.incidents.declare(
        "surge",
        "CIP-BENCH",
        actor=lead,
        seed_hashes=[f"pdq:{pdq}" for name, pdq, _ in groups if name.startswith("v0.")],
    )
    # A third of the way in, a partner's hash share arrives (a list with policy "resolve"):
    # the hashes of the last original's variants, which may wait in the queue by then.
    partner = [pdq for name, pdq, _ in groups if name.startswith(f"v{originals - 1}.")]
    partner_at = arrivals[len(arrivals) // 3].at
    partner_done = False
    import_rescan: dict = {}
    group_of = {a.analysis.sha256: a.group for a in arrivals}
    start = utcnow() - timedelta(hours=hours)
    rescan_s: list[float] = []
    rescan_resolved = 0
    human = confirms = 0
    confirmed_groups: set[str] = set()
    bursts = 0
    stage = DeltaStage(ctx, lead, incident, tmp / "deltas") if deltas else None
    confirmed_at: dict[str, float] = {}  # a confirm's decision -> simulated seconds
    t0 = time.perf_counter()
    ingest_s = 0.0
    i = 0
    while i < len(arrivals):
        j = i
        while j < len(arrivals) and arrivals[j].at == arrivals[i].at:
            j += 1
        burst = arrivals[i:j]
        i = j
        bursts += 1
        if stage is not None:
            stage.until(burst[0].at)
        files = [
            (
                Path(f"{a.analysis.sha256[:12]}.jpg"),
                a.analysis,
                SightingInfo("upload", None, None, "surge", None, start + timedelta(seconds=a.at)),
            )
            for a in burst
        ]
        t = time.perf_counter()
        recorder.record_many(files)
        ingest_s += time.perf_counter() - t
        if not partner_done and burst[0].at >= partner_at:
            partner_done = True
            import_rescan = _partner_share(ctx, tmp, partner)
        # the moderator works the queue down after each burst
        while True:
            got = review.claim_next(mod.id)
            if got is None:
                break
            group = group_of.get(got.sha256, "")
            verdict = Verdict.CONFIRM if group else Verdict.REJECT
            out = review.decide(
                DecisionRequest(got.id, mod.id, verdict, "glorification" if group else None)
            )
            human += 1
            if verdict is Verdict.CONFIRM and out.hashes_added:
                confirms += 1
                confirmed_groups.add(group)
                t = time.perf_counter()
                report = rescanner.after_confirm(out.uuid)
                rescan_s.append(time.perf_counter() - t)
                rescan_resolved += report.resolved
                confirmed_at[out.uuid] = burst[0].at
        if bursts % 20 == 0:
            say(f"  … {i} of {len(arrivals)} arrived, {human} human decisions so far")
    if stage is not None:  # the round after the last confirm
        stage.until(stage.next_round)
    total_s = time.perf_counter() - t0
    to_delta = _to_delta(db, stage, confirmed_at) if stage is not None else []
    with db.session() as s:
        distinct = int(s.scalar(select(func.count()).select_from(Item)) or 0)
        auto = int(
            s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(Decision.method == DecisionMethod.AUTO_MATCH)
            )
            or 0
        )
        cluster = int(
            s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(Decision.method == DecisionMethod.CLUSTER)
            )
            or 0
        )
        under = int(
            s.scalar(select(func.count()).select_from(Item).where(Item.incident_id == incident.id))
            or 0
        )
        still_open = int(
            s.scalar(
                select(func.count())
                .select_from(Item)
                .where(Item.status.in_([ItemStatus.QUEUED, ItemStatus.CLAIMED]))
            )
            or 0
        )
    without_human = auto + cluster
    rescan_resolved += import_rescan.get("resolved", 0)
    figures = {
        "arrivals": len(arrivals),
        "distinct_items": distinct,
        "copies_share": share,
        "variants": originals * variants,
        "bursts": bursts,
        "hours": hours,
        "human_decisions": human,
        "confirms": confirms,
        "first_copy_confirms": len(confirmed_groups),
        "resolved_without_human": without_human,
        "auto_matched": auto,
        "resolved_by_rescan": rescan_resolved,
        "decided_with_cluster": cluster,
        "share_without_human": without_human / max(distinct, 1),
        "under_incident": under,
        "partner_hashes": len(partner),
        "partner_rescan_resolved": import_rescan.get("resolved", 0),
        "partner_rescan_badged": import_rescan.get("badged", 0),
        "partner_rescan_s": import_rescan.get("seconds", 0.0),
        "still_open": still_open,
        "rescan_median_s": statistics.median(rescan_s) if rescan_s else 0.0,
        "rescan_p95_s": (
            statistics.quantiles(rescan_s, n=20)[-1] if len(rescan_s) >= 2 else max(rescan_s or [0])
        ),
        "rescan_max_s": max(rescan_s or [0.0]),
        "deltas": len(stage.cut_at) if stage is not None else 0,
        "delta_failures": list(stage.failed) if stage is not None else [],
        "confirms_carried": len(to_delta),
        "to_delta_median_min": statistics.median(to_delta) if to_delta else None,
        "to_delta_max_min": max(to_delta) if to_delta else None,
        "delta_median_s": (
            statistics.median(stage.wall_s) if stage is not None and stage.wall_s else None
        ),
        "delta_max_s": max(stage.wall_s) if stage is not None and stage.wall_s else None,
        "ingest_s": ingest_s,
        "total_s": total_s,
    }
    return figures


def _to_delta(db, stage: DeltaStage, confirmed_at: dict[str, float]) -> list[float]:
    """For each confirm, the simulated minutes from it to the cut of the first delta whose
    recorded entries hold one of its hashes (a confirm no delta carries is left out: the
    report counts those carried)."""
    out = []
    with db.session() as s:
        rows = s.execute(
            select(HashListEntry.decision_uuid, func.min(DeltaEntry.delta_seq))
            .join(DeltaEntry, DeltaEntry.entry_id == HashListEntry.id)
            .where(DeltaEntry.op == "add", HashListEntry.decision_uuid.is_not(None))
            .group_by(HashListEntry.decision_uuid)
        ).all()
    for uuid_, seq in rows:
        if uuid_ in confirmed_at and seq in stage.cut_at:
            out.append((stage.cut_at[seq] - confirmed_at[uuid_]) / 60.0)
    return out


def _partner_share(ctx: AppContext, tmp: Path, hashes: list[str]) -> dict:
    """A partner's hashes imported mid-incident (pytx, list policy "resolve"), and the re-scan
    of the waiting and recent items against them."""
    from app.core.matching.hash_lists import ListPolicy
    from app.storage.list_import import ListSettings

    path = tmp / "partner-share.txt"
    path.write_text("".join(f"pdq {h}\n" for h in hashes))
    admin = ctx.users.add("benchadmin", "benchmark-password", Role.ADMIN)
    rescanner = ctx.rescanner(admin)
    before = rescanner.high_water()
    ctx.hash_lists.import_file(
        path, "partner", actor=admin, fmt="pytx", settings=ListSettings(policy=ListPolicy.RESOLVE)
    )
    report = rescanner.after_import("partner", before)
    return {"resolved": report.resolved, "badged": report.badged, "seconds": report.seconds}


def print_bench_surge(url: str | None = None, items: int = 10_000) -> dict:
    f = bench_surge(url, items)
    delta = (
        f"{f['confirms_carried']} of {f['confirms']} confirms carried by {f['deltas']} deltas; "
        f"confirm -> the delta carrying its hashes median {f['to_delta_median_min']:.1f}, max "
        f"{f['to_delta_max_min']:.1f} simulated minutes; taking and writing a delta median "
        f"{f['delta_median_s'] * 1000:.0f} ms, max {f['delta_max_s'] * 1000:.0f} ms"
        if f["to_delta_median_min"] is not None and f["delta_median_s"] is not None
        else f"no delta carried a confirm ({f['deltas']} deltas)"
    ) + (f"; FAILED: {'; '.join(f['delta_failures'])}" if f["delta_failures"] else "")
    print(
        f"surge drill: {f['arrivals']} arrivals ({f['distinct_items']} distinct items; "
        f"{f['copies_share']:.0%} copies of {f['variants']} variants) in {f['bursts']} bursts over "
        f"{f['hours']:.0f} simulated hours, an incident declared first\n"
        f"  human decisions needed: {f['human_decisions']} ({f['confirms']} confirms: "
        f"{f['first_copy_confirms']} of a variant's first copy, "
        f"{f['confirms'] - f['first_copy_confirms']} of later copies a known match did not "
        f"resolve; the rest rejects of unrelated items)\n"
        f"  resolved without a human: {f['resolved_without_human']} = "
        f"{f['share_without_human']:.1%} of distinct items (auto-matched {f['auto_matched']}, "
        f"of which by re-scan {f['resolved_by_rescan']}; decided with a cluster's confirm "
        f"{f['decided_with_cluster']}); under the incident: {f['under_incident']}; "
        f"left open: {f['still_open']}\n"
        f"  a partner's share of {f['partner_hashes']} hashes imported a third of the way in: "
        f"its re-scan resolved {f['partner_rescan_resolved']} waiting item(s), badged "
        f"{f['partner_rescan_badged']}, in {f['partner_rescan_s'] * 1000:.0f} ms\n"
        f"  confirm -> re-scan finished: median {f['rescan_median_s'] * 1000:.0f} ms, "
        f"p95 {f['rescan_p95_s'] * 1000:.0f} ms, max {f['rescan_max_s'] * 1000:.0f} ms\n"
        f"  time to the next delta: {delta}\n"
        f"  ingest through the recorder {f['ingest_s']:.1f} s, whole drill {f['total_s']:.1f} s"
    )
    return f


def bench_rescan(
    url: str | None = None,
    open_items: int = 100_000,
    copies: int = 40,
    listed: int = 1_000_000,
    seed: int = 7,
) -> dict:
    """``open_items`` open items (bulk-inserted, generated signals), ``copies`` of them near one
    picture, and a hash list of ``listed`` entries already; that picture confirmed; its
    re-scan timed. ``url``: a database (default: a throwaway SQLite file)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="hashdesk-rescan-") as tmp:
        ctx = _context(url or f"sqlite:///{Path(tmp) / 'rescan.sqlite3'}", Path(tmp))
        try:
            return _rescan(ctx, rng, open_items, copies, listed)
        finally:
            ctx.close()


def _rescan(ctx: AppContext, rng: random.Random, open_items: int, copies: int, listed: int) -> dict:
    db = ctx.db
    mod = ctx.users.add("benchmod", "benchmark-password", Role.MODERATOR)
    pdq, ph = _rand(rng, 64), _rand(rng, 16)
    now = utcnow()
    t = time.perf_counter()
    batch = 20_000
    next_id = 1
    for start in range(0, open_items + 1, batch):
        n = min(batch, open_items + 1 - start)
        item_rows, sig_rows = [], []
        for k in range(n):
            idx = start + k
            if idx == 0:  # the picture to be confirmed
                a_pdq, a_ph = pdq, ph
            elif idx <= copies:
                a_pdq, a_ph = _flip(rng, pdq, rng.randrange(1, 12)), _flip(rng, ph, 2)
            else:
                a_pdq, a_ph = _rand(rng, 64), _rand(rng, 16)
            sha, md5 = _rand(rng, 64), _rand(rng, 32)
            item_rows.append(
                {
                    "id": next_id, "sha256": sha, "md5": md5, "kind": "image", "size": 1000,
                    "status": "queued", "priority": 0, "preview_frames": 1,
                    "created_at": now, "updated_at": now,
                }
            )  # fmt: skip
            for alg, value, q in (("sha256", sha, None), ("md5", md5, None), ("pdq", a_pdq, 90),
                                  ("phash", a_ph, None)):  # fmt: skip
                sig_rows.append(
                    {"item_id": next_id, "algorithm": alg, "value": value, "quality": q,
                     "variant": ""}
                )  # fmt: skip
            next_id += 1
        with db.engine.begin() as conn:
            conn.execute(insert(Item.__table__), item_rows)
            conn.execute(insert(SignalRow.__table__), sig_rows)
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('items', 'id'), "
                                 "(SELECT max(id) FROM items))")  # fmt: skip
            conn.exec_driver_sql("ANALYZE")
    fill_hash_list(db, listed)  # the hash list already there: not searched by the re-scan
    fill_s = time.perf_counter() - t
    out = ctx.review.decide(
        DecisionRequest(1, mod.id, Verdict.CONFIRM, "glorification", note=str(uuid.uuid4()))
    )
    rescanner = ctx.rescanner(mod)
    t = time.perf_counter()
    report = rescanner.after_confirm(out.uuid)
    took = time.perf_counter() - t
    with db.session() as s:
        listed = int(s.scalar(select(func.count()).select_from(HashListEntry)) or 0)
    return {
        "dialect": db.dialect,
        "open_items": open_items,
        "fill_s": fill_s,
        "rescan_s": took,
        "searched_hashes": report.searched_hashes,
        "index_size": rescanner.last_index_size,
        "hash_list_rows": listed,
        "items_scanned": report.items_scanned,
        "resolved": report.resolved,
        "copies": copies,
    }


def print_bench_rescan(url: str | None = None, open_items: int = 100_000) -> dict:
    r = bench_rescan(url, open_items)
    print(
        f"re-scan ({r['dialect']}): {r['open_items']:,} open items against one new confirm: "
        f"{r['rescan_s']:.2f} s; searched {r['searched_hashes']} hash(es) (the confirm's; the "
        f"index searched held {r['index_size']}, the hash list {r['hash_list_rows']} rows), "
        f"{r['items_scanned']:,} items' stored signals, resolved {r['resolved']} of "
        f"{r['copies']} copies (filled in {r['fill_s']:.1f} s)"
    )
    return r


def _throwaway_schema_url(url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema on the PostgreSQL server at ``url`` for one bench, and its removal."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_rescan_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text("SELECT set_config('hashdesk.bench_schema', :s, false)"), {"s": schema})
        conn.execute(text("DO $$ BEGIN EXECUTE format('CREATE SCHEMA %I', "
                          "current_setting('hashdesk.bench_schema')); END $$"))  # fmt: skip
    parsed = make_url(url)
    query = dict(parsed.query)
    query["options"] = f"-csearch_path={schema}"
    scoped = parsed.set(query=query).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(
                text("SELECT set_config('hashdesk.bench_schema', :s, false)"), {"s": schema}
            )
            conn.execute(text("DO $$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', "
                              "current_setting('hashdesk.bench_schema')); END $$"))  # fmt: skip
        admin.dispose()

    return scoped, drop


def run_bench_incident(
    pg_url: str | None = None, items: int = 10_000, open_items: int = 100_000
) -> None:
    """`hashdesk bench incident`: the surge drill on SQLite, then the re-scan of
    ``open_items`` open items on SQLite and (``pg_url``: a PostgreSQL server, a throwaway
    schema on it) on PostgreSQL."""
    print_bench_surge(None, items)
    print_bench_rescan(None, open_items)
    if pg_url:
        scoped, drop = _throwaway_schema_url(pg_url)
        try:
            print_bench_rescan(scoped, open_items)
        finally:
            drop()
    else:
        print("re-scan on PostgreSQL: give --incident-pg URL (a throwaway schema is made there)")
