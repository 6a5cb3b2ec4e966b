"""Dense references: a confirmed video's frames, hashed densely after the confirm, added to the
hash list under that confirm.

A confirm puts the video's sampled frames (about one a second, as ingest hashed them) in the
local list. A clip cut between two samples, or played faster or slower, meets few of those, so
after the confirm the video is decoded again, every frame hashed
(:func:`app.core.video.dense.dense_frame_signals`), and the frames that moved are added to the
list as more ``pdq_frame`` rows of the same item under the same decision: an undo or an
overturn retracts them with the confirm's own rows; the sampled rows stay. The item's own
signals (what it is searched with as a query) are not touched: a query stays sparse.

One call adds them, with an audit event (``dense_frames``, subject the decision's UUID) naming
the rows it added and their digest, as an import's does, so ``audit verify`` checks them
(app.storage.verification). That event makes the write idempotent: a second call for the same
confirm adds nothing. On a team server the server does it (``hd_api_add_dense_frames``,
api_dense.sql): it checks the caller may review, that the decision is the item's standing
confirm of a video, takes the ids, times and who from itself. A confirm that is undone or
overturned before its dense frames land gets none.

Where it runs (:class:`DenseQueue`): the review window's background writer lands the confirm
and, where it starts the re-scan on the new hashes, hands the decision to the queue's own
thread, which decodes and hashes the video (minutes for a long one) without holding up the
writer (later decisions keep landing) or the GUI thread; then it writes the rows, and re-scans
the open and recent items against the new rows only, so a waiting clip of that video is
resolved or badged. A workstation that stopped before its dense frames landed (closed,
crashed) finds the confirms still without them the next time the queue starts
(:func:`pending_dense`), as ``hashdesk dense run`` does from the command line. Not the ingest
workers of the job queue (HASHDESK_INGEST_MODE=queue): their account may only ingest, and
these rows go in under a confirm, which takes the right to review; the confirming workstation
has the file (the content store) and the person's sign-in. Other
workstations' in-memory indexes take the rows in as any new hash-list rows
(app.storage.hash_list_watcher: a new row's ``change_seq``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session

from app.core.errors import Refusal, describe
from app.core.matching.hash_lists import LOCAL_LIST
from app.core.matching.signal_types import TRIMMED
from app.core.model.chain import hash_rows_digest_v2, id_ranges, ids_of_ranges
from app.core.model.domain import Algorithm, MediaKind, Signal, Verdict, utcnow
from app.core.model.roles import Permission, require
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.models import AuditEvent, Decision, HashListEntry, Item, User
from app.storage.record import current_decision, outcome_of_row
from app.storage.server_api import call_checked, on_server

log = logging.getLogger(__name__)

DENSE_VARIANTS = ("", TRIMMED)  # the whole frame, and with its bars trimmed
MAX_DENSE_FRAMES = 200_000  # rows one call adds at most (a 2-hour video at 30 fps, all moving)

_SERVER_ADD = text("SELECT * FROM hd_api_add_dense_frames(:uuid, CAST(:frames AS jsonb))")


class DenseRefused(Refusal, ValueError):
    """Dense frames that cannot be added: the decision is not the standing confirm of a video,
    or a frame is not a video frame's PDQ."""


@dataclass(frozen=True)
class DenseTarget:
    """A confirm of a video whose dense frames are not in the list yet."""

    decision_uuid: str
    item_id: int
    content_key: str | None


@dataclass(frozen=True)
class DenseResult:
    """What adding a confirm's dense frames did: the rows added (their ids), or nothing
    because they were added before (``duplicate``)."""

    decision_uuid: str
    added: int
    entry_ids: tuple[int, ...] = ()
    duplicate: bool = False


def _event_exists(s: Session, decision_uuid: str):
    return exists().where(
        AuditEvent.kind == AuditKind.DENSE_FRAMES.value, AuditEvent.subject == decision_uuid
    )


def pending_dense(db: Database, limit: int = 100) -> list[DenseTarget]:
    """Confirms of videos whose rows are in the local list (not undone or overturned) and that
    have no dense frames yet (no ``dense_frames`` event), oldest first."""
    with db.session() as s:
        active_rows = exists().where(
            HashListEntry.decision_uuid == Decision.uuid,
            HashListEntry.algorithm == Algorithm.PDQ_FRAME.value,
            HashListEntry.list_name == LOCAL_LIST,
            HashListEntry.retracted_at.is_(None),
        )
        rows = s.execute(
            select(Decision.uuid, Decision.item_id, Item.content_key)
            .join(Item, Item.id == Decision.item_id)
            .where(
                Item.kind == MediaKind.VIDEO.value,
                active_rows,
                ~_event_exists(s, Decision.uuid),  # type: ignore[arg-type]
            )
            .order_by(Decision.id)
            .limit(limit)
        ).all()
    return [DenseTarget(uuid, item_id, key) for uuid, item_id, key in rows]


