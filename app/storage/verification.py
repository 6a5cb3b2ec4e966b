"""`hashdesk audit verify`: is the record what it says it is?

Three checks on top of the chains' own (app.storage.audit.verify_chains):

* **The hash list the chain implies.** Every local hash-list row must have been added by a
  chained confirm (or overturn to confirm) of the same item, the rows a confirm added must
  match the digest its chain entry carries (app.core.model.chain.hash_rows_digest), and a row is
  retracted exactly when the record says so: an undo of the decision that added it, an
  overturn to reject of its item, or a chained retraction event naming it. Every row that
  differs is named: forged, altered, retracted by hand, un-retracted, deleted. Imported rows
  (other lists) must belong to a list an import on the record brought in.
* **Checkpoints.** `hashdesk audit checkpoint` prints each chain's length and head; kept
  elsewhere, `audit verify --checkpoint FILE` proves that nothing up to it was removed or
  rewritten (a truncated tail leaves a shorter chain, a rewritten one another hash there).
* **Heads this workstation has seen.** Each verify (and each start of the GUI) remembers the
  chains' lengths and heads in the user data directory; a chain that is later shorter, or
  whose entry at a remembered position changed, is reported: deleting the newest entries of
  a chain cannot go unseen by the workstations that saw them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from app.core.matching.hash_lists import LOCAL_LIST
from app.core.matching.signal_types import is_query_only
from app.core.model.chain import hash_rows_digest
from app.core.model.domain import DecisionMethod, Verdict, utcnow
from app.storage.audit import CHAINS, AuditKind, ChainReport, verify_chains
from app.storage.db import Database
from app.storage.models import AuditEvent, Decision, HashListEntry, SignalRow
from app.storage.server_security import enforced


@dataclass(frozen=True)
class RecordProblem:
    what: str

    def __str__(self) -> str:
        return self.what


# -- the hash list the chain implies --------------------------------------------------------


def verify_hash_list(db: Database) -> list[RecordProblem]:
    """Every hash-list row that differs from what the decision and audit chains imply."""
    problems: list[RecordProblem] = []
    with db.session() as s:
        adds: dict[str, tuple[int, str | None]] = {}  # confirming decision -> item, digest
        made_by: dict[str, tuple[str | None, int | None]] = {}  # -> category, user
        undone: set[str] = set()  # decisions an undo or overturn took back
        rejected_after: dict[int, list[int]] = defaultdict(list)  # item -> overturn-to-reject ids
        ids_of: dict[str, int] = {}
        taking_back: dict[str, tuple[str, int]] = {}  # undo/overturn uuid -> (verdict, item)
        for d in s.execute(
            select(
                Decision.id,
                Decision.uuid,
                Decision.item_id,
                Decision.verdict,
                Decision.method,
                Decision.category,
                Decision.supersedes,
                Decision.hashes_digest,
                Decision.user_id,
            ).order_by(Decision.id)
        ):
            ids_of[d.uuid] = d.id
            if d.verdict in (Verdict.UNDO, Verdict.OVERTURN):
                taking_back[d.uuid] = (d.verdict, d.item_id)
                if d.supersedes:
                    undone.add(d.supersedes)
            confirming = (
                d.verdict == Verdict.CONFIRM
                and d.method not in (DecisionMethod.AUTO_MATCH, DecisionMethod.SECOND_REVIEW)
            ) or (d.verdict == Verdict.OVERTURN and d.category)
            if confirming:
                adds[d.uuid] = (d.item_id, d.hashes_digest)
                made_by[d.uuid] = (d.category, d.user_id)
            if d.verdict == Verdict.OVERTURN and not d.category:
                rejected_after[d.item_id].append(d.id)
        event_retracted: set[int] = set()
        imported_lists: set[str] = set()
        disabled_on_record: set[int] = set()  # entries the last disable/enable left disabled
        kinds = [
            AuditKind.RETRACTION.value,
            AuditKind.IMPORT.value,
            AuditKind.ENTRY_DISABLED.value,
            AuditKind.ENTRY_ENABLED.value,
        ]
        for kind, subject, detail in s.execute(
            select(AuditEvent.kind, AuditEvent.subject, AuditEvent.detail)
            .where(AuditEvent.kind.in_(kinds))
            .order_by(AuditEvent.id)
        ):
            facts = json.loads(detail) if detail else {}
            entries = {int(i) for i in facts.get("entries", [])}
            if kind == AuditKind.RETRACTION.value:
                event_retracted |= entries
            elif kind == AuditKind.IMPORT.value:
                imported_lists.add(str(facts.get("list") or subject or ""))
            elif kind == AuditKind.ENTRY_DISABLED.value:
                disabled_on_record |= entries
            elif "flood_guard" not in facts:  # enabled again (not a flood guard cleared)
                disabled_on_record -= entries

        rows_of: dict[str, list[HashListEntry]] = defaultdict(list)
        for r in s.scalars(
            select(HashListEntry).order_by(HashListEntry.id).execution_options(yield_per=5000)
        ):
            if (r.disabled_at is not None) != (r.id in disabled_on_record):
                state = "disabled" if r.disabled_at is not None else "enabled"
                problems.append(
                    RecordProblem(
                        f"hash-list entry #{r.id} ({r.algorithm} {r.value[:16]}…) is {state}, "
                        "but no disable or enable on the record left it so"
                    )
                )
            if r.list_name != LOCAL_LIST:
                if r.list_name not in imported_lists:
                    problems.append(
                        RecordProblem(
                            f"hash-list entry #{r.id} ({r.algorithm} {r.value[:16]}…, list "
                            f"{r.list_name!r}): no import of that list is on the record"
                        )
                    )
                continue
            label = f"hash-list entry #{r.id} ({r.algorithm} {r.value[:16]}…, item {r.item_id})"
            added = adds.get(r.decision_uuid or "")
            if added is None or added[0] != r.item_id:
                problems.append(
                    RecordProblem(f"{label} is forged: no confirm on the record adds it")
                )
                continue
            rows_of[r.decision_uuid or ""].append(r)
            category, user_id = made_by[r.decision_uuid or ""]
            changed = [
                f"{name} {have!r} (the confirm's: {want!r})"
                for name, have, want in (
                    ("category", r.category, category),
                    ("added by", r.added_by, user_id),
                )
                if have != want
            ]
            if changed:
                problems.append(RecordProblem(f"{label} was altered: " + ", ".join(changed)))
            should_retract = (
                r.decision_uuid in undone
                or any(i > ids_of[r.decision_uuid or ""] for i in rejected_after[r.item_id])
                or r.id in event_retracted
            )
            if r.retracted_at is not None:
                by = taking_back.get(r.retraction_decision_uuid or "")
                justified = r.id in event_retracted or (
                    by is not None and by[1] == r.item_id and should_retract
                )
                if not justified:
                    problems.append(
                        RecordProblem(
                            f"{label} was retracted by hand: no undo, overturn or "
                            "retraction on the record takes it back"
                        )
                    )
            elif should_retract:
                problems.append(RecordProblem(f"{label} is active, but the record retracted it"))

        for uuid, (item_id, digest) in adds.items():
            if digest is None:
                continue  # written before decisions carried their digest
            rows = rows_of.get(uuid, [])
            if hash_rows_digest((r.algorithm, r.variant, r.value) for r in rows) == digest:
                continue
            own = [
                (g.algorithm, g.variant or "", g.value)
                for g in s.scalars(select(SignalRow).where(SignalRow.item_id == item_id))
                if not is_query_only(g.variant)
            ]
            where = f"decision #{ids_of[uuid]} ({uuid[:8]}, item {item_id})"
            present = {(r.algorithm, r.variant or "", r.value) for r in rows}
            altered = [r.id for r in rows if (r.algorithm, r.variant or "", r.value) not in own]
            if altered:
                problems.append(
                    RecordProblem(
                        f"{where}: hash-list entries {', '.join(f'#{i}' for i in altered)} "
                        "were altered: their values are not the item's hashes it confirmed"
                    )
                )
            if hash_rows_digest(own) == digest:  # the item's hashes are those it confirmed
                missing = [
                    f"{a}{'/' + v if v else ''} {x[:16]}…"
                    for a, v, x in own
                    if (a, v, x) not in present
                ]
                if missing:
                    problems.append(
                        RecordProblem(
                            f"{where}: {len(missing)} hash-list row(s) it added were deleted: "
                            + ", ".join(missing)
                        )
                    )
            elif not altered:
                problems.append(
                    RecordProblem(
                        f"{where}: its hash-list rows no longer match its chain entry (rows "
                        "deleted or added by hand, or the item's signals changed)"
                    )
                )
    return problems


# -- checkpoints and remembered heads ------------------------------------------------------


def chain_state(db: Database) -> dict[str, dict[str, Any]]:
    """Each chain's length and head, cheaply (a person on a team server may not see every
    decision: the server counts)."""
    out: dict[str, dict[str, Any]] = {}
    with db.session() as s:
        for chain in CHAINS:
            if enforced(db.engine):
                n, head = s.execute(
                    text("SELECT entries, head FROM hd_chain_state(:c)"), {"c": chain}
                ).one()
            else:
                model = Decision if chain == "decisions" else AuditEvent
                n = s.scalar(select(func.count()).select_from(model))
                head = s.scalar(select(model.entry_hash).order_by(model.id.desc()).limit(1))
            out[chain] = {"entries": int(n or 0), "head": head or ""}
    return out


def checkpoint(db: Database, reports: list[ChainReport] | None = None) -> dict[str, Any]:
    """What `hashdesk audit checkpoint` prints: the database, when, and each chain's length
    and head (from a full verification when ``reports`` are given)."""
    chains = (
        {r.chain: {"entries": r.entries, "head": r.head} for r in reports}
        if reports is not None
        else chain_state(db)
    )
    return {
        "database": db.label,
        "taken_at": utcnow().isoformat(timespec="seconds") + "Z",
        "chains": chains,
    }


def compare_with(
    seen: dict[str, Any], reports: list[ChainReport], db: Database, source: str
) -> list[RecordProblem]:
    """Problems of the chains now against an earlier view of them (a checkpoint, or the heads
    this workstation remembers)."""
    problems = []
    wanted = {
        chain: {int(v["entries"]): ""}
        for chain, v in (seen.get("chains") or {}).items()
        if chain in CHAINS and int(v.get("entries", 0)) > 0
    }
    verify_chains(db, wanted)
    now = {r.chain: r for r in reports}
    for chain, positions in wanted.items():
        ((n, found),) = positions.items()
        expected = seen["chains"][chain]["head"]
        have = now[chain].entries if chain in now else 0
        if found == expected:
            continue
        moved = _position_of(db, chain, expected)
        if moved is not None:
            # The entry seen as the head is still there, at another position: entries before
            # it were deleted (or put in), which the chain walk names where it happened.
            change = f"{n - moved} before it were deleted" if moved < n else "some were put in"
            problems.append(
                RecordProblem(
                    f"{chain}: the entry {source} saw at position {n} (head {expected[:16]}) "
                    f"is now at position {moved}: {change}"
                )
            )
        elif have < n:
            problems.append(
                RecordProblem(
                    f"{chain}: {have} entries, but {source} saw {n}: the newest "
                    f"{n - have} were deleted (the chain was truncated)"
                )
            )
        else:
            problems.append(
                RecordProblem(
                    f"{chain}: entry {n} is not the one {source} saw (head {expected[:16]}): "
                    "the chain was rewritten up to there"
                )
            )
    return problems


def _position_of(db: Database, chain: str, entry_hash: str) -> int | None:
    """The 1-based position in ``chain`` of the entry with ``entry_hash``, if it is there."""
    model = Decision if chain == "decisions" else AuditEvent
    with db.session() as s:
        entry_id = s.scalar(select(model.id).where(model.entry_hash == entry_hash).limit(1))
        if entry_id is None:
            return None
        return int(
            s.scalar(select(func.count()).select_from(model).where(model.id <= entry_id)) or 0
        )


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("chains"), dict):
            raise ValueError("no chains in it")
        return data
    except (OSError, ValueError) as exc:
        raise ValueError(f"checkpoint {path} cannot be read: {exc}") from None


class SeenHeads:
    """The chain lengths and heads this workstation has seen, per database (a JSON file in
    the user data directory, readable by its owner only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, database: str) -> dict[str, Any] | None:
        return self._all().get(database)

    def remember(self, database: str, state: dict[str, dict[str, Any]]) -> None:
        """Keep the longer of what was seen before and ``state``, per chain."""
        data = self._all()
        old = (data.get(database) or {}).get("chains", {})
        chains = {
            chain: state[chain]
            if int(state[chain]["entries"]) >= int(old.get(chain, {}).get("entries", 0))
            else old[chain]
            for chain in state
        }
        data[database] = {"chains": chains, "seen_at": datetime.now().isoformat()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.path)
