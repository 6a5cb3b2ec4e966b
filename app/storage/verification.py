"""`hashdesk audit verify`: is the record what it says it is?

Checks on top of the chains' own (app.storage.audit.verify_chains):

* **The hash list the chain implies.** Every local hash-list row must have been added by a
  chained confirm (or overturn to confirm) of the same item, the rows a confirm added must
  match the digest its chain entry carries (app.core.model.chain: v2 covers algorithm,
  variant, value, quality, frame time, category and list; entries written with v1 verify with
  v1), and a row is retracted exactly when the record says so: an undo of the decision that
  added it, an overturn to reject of its item, or a chained retraction event naming it. A
  confirm without a digest is exempt only before the first confirm that carries one. Every row
  that differs is named: forged, altered, retracted by hand, un-retracted, deleted.
* **Imported rows.** Each import's audit event names the ids it added (with the v2 digest of
  their hashes) and the ids it retracted; every imported row must be one an import added,
  match its digest, and be retracted exactly when an import or a retraction says so. Imports
  written before events named their rows are trusted by list, time and person.
* **List rules, second reviews, exposure** (:func:`verify_other_records`): each list's rule
  against the last import or rule change (both carry the whole rule); each second review
  against the decisions it refers to; exposure records that cannot be true.
* **Checkpoints.** `hashdesk audit checkpoint` prints each chain's length and head (even over a
  broken chain, so later edits still show); kept elsewhere, `audit verify --checkpoint FILE`
  proves that nothing up to it was removed or rewritten (a truncated tail leaves a shorter
  chain, a rewritten one another hash there).
* **Heads this workstation has seen.** Each verify (and each start of the GUI) remembers the
  chains' lengths and heads in the user data directory; a chain that is later shorter, or
  whose entry at a remembered position changed, is reported: deleting the newest entries of
  a chain cannot go unseen by the workstations that saw them.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from app.core.matching.hash_lists import LOCAL_LIST, ListPolicy
from app.core.matching.signal_types import is_query_only
from app.core.model.chain import (
    DIGEST_V2,
    GENESIS_HASH,
    HashRowFields,
    chain_hash,
    exposure_fields_of,
    hash_row_line,
    ids_of_ranges,
    rows_digest_matches,
)
from app.core.model.domain import DecisionMethod, Verdict, utcnow
from app.core.model.queues import SecondReviewState
from app.storage.audit import CHAINS, AuditKind, ChainReport, verify_chains
from app.storage.db import Database
from app.storage.deltas import verify_deltas
from app.storage.models import (
    AuditEvent,
    Decision,
    ExposureRow,
    HashList,
    HashListEntry,
    SecondReview,
    SignalRow,
    User,
)
from app.storage.server_security import enforced


@dataclass(frozen=True)
class RecordProblem:
    what: str

    def __str__(self) -> str:
        return self.what


# -- the hash list the chain implies --------------------------------------------------------


def _row_fields(r: HashListEntry, category: str | None = None) -> HashRowFields:
    """A stored row as the digests read it (``category``: in place of the row's own)."""
    return (r.algorithm, r.variant, r.value, r.quality, r.frame_ts, category, r.list_name)


def _key(digest: str, row: HashRowFields) -> str:
    """A row's line in the version of ``digest`` (v1: algorithm, variant and value only)."""
    if digest.startswith(DIGEST_V2):
        return hash_row_line(row)
    return f"{row[0]}|{row[1] or ''}|{row[2].lower()}"


def _ids(ids: list[int], most: int = 50) -> str:
    shown = ", ".join(f"#{i}" for i in sorted(ids)[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


@dataclass
class _Import:
    """An import on the record, as its audit event tells it."""

    event_id: int
    uuid: str
    list_name: str
    actor_id: int | None
    at: datetime
    added_ids: set[int] | None  # None: written before imports named their rows
    added_digest: str | None
    retracted_ids: set[int] | None

    @property
    def label(self) -> str:
        return f"import #{self.event_id} ({self.uuid[:8]}) into {self.list_name!r}"


@dataclass(frozen=True)
class _Dense:
    """A confirmed video's dense frames on the record (app.storage.dense), as their audit
    event tells them."""

    event_id: int
    decision_uuid: str
    actor_id: int | None
    added_ids: set[int]
    digest: str


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
        digests_began = False  # once a confirm carries its digest, every later one must
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
                if d.hashes_digest is not None:
                    digests_began = True
                elif digests_began:
                    problems.append(
                        RecordProblem(
                            f"decision #{d.id} ({d.uuid[:8]}, item {d.item_id}) confirms, but "
                            "its chain entry carries no digest of the rows it added, though "
                            "earlier confirms do"
                        )
                    )
            if d.verdict == Verdict.OVERTURN and not d.category:
                rejected_after[d.item_id].append(d.id)
        event_retracted: set[int] = set()
        imports: list[_Import] = []
        disabled_on_record: set[int] = set()  # entries the last disable/enable left disabled
        kinds = [
            AuditKind.RETRACTION.value,
            AuditKind.IMPORT.value,
            AuditKind.ENTRY_DISABLED.value,
            AuditKind.ENTRY_ENABLED.value,
            AuditKind.DENSE_FRAMES.value,
        ]
        dense_of_row: dict[int, _Dense] = {}  # row id -> the dense-frames event that added it
        dense_events: list[_Dense] = []
        named_began = False  # once an import names its rows, every later one must
        for event_id, uuid, kind, actor_id, subject, detail, at in s.execute(
            select(
                AuditEvent.id,
                AuditEvent.uuid,
                AuditEvent.kind,
                AuditEvent.actor_id,
                AuditEvent.subject,
                AuditEvent.detail,
                AuditEvent.occurred_at,
            )
            .where(AuditEvent.kind.in_(kinds))
            .order_by(AuditEvent.id)
        ):
            facts = json.loads(detail) if detail else {}
            entries = {int(i) for i in facts.get("entries", [])}
            if kind == AuditKind.RETRACTION.value:
                event_retracted |= entries
            elif kind == AuditKind.IMPORT.value:
                named = "added_ids" in facts
                imp = _Import(
                    event_id,
                    uuid,
                    str(facts.get("list") or subject or ""),
                    actor_id,
                    at,
                    ids_of_ranges(str(facts["added_ids"])) if named else None,
                    facts.get("added_digest"),
                    ids_of_ranges(str(facts.get("retracted_ids") or "")) if named else None,
                )
                imports.append(imp)
                if named:
                    named_began = True
                elif named_began:
                    problems.append(
                        RecordProblem(
                            f"{imp.label} does not name the rows it added and retracted, "
                            "though earlier imports do"
                        )
                    )
            elif kind == AuditKind.DENSE_FRAMES.value:
                dense = _Dense(
                    event_id,
                    str(subject or ""),
                    actor_id,
                    ids_of_ranges(str(facts.get("added_ids") or "")),
                    str(facts.get("added_digest") or ""),
                )
                dense_events.append(dense)
                dense_of_row.update(dict.fromkeys(dense.added_ids, dense))
            elif kind == AuditKind.ENTRY_DISABLED.value:
                disabled_on_record |= entries
            elif "flood_guard" not in facts:  # enabled again (not a flood guard cleared)
                disabled_on_record -= entries
        imported_lists = {i.list_name for i in imports}
        import_by_uuid = {i.uuid: i for i in imports}
        added_by_import = {n: i for i in imports for n in i.added_ids or ()}
        retracted_by_import = {n: i for i in imports for n in i.retracted_ids or ()}
        legacy_imports = {(i.list_name, i.at, i.actor_id) for i in imports if i.added_ids is None}

        rows_of: dict[str, list[HashListEntry]] = defaultdict(list)
        rows_of_dense: dict[int, list[HashListEntry]] = defaultdict(list)
        rows_of_import: dict[str, list[HashListEntry]] = defaultdict(list)
        named_altered: set[int] = set()  # rows already named altered, one by one
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
                problems += _check_imported(
                    r,
                    imported_lists,
                    added_by_import,
                    retracted_by_import,
                    import_by_uuid,
                    legacy_imports,
                    event_retracted,
                    rows_of_import,
                )
                continue
            label = f"hash-list entry #{r.id} ({r.algorithm} {r.value[:16]}…, item {r.item_id})"
            added = adds.get(r.decision_uuid or "")
            if added is None or added[0] != r.item_id:
                problems.append(
                    RecordProblem(f"{label} is forged: no confirm on the record adds it")
                )
                continue
            category, user_id = made_by[r.decision_uuid or ""]
            its_dense = dense_of_row.get(r.id)
            if its_dense is not None and its_dense.decision_uuid == r.decision_uuid:
                rows_of_dense[its_dense.event_id].append(r)  # added after the confirm, by its event
                user_id = its_dense.actor_id
            else:
                rows_of[r.decision_uuid or ""].append(r)
            changed = [
                f"{name} {have!r} (the confirm's: {want!r})"
                for name, have, want in (
                    ("category", r.category, category),
                    ("added by", r.added_by, user_id),
                )
                if have != want
            ]
            if changed:
                named_altered.add(r.id)
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
                continue  # written before decisions carried their digest (else named above)
            category = made_by[uuid][0]
            rows = rows_of.get(uuid, [])
            if rows_digest_matches(digest, (_row_fields(r, r.category) for r in rows)):
                continue
            problems += _confirm_rows_differ(
                s,
                f"decision #{ids_of[uuid]} ({uuid[:8]}, item {item_id})",
                item_id,
                digest,
                category,
                rows,
                named_altered,
            )
        for imp in imports:
            if imp.added_ids is not None:
                problems += _import_rows_differ(imp, rows_of_import.get(imp.uuid, []))
        for dense in dense_events:
            rows = rows_of_dense.get(dense.event_id, [])
            if not rows_digest_matches(dense.digest, (_row_fields(r, r.category) for r in rows)):
                problems.append(
                    RecordProblem(
                        f"dense frames of decision {dense.decision_uuid[:8]} (audit event "
                        f"#{dense.event_id}): {len(rows)} of the {len(dense.added_ids)} rows "
                        "it names are there, and they no longer match its digest (rows altered "
                        "or deleted)"
                    )
                )
    return problems


def _confirm_rows_differ(
    s: Any,
    where: str,
    item_id: int,
    digest: str,
    category: str | None,
    rows: list[HashListEntry],
    named_altered: set[int],
) -> list[RecordProblem]:
    """What differs between a confirm's rows and the digest its chain entry carries: the rows
    altered (each named, with the fields that differ from the item's hash) and those deleted.
    A category changed by hand is named by the row check already, so the rows are compared
    here under the confirm's category."""
    problems = []
    own = {
        g.id: (g.algorithm, g.variant or "", g.value, g.quality, g.frame_ts, category, LOCAL_LIST)
        for g in s.scalars(select(SignalRow).where(SignalRow.item_id == item_id))
        if not is_query_only(g.variant)
    }
    own_keys = {_key(digest, t) for t in own.values()}
    present = {_key(digest, _row_fields(r, category)) for r in rows}
    altered = [r for r in rows if _key(digest, _row_fields(r, category)) not in own_keys]
    if altered:
        names = ("algorithm", "variant", "value", "quality", "frame_ts")
        how = []
        for r in altered:
            mine = own.get(r.signal_id or -1)
            have = _row_fields(r, category)
            diff = [
                f"{n} {have[i]!r} (the item's: {mine[i]!r})"
                for i, n in enumerate(names)
                if mine is not None and _field_text(have, i) != _field_text(mine, i)
            ]
            how.append(f"#{r.id}: {', '.join(diff)}" if diff else f"#{r.id}")
        problems.append(
            RecordProblem(
                f"{where}: hash-list entries {', '.join(f'#{r.id}' for r in altered)} "
                "were altered: their values are not the item's hashes it confirmed ("
                + "; ".join(how)
                + ")"
            )
        )
    keys: set[str] = set()
    copies = []  # a second row of the same hash: put in by hand
    for r in rows:
        k = _key(digest, _row_fields(r, category))
        if k in keys:
            copies.append(r.id)
        keys.add(k)
    if copies:
        problems.append(
            RecordProblem(
                f"{where}: hash-list entries {_ids(copies)} were added by hand: copies of "
                "rows it added"
            )
        )
    # An altered row stands where its signal's row was: that row is altered, not deleted.
    present |= {_key(digest, own[r.signal_id]) for r in altered if r.signal_id in own}
    if rows_digest_matches(digest, own.values()):  # the item's hashes are those it confirmed
        missing = [
            f"{t[0]}{'/' + t[1] if t[1] else ''} {t[2][:16]}…"
            for t in own.values()
            if _key(digest, t) not in present
        ]
        if missing:
            problems.append(
                RecordProblem(
                    f"{where}: {len(missing)} hash-list row(s) it added were deleted: "
                    + ", ".join(missing)
                )
            )
    elif not altered and not copies and not (named_altered & {r.id for r in rows}):
        problems.append(
            RecordProblem(
                f"{where}: its hash-list rows no longer match its chain entry (rows "
                "deleted or added by hand, or the item's signals changed)"
            )
        )
    return problems


def _field_text(row: HashRowFields, i: int) -> str:
    return hash_row_line(row).split("|")[i]


def _check_imported(
    r: HashListEntry,
    imported_lists: set[str],
    added_by_import: dict[int, _Import],
    retracted_by_import: dict[int, _Import],
    import_by_uuid: dict[str, _Import],
    legacy_imports: set[tuple[str, datetime, int | None]],
    event_retracted: set[int],
    rows_of_import: dict[str, list[HashListEntry]],
) -> list[RecordProblem]:
    """An imported row against the imports on the record: added by one of them (its id among
    the ids the import's event names), retracted exactly when an import or a retraction on
    the record says so."""
    label = f"hash-list entry #{r.id} ({r.algorithm} {r.value[:16]}…, list {r.list_name!r})"
    if r.list_name not in imported_lists:
        return [RecordProblem(f"{label}: no import of that list is on the record")]
    problems = []
    imp = added_by_import.get(r.id)
    if imp is None or imp.list_name != r.list_name:
        if (r.list_name, r.added_at, r.added_by) not in legacy_imports:
            return [RecordProblem(f"{label} is forged: no import on the record added it")]
    else:
        rows_of_import[imp.uuid].append(r)
        changed = [
            f"{name} {have!r} (the import's: {want!r})"
            for name, have, want in (
                ("added by", r.added_by, imp.actor_id),
                ("added at", r.added_at, imp.at),
            )
            if have != want
        ]
        if changed:
            problems.append(RecordProblem(f"{label} was altered: " + ", ".join(changed)))
    took_back = retracted_by_import.get(r.id)
    should_retract = r.id in event_retracted or (
        took_back is not None and took_back.list_name == r.list_name
    )
    if r.retracted_at is not None:
        by = import_by_uuid.get(r.retraction_decision_uuid or "")
        justified = r.id in event_retracted or (
            by is not None
            and by.list_name == r.list_name
            and (by.retracted_ids is None or r.id in by.retracted_ids)
        )
        if not justified:
            problems.append(
                RecordProblem(
                    f"{label} was retracted by hand: no import or retraction on the record "
                    "takes it back"
                )
            )
    elif should_retract:
        what = "a retraction" if r.id in event_retracted else took_back.label  # type: ignore[union-attr]
        problems.append(RecordProblem(f"{label} is active, but {what} on the record retracted it"))
    return problems


def _import_rows_differ(imp: _Import, rows: list[HashListEntry]) -> list[RecordProblem]:
    """The rows an import added against its event: each deleted one named, and the rows
    whose hashes no longer match the digest it carries."""
    assert imp.added_ids is not None
    missing = sorted(imp.added_ids - {r.id for r in rows})
    if missing:
        return [
            RecordProblem(
                f"{imp.label}: {len(missing)} hash-list row(s) it added were deleted: "
                + _ids(missing)
            )
        ]
    if imp.added_digest is None or rows_digest_matches(
        imp.added_digest, (_row_fields(r) for r in rows)
    ):
        return []
    return [
        RecordProblem(
            f"{imp.label}: its rows no longer match the digest its event carries (a hash, "
            f"quality, frame time or variant altered by hand), among {_ids([r.id for r in rows])}"
        )
    ]


# -- list rules, second reviews, exposure ----------------------------------------------------


def verify_list_rules(db: Database) -> list[RecordProblem]:
    """Each list's rule (policy, PDQ threshold, allow) against the last change of it on the
    record: a rule change event, or an import (both carry the whole rule)."""
    problems: list[RecordProblem] = []
    with db.session() as s:
        on_record: dict[str, dict[str, Any] | None] = {}  # None: a change before rules were whole
        for kind, subject, detail in s.execute(
            select(AuditEvent.kind, AuditEvent.subject, AuditEvent.detail)
            .where(AuditEvent.kind.in_([AuditKind.LIST_CHANGED.value, AuditKind.IMPORT.value]))
            .order_by(AuditEvent.id)
        ):
            facts = json.loads(detail) if detail else {}
            name = str(facts.get("list") or subject or "")
            rule = facts.get("rule") or (
                facts.get("after") if kind == AuditKind.LIST_CHANGED.value else None
            )
            on_record[name] = _rule(rule) if isinstance(rule, dict) else None
        for row in s.scalars(select(HashList).order_by(HashList.id)):
            if row.name not in on_record:
                problems.append(
                    RecordProblem(
                        f"list {row.name!r} is not on the record: no import or rule change made it"
                    )
                )
                continue
            want = on_record[row.name]
            if want is None:
                continue
            have = _rule(
                {"policy": row.policy, "pdq_threshold": row.pdq_threshold, "allow": row.allow}
            )
            changed = [
                f"{k} {have[k]!r} (on the record: {want.get(k)!r})"
                for k in have
                if have[k] != want.get(k)
            ]
            if changed:
                problems.append(
                    RecordProblem(
                        f"list {row.name!r}: its rule was changed by hand: " + ", ".join(changed)
                    )
                )
    return problems


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    policy = rule.get("policy")
    threshold = rule.get("pdq_threshold")
    return {
        "policy": None if policy is None else str(ListPolicy(policy).value),
        "pdq_threshold": None if threshold is None else int(threshold),
        "allow": bool(rule.get("allow")),
    }


def verify_second_reviews(db: Database) -> list[RecordProblem]:
    """Each second review against the decision chain: its first decision is there with the
    same item, person and verdict; a done review's second decision is there (a second
    review's) with the same verdict, and ``agreed`` says whether the two verdicts agree; a
    pending or claimed one has no second verdict; every second-review decision has its row."""
    problems: list[RecordProblem] = []
    with db.session() as s:
        chain = {
            d.uuid: d
            for d in s.execute(
                select(
                    Decision.id,
                    Decision.uuid,
                    Decision.item_id,
                    Decision.user_id,
                    Decision.verdict,
                    Decision.method,
                )
            )
        }
        recorded: set[str] = set()
        for sr in s.scalars(select(SecondReview).order_by(SecondReview.id)):
            label = f"second review #{sr.id} (item {sr.item_id})"
            wrong: list[str] = []
            first = chain.get(sr.first_decision_uuid)
            if first is None:
                wrong.append(f"its first decision {sr.first_decision_uuid[:8]} is not on the chain")
            else:
                wrong += _differs(
                    "first",
                    first,
                    (
                        ("item", sr.item_id, first.item_id),
                        ("person", sr.first_user_id, first.user_id),
                        ("verdict", _v(sr.first_verdict), _v(first.verdict)),
                    ),
                )
            done = sr.status == SecondReviewState.DONE
            if done:
                second = chain.get(sr.second_decision_uuid or "")
                if second is None or second.method != DecisionMethod.SECOND_REVIEW:
                    wrong.append(
                        f"it is done, but its second decision {(sr.second_decision_uuid or '')[:8]}"
                        " is not a second review on the chain"
                    )
                else:
                    recorded.add(second.uuid)
                    wrong += _differs(
                        "second",
                        second,
                        (
                            ("item", sr.item_id, second.item_id),
                            ("person", sr.second_user_id, second.user_id),
                            ("verdict", _v(sr.second_verdict), _v(second.verdict)),
                        ),
                    )
                agreed = _v(sr.second_verdict) == _v(sr.first_verdict)
                if sr.agreed is None or bool(sr.agreed) != agreed:
                    wrong.append(f"agreed is {sr.agreed!r}, but the verdicts say {agreed!r}")
            elif (sr.second_decision_uuid, sr.second_verdict, sr.agreed) != (None, None, None):
                wrong.append(f"it is {_v(sr.status)}, but carries a second verdict")
            if wrong:
                problems.append(RecordProblem(f"{label}: " + "; ".join(wrong)))
        for d in sorted(chain.values(), key=lambda d: d.id):
            if d.method == DecisionMethod.SECOND_REVIEW and d.uuid not in recorded:
                problems.append(
                    RecordProblem(
                        f"decision #{d.id} ({d.uuid[:8]}, item {d.item_id}) is a second review, "
                        "but no done second review records it"
                    )
                )
    return problems


def _v(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _differs(which: str, d: Any, pairs: tuple[tuple[str, Any, Any], ...]) -> list[str]:
    return [
        f"{name} {have!r}, but its {which} decision #{d.id} says {want!r}"
        for name, have, want in pairs
        if have != want
    ]


#: The longest an exposure record can be: a day.
MAX_EXPOSURE_SECONDS = 86_400.0


def verify_exposure(db: Database) -> list[RecordProblem]:
    """Exposure records that cannot be true (seconds outside [0, a day], a person who does not
    exist), and the exposure chain walked whole: a record altered, deleted or written by hand
    is named (records from before the chain, revision 0013, are not on it)."""
    problems: list[RecordProblem] = []
    with db.session() as s:
        users = set(s.scalars(select(User.id)))
        expected_prev, chained = GENESIS_HASH, False
        for e in s.scalars(
            select(ExposureRow).order_by(ExposureRow.id).execution_options(yield_per=5000)
        ):
            label = f"exposure record #{e.id} ({e.uuid[:8]})"
            if e.entry_hash is None:
                if chained:
                    problems.append(RecordProblem(f"{label} is not on the exposure chain: "
                                                  "written by hand"))  # fmt: skip
            else:
                chained = True
                if e.prev_hash != expected_prev:
                    problems.append(RecordProblem(
                        f"{label} does not follow the record before it on the exposure chain: "
                        "a record before it was deleted, reordered or rewritten"))  # fmt: skip
                elif chain_hash(e.prev_hash, exposure_fields_of(e)) != e.entry_hash:
                    problems.append(RecordProblem(
                        f"{label} was altered: its fields do not match its hash"))  # fmt: skip
                expected_prev = e.entry_hash
            wrong = []
            if not (
                e.seconds is not None
                and math.isfinite(e.seconds)
                and 0 <= e.seconds <= MAX_EXPOSURE_SECONDS
            ):
                wrong.append(f"{e.seconds!r} seconds (not within 0 and {MAX_EXPOSURE_SECONDS:g})")
            if e.user_id not in users:
                wrong.append(f"user {e.user_id} does not exist")
            if wrong:
                problems.append(
                    RecordProblem(f"exposure record #{e.id} ({e.uuid[:8]}): " + ", ".join(wrong))
                )
    return problems


def verify_other_records(db: Database) -> list[RecordProblem]:
    """The records beside the hash list that `audit verify` checks against the chains."""
    return (
        verify_list_rules(db)
        + verify_second_reviews(db)
        + verify_exposure(db)
        + [RecordProblem(p) for p in verify_deltas(db)]
    )


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