def _check_frames(signals: Sequence[Signal]) -> list[Signal]:
    if len(signals) > MAX_DENSE_FRAMES:
        raise DenseRefused(f"{len(signals)} dense frames: at most {MAX_DENSE_FRAMES} at once")
    for g in signals:
        value = g.value.lower()
        if (
            g.algorithm != Algorithm.PDQ_FRAME
            or g.variant not in DENSE_VARIANTS
            or len(value) != 64
            or any(c not in "0123456789abcdef" for c in value)
            or g.frame_ts is None
            or not 0 <= g.frame_ts < 1e7
            or (g.quality is not None and not 0 <= g.quality <= 100)
        ):
            raise DenseRefused(f"not a video frame's PDQ: {g!r}"[:200])
    return list(signals)


def _frames_json(signals: Sequence[Signal]) -> str:
    return json.dumps(
        [
            {"value": g.value.lower(), "quality": g.quality, "frame_ts": g.frame_ts,
             "variant": g.variant}
            for g in signals
        ]
    )  # fmt: skip


def add_dense_frames(
    db: Database, decision_uuid: str, signals: Sequence[Signal], user_id: int
) -> DenseResult:
    """Add ``signals`` (dense ``pdq_frame`` signals of the confirmed video) to the local list
    under the confirm ``decision_uuid``, in ``user_id``'s name, with the ``dense_frames``
    audit event. Frames equal to a row the confirm added (same variant, value and time: the
    sampled frames) are not added again. Idempotent: once the event exists, nothing is added
    (``duplicate``). Raises PermissionDenied for a user who may not review, DenseRefused for
    a decision that is not the standing confirm of a video or a signal that is not a frame's
    PDQ."""
    frames = _check_frames(signals)
    with db.session() as s:
        if on_server(s):
            params = {"uuid": decision_uuid, "frames": _frames_json(frames)}
            row = call_checked(s, _SERVER_ADD, params, DenseRefused)
            added, duplicate, ranges = row[0]
            return DenseResult(
                decision_uuid, added, tuple(sorted(ids_of_ranges(ranges or ""))), duplicate
            )
        return _add_here(s, decision_uuid, frames, user_id)


def _add_here(s: Session, decision_uuid: str, frames: list[Signal], user_id: int) -> DenseResult:
    """The SQLite path of :func:`add_dense_frames` (the server's is api_dense.sql)."""
    user = s.get(User, user_id)
    if user is None or not user.active:
        raise DenseRefused(f"user {user_id} is not an active account")
    require(user.role, Permission.REVIEW, user.username)
    d = s.scalar(select(Decision).where(Decision.uuid == decision_uuid))
    if d is None:
        raise DenseRefused(f"no decision {decision_uuid}")
    item = s.get(Item, d.item_id)
    if s.scalar(select(_event_exists(s, decision_uuid))):
        return DenseResult(decision_uuid, 0, duplicate=True)
    standing = current_decision(s, d.item_id)
    if (
        item is None
        or item.kind != MediaKind.VIDEO.value
        or standing is None
        or standing.uuid != decision_uuid
        or outcome_of_row(standing) != Verdict.CONFIRM
    ):
        raise DenseRefused(
            f"decision {decision_uuid[:8]} is not the standing confirm of a video: "
            "its dense frames are not added"
        )
    own = s.execute(
        select(
            HashListEntry.variant,
            HashListEntry.value,
            HashListEntry.frame_ts,
            HashListEntry.category,
            HashListEntry.labels,
        ).where(
            HashListEntry.decision_uuid == decision_uuid,
            HashListEntry.algorithm == Algorithm.PDQ_FRAME.value,
        )
    ).all()
    if not own:
        raise DenseRefused(f"decision {decision_uuid[:8]} put no frames in the list")
    category, labels = own[0].category, own[0].labels
    seen = {(r.variant or "", r.value, round(r.frame_ts or 0.0, 3)) for r in own}
    at = utcnow()
    rows = []
    for g in frames:
        key = (g.variant, g.value.lower(), round(g.frame_ts or 0.0, 3))
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            HashListEntry(
                algorithm=Algorithm.PDQ_FRAME.value,
                value=g.value.lower(),
                quality=g.quality,
                frame_ts=g.frame_ts,
                variant=g.variant,
                category=category,
                list_name=LOCAL_LIST,
                decision_uuid=decision_uuid,
                item_id=d.item_id,
                signal_id=None,
                added_by=user.id,
                added_at=at,
                labels=labels,
            )
        )
    s.add_all(rows)
    s.flush()
    ids = tuple(r.id for r in rows)
    digest = hash_rows_digest_v2(
        (r.algorithm, r.variant, r.value, r.quality, r.frame_ts, r.category, r.list_name)
        for r in rows
    )
    append_event(
        s,
        AuditKind.DENSE_FRAMES,
        actor_id=user.id,
        actor_name=user.username,
        subject=decision_uuid,
        detail={
            "item": d.item_id,
            "added": len(ids),
            "added_ids": id_ranges(ids),
            "added_digest": digest,
        },
        occurred_at=at,
    )
    return DenseResult(decision_uuid, len(ids), ids)


