"""A watched drop folder (`hashdesk intake watch DIR`): files put in DIR, each with an optional
sidecar ``NAME.json`` beside ``NAME`` (app.core.ingest.sidecar), are taken exactly once, by
one of any number of watchers, across restarts, and moved aside.

The folder, as the watchers keep it::

    DIR/NAME, DIR/NAME.json       dropped (a sidecar is written first, or with its file)
    DIR/.claimed/<watcher>/       a watcher's claims: <claim id>__NAME (+ .json), and ALIVE
    DIR/taken/<arrival>__NAME     received: recorded and its job enqueued (sidecar beside it)
    DIR/refused/NAME (+ .json, NAME.reason.txt)   not taken, with the reason (a bad sidecar)

* Claim: ``os.rename`` of the file into the watcher's own folder, atomic on one file system:
  of several watchers (processes, machines on a shared folder) exactly one succeeds. The claim
  id is part of the new name and is the arrival's key: a claim received twice (a watcher died
  between recording it and moving it aside) is the same arrival, not a second one.
* A watcher beats its ``ALIVE`` file; the claims of a watcher whose beat is older than
  ``stale_s`` are adopted file by file (each rename has one winner) and finished. A watcher
  claims at most ``batch`` files at a time, so a dead one leaves little behind.
* Only top-level regular files are candidates, once their size and time have not changed for
  ``settle_s`` (a file still being copied is left alone); names starting with "." are skipped;
  a ``.json`` file is a sidecar, never an item: alone for ``stale_s`` it is refused.
* A sidecar that does not parse: the file and its sidecar go to refused/ with the reason
  (NAME.reason.txt) and a one-line message; never ingested without its metadata.
* The receiver failing (the media store full, the database away): a one-line message, the
  claim kept and tried again on the next scan (after ``retry_s``): nothing is lost.

Polling, not file-system events: a shared drop folder on a network share (SMB, NFS), where
several machines write and watch, sends no inotify/FSEvents notice of another machine's writes,
and a scan of one folder a second costs nothing (docs/ARCHITECTURE.md, "Intake and workers").
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.core.errors import Refusal, describe
from app.core.ingest.sidecar import IntakeMeta, SidecarError, parse_sidecar
from app.core.model.domain import utcnow

CLAIMED = ".claimed"
TAKEN = "taken"
REFUSED = "refused"
ALIVE = "ALIVE"
SEP = "__"

#: receive(path, meta, key, original_name) -> the arrival's id. Raises on failure (a Refusal
#: with a clear message for the expected ones: the media store full, no permission).
Receiver = Callable[[Path, IntakeMeta, str, str], int]


@dataclass
class ScanResult:
    taken: list[tuple[str, int]] = field(default_factory=list)  # (name, arrival id)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (name, why: tried again later)


def default_watcher_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class DropFolder:
    def __init__(
        self,
        root: str | Path,
        receive: Receiver,
        *,
        batch: int = 20,
        default_source: str = "drop_folder",
        source_deadlines: Mapping[str, timedelta] | None = None,
        settle_s: float = 2.0,
        stale_s: float = 60.0,
        retry_s: float = 10.0,
        watcher_id: str | None = None,
        say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.receive = receive
        self.default_source = default_source
        self.source_deadlines = source_deadlines
        self.settle_s = settle_s
        self.stale_s = stale_s
        self.retry_s = retry_s
        # Files claimed per scan: a watcher holds few claims at a time, so a dead one leaves
        # little for the others to adopt.
        self.batch = batch
        self.id = watcher_id or default_watcher_id()
        self.say = say
        self.clock = clock
        if not self.root.is_dir():
            raise DropFolderError(f"drop folder {self.root} is not a folder")
        self.mine = self.root / CLAIMED / self.id
        for d in (self.mine, self.root / TAKEN, self.root / REFUSED):
            d.mkdir(parents=True, exist_ok=True)
        # name -> (size, mtime_ns, when it last changed (monotonic), first seen (UTC))
        self._seen: dict[str, tuple[int, int, float, datetime]] = {}
        self._received: dict[str, datetime] = {}  # claim name -> when its file was first seen
        self._retry_at: dict[str, float] = {}  # claim name -> when to try it again
        self._beat_at = -1e18
        self.beat()

    # -- liveness ----------------------------------------------------------------------------

    def beat(self) -> None:
        (self.mine / ALIVE).write_text(str(os.getpid()), encoding="ascii")
        self._beat_at = self.clock()

    def _maybe_beat(self) -> None:
        if self.clock() - self._beat_at >= self.stale_s / 4:
            try:
                self.beat()
            except OSError as exc:
                self.say(f"drop folder: cannot mark this watcher alive: {describe(exc)}")

    def adopt_stale(self) -> list[str]:
        """Claims of watchers without a beat for ``stale_s`` moved into this watcher's folder,
        file by file (each ``os.rename`` has one winner, so two adopters split them and a
        half-adopted folder is finished by the next). The adopted watchers' ids."""
        adopted: list[str] = []
        claimed = self.root / CLAIMED
        now = time.time()
        for d in sorted(claimed.iterdir()):
            if d.name == self.id or not d.is_dir():
                continue
            try:
                beat = (d / ALIVE).stat().st_mtime
            except FileNotFoundError:
                try:
                    beat = d.stat().st_mtime
                except FileNotFoundError:
                    continue
            if now - beat < self.stale_s:
                continue
            moved = 0
            for f in sorted(d.iterdir()):
                if f.name == ALIVE:
                    continue
                try:
                    os.rename(f, self.mine / f.name)
                    moved += 1
                except OSError:
                    continue  # another adopter took it
            with contextlib.suppress(OSError):
                (d / ALIVE).unlink()
            with contextlib.suppress(OSError):
                d.rmdir()
            if moved:
                adopted.append(d.name)
        return adopted

    # -- one scan ----------------------------------------------------------------------------

    def scan_once(self) -> ScanResult:
        result = ScanResult()
        self._maybe_beat()
        self.adopt_stale()
        self._claim_ready(result)
        self._process_claims(result)
        return result

    def _claim_ready(self, result: ScanResult) -> None:
        now = self.clock()
        present: set[str] = set()
        with os.scandir(self.root) as it:
            entries = [e for e in it if not e.name.startswith(".")]
        names = {e.name for e in entries}
        room = self.batch - sum(1 for f in self.mine.iterdir() if SEP in f.name)
        for e in entries:
            try:
                if not e.is_file(follow_symlinks=False):
                    continue
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            present.add(e.name)
            seen = self._seen.get(e.name)
            if seen is None or seen[:2] != (st.st_size, st.st_mtime_ns):
                first = seen[3] if seen is not None else utcnow()
                self._seen[e.name] = (st.st_size, st.st_mtime_ns, now, first)
                continue
            if now - seen[2] < self.settle_s:
                continue
            if e.name.lower().endswith(".json"):
                media = e.name[: -len(".json")]
                if media in names or now - seen[2] < self.stale_s:
                    continue  # claimed with its file; or its file is still to come
                self._refuse_lone_sidecar(e.name, result)
                continue
            if room <= 0:
                continue  # the next scan claims more
            claim = f"{uuid.uuid4().hex}{SEP}{e.name}"
            try:
                os.rename(self.root / e.name, self.mine / claim)
            except FileNotFoundError:
                continue  # another watcher took it
            except OSError as exc:
                result.kept.append((e.name, f"cannot claim it: {describe(exc)}"))
                continue
            sidecar = self.root / f"{e.name}.json"
            with contextlib.suppress(FileNotFoundError):
                os.rename(sidecar, self.mine / f"{claim}.json")
            room -= 1
            # the time the file was first seen: when it was received
            self._received[claim] = seen[3]
            self._seen.pop(e.name, None)
            self._seen.pop(f"{e.name}.json", None)
        for gone in set(self._seen) - present:
            self._seen.pop(gone, None)

    def _process_claims(self, result: ScanResult) -> None:
        now = self.clock()
        for f in sorted(self.mine.iterdir()):
            if f.name == ALIVE or f.name.endswith(".json") or SEP not in f.name:
                continue
            if self._retry_at.get(f.name, 0) > now:
                continue
            self._maybe_beat()
            claim_id, _, name = f.name.partition(SEP)
            sidecar = self.mine / f"{f.name}.json"
            received = self._received.get(f.name) or _claim_time(f)
            try:
                meta = self._meta(sidecar, received)
            except SidecarError as exc:
                self._refuse(f, sidecar, name, f"sidecar {name}.json: {exc}", result)
                continue
            try:
                arrival = self.receive(f, meta, f"drop:{claim_id}", name)
            except Refusal as exc:
                self._keep(f, name, describe(exc), result)
                continue
            except Exception as exc:  # the database away, say: kept, tried again
                self._keep(f, name, f"not received ({describe(exc)})", result)
                continue
            self._set_aside(f, sidecar, self.root / TAKEN, f"{arrival}{SEP}{name}")
            self._received.pop(f.name, None)
            self._retry_at.pop(f.name, None)
            result.taken.append((name, arrival))

    def _meta(self, sidecar: Path, received: datetime) -> IntakeMeta:
        try:
            data = sidecar.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            raise SidecarError(f"cannot be read ({describe(exc)})") from None
        return parse_sidecar(
            data if data is not None else {},
            default_source=self.default_source,
            received_at=received,
            source_deadlines=self.source_deadlines,
        )

    def _keep(self, f: Path, name: str, why: str, result: ScanResult) -> None:
        self._retry_at[f.name] = self.clock() + self.retry_s
        result.kept.append((name, why))
        self.say(f"drop folder: {name} kept, tried again in {self.retry_s:g} s: {why}")

    def _refuse(self, f: Path, sidecar: Path, name: str, why: str, result: ScanResult) -> None:
        target = _free_name(self.root / REFUSED, name)
        self._set_aside(f, sidecar, self.root / REFUSED, target.name)
        try:
            (self.root / REFUSED / f"{target.name}.reason.txt").write_text(
                why + "\n", encoding="utf-8"
            )
        except OSError as exc:
            self.say(f"drop folder: cannot write the reason beside {target}: {describe(exc)}")
        result.refused.append((name, why))
        self.say(f"drop folder: {name} refused, kept in {self.root / REFUSED}: {why}")

    def _refuse_lone_sidecar(self, name: str, result: ScanResult) -> None:
        why = f"a sidecar without its file ({name[: -len('.json')]} never arrived)"
        target = _free_name(self.root / REFUSED, name)
        try:
            os.rename(self.root / name, target)
        except OSError:
            return  # another watcher moved it
        with contextlib.suppress(OSError):
            target.with_name(target.name + ".reason.txt").write_text(why + "\n", encoding="utf-8")
        result.refused.append((name, why))
        self.say(f"drop folder: {name} refused, kept in {self.root / REFUSED}: {why}")

    def _set_aside(self, f: Path, sidecar: Path, folder: Path, name: str) -> None:
        target = _free_name(folder, name)
        os.replace(f, target)
        if sidecar.exists():
            os.replace(sidecar, target.with_name(target.name + ".json"))

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self,
        stop: Callable[[], bool],
        poll_s: float = 1.0,
        between: Callable[[], object] | None = None,
    ) -> None:
        """Scan every ``poll_s`` until ``stop()``; say what was taken and refused.
        ``between``: run after each scan (the intake's retry of arrivals whose job did not
        finish, when the jobs run in this process)."""
        while not stop():
            try:
                res = self.scan_once()
            except OSError as exc:
                why = "the disk is full" if exc.errno == errno.ENOSPC else describe(exc)
                self.say(f"drop folder: scan failed ({why}); trying again")
                res = ScanResult()
            for name, arrival in res.taken:
                self.say(f"taken: {name} (arrival {arrival})")
            if between is not None:
                try:
                    between()
                except Exception as exc:  # a retry that failed now is tried at the next scan
                    self.say(f"drop folder: retry of waiting arrivals failed ({describe(exc)})")
            time.sleep(poll_s)


class DropFolderError(Refusal, ValueError):
    pass


def _claim_time(f: Path) -> datetime:
    """When a claim was made (an adopted claim's first sighting is not known here): the claimed
    file's status-change time (set by the rename)."""
    try:
        return datetime.fromtimestamp(f.stat().st_ctime, UTC).replace(tzinfo=None)
    except OSError:
        return utcnow()


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    n = 1
    while target.exists() or target.with_name(target.name + ".json").exists():
        target = folder / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target