Hasher = Callable[..., list[Signal]]


class DenseRunner:
    """Computes and adds the dense frames of confirmed videos, one at a time, in ``user_id``'s
    name; after each, ``after`` (the re-scan on the new rows: entry ids, trigger)."""

    def __init__(
        self,
        db: Database,
        store_path: Callable[[str], Path],
        user_id: int,
        *,
        after: Callable[[Sequence[int], str], object] | None = None,
        hasher: Hasher | None = None,
    ) -> None:
        from app.core.video.dense import dense_frame_signals

        self.db = db
        self.store_path = store_path
        self.user_id = user_id
        self.after = after
        self.hasher: Hasher = hasher or dense_frame_signals

    def targets(self, decision_uuid: str) -> list[DenseTarget]:
        """The confirm and the confirms of its cluster's members decided with it, those of
        videos whose dense frames are not in yet."""
        with self.db.session() as s:
            rows = s.execute(
                select(Decision.uuid, Decision.item_id, Item.content_key)
                .join(Item, Item.id == Decision.item_id)
                .where(
                    (Decision.uuid == decision_uuid) | (Decision.parent_uuid == decision_uuid),
                    Item.kind == MediaKind.VIDEO.value,
                    ~_event_exists(s, Decision.uuid),  # type: ignore[arg-type]
                )
                .order_by(Decision.id)
            ).all()
        return [DenseTarget(uuid, item_id, key) for uuid, item_id, key in rows]

    def run(self, target: DenseTarget, stop: threading.Event | None = None) -> DenseResult:
        """Hash the video of ``target`` densely and add its frames (none when its file is
        gone or unreadable: the event then records that none were added, so it is not tried
        again and again)."""
        signals: list[Signal] = []
        if target.content_key:
            path = self.store_path(target.content_key)
            if path.exists():
                signals = self.hasher(path, stop=stop)
            else:
                log.warning("dense frames of item %d: its file is gone", target.item_id)
        if stop is not None and stop.is_set():
            return DenseResult(target.decision_uuid, 0)  # cut short: tried again next start
        if len(signals) > MAX_DENSE_FRAMES:  # a very long video: evenly thinned to the cap
            signals = signals[:: -(-len(signals) // MAX_DENSE_FRAMES)]
        result = add_dense_frames(self.db, target.decision_uuid, signals, self.user_id)
        if result.entry_ids and self.after is not None:
            try:
                self.after(result.entry_ids, f"dense:{target.decision_uuid}")
            except Exception as exc:  # the rows have landed; the re-scan is a follow-up
                log.warning("re-scan after dense frames failed: %s", describe(exc))
        return result

    def run_pending(self, limit: int = 100) -> list[DenseResult]:
        """Every confirm of a video still without its dense frames (``hashdesk dense run``)."""
        out = []
        for target in pending_dense(self.db, limit):
            try:
                out.append(self.run(target))
            except Refusal as exc:
                log.warning("dense frames of %s refused: %s", target.decision_uuid[:8], exc)
        return out


class DenseQueue:
    """A thread that runs a :class:`DenseRunner` on the confirms handed to it
    (:meth:`submit`, from the background writer that landed them) and, when it starts, on the
    confirms of videos still without dense frames. Never the GUI thread; one video at a time;
    ``on_done`` is called (on this thread) after each."""

    def __init__(
        self,
        runner: DenseRunner,
        on_done: Callable[[DenseResult], object] | None = None,
        recover: bool = True,
    ) -> None:
        self.runner = runner
        self.on_done = on_done
        self.recover = recover
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.results: list[DenseResult] = []

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dense-frames", daemon=True)
            self._thread.start()

    def submit(self, decision_uuid: str) -> None:
        """Hand a landed confirm over (any thread); a confirm not of a video is passed over."""
        self._queue.put(decision_uuid)
        self.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop (a video being hashed is dropped: it is picked up again at the next start)."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self.recover:
            try:
                for target in pending_dense(self.runner.db):
                    self._queue.put(target.decision_uuid)
            except Exception as exc:
                log.warning("looking for confirms without dense frames failed: %s", describe(exc))
        while not self._stop.is_set():
            uuid = self._queue.get()
            if uuid is None or self._stop.is_set():
                break
            try:
                targets = self.runner.targets(uuid)
            except Exception as exc:  # the confirm stands; its frames are tried at next start
                log.warning("dense frames of %s failed: %s", uuid[:8], describe(exc))
                continue
            for target in targets:
                if self._stop.is_set():
                    break
                self._run_one(target)

    def _run_one(self, target: DenseTarget) -> None:
        uuid = target.decision_uuid
        try:
            result = self.runner.run(target, self._stop)
        except Exception as exc:  # the confirm stands; its frames are tried at next start
            log.warning("dense frames of %s failed: %s", uuid[:8], describe(exc))
            return
        self.results.append(result)
        if self.on_done is not None:
            try:
                self.on_done(result)
            except Exception:
                log.exception("after dense frames of %s", uuid[:8])
