"""`hashdesk self-test`: the installed or frozen app end to end, without a display.

A temporary database and media root; a generated image and a generated video ingested (in
process, and once more on a process pool to prove worker processes start in a frozen build); a
moderator; the review window driven by key presses to confirm one item and reject the other; the
hash list checked. One line per step ("ok   ..." or "FAIL ..."); exit status 0 only if every
step passed. Packagers run it on a freshly built bundle (packaging/build.py does).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.core.errors import Refusal

STEP_TIMEOUT = 30.0  # seconds a GUI step may take before it counts as hung
VIDEO_SECONDS, VIDEO_FPS, VIDEO_SIZE = 3, 10, (320, 240)
USER, PASSWORD = "selftest", "self-test-password-1"


class StepFailed(Refusal):
    pass


def _check(condition: bool, why: str) -> None:
    if not condition:
        raise StepFailed(why)


def _write_video(path: Path) -> None:
    """A short MPEG-4 clip (PyAV's encoder, the FFmpeg the bundle decodes with): a sample
    picture panning, with a white disc moving across it."""
    import numpy as np

    from app.tools.demo import sample_picture
    from app.tools.video_writer import write_mp4

    w, h = VIDEO_SIZE
    base = np.asarray(sample_picture(4242, VIDEO_SIZE))
    yy, xx = np.mgrid[0:h, 0:w]

    def frames():
        for i in range(VIDEO_SECONDS * VIDEO_FPS):
            frame = np.roll(base, i * 4, axis=1).copy()
            frame[(xx - (i * 11) % w) ** 2 + (yy - h // 2) ** 2 <= 30**2] = 255
            yield frame

    written = write_mp4(path, frames(), VIDEO_FPS)
    _check(written == VIDEO_SECONDS * VIDEO_FPS, f"{written} frames encoded")
    _check(path.is_file() and path.stat().st_size > 0, f"no video was written to {path}")


class SelfTest:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = None
        self.db = None
        self.ctx = None
        self.user = None
        self.items: dict[str, int] = {}  # kind -> item id
        self.confirmed: int | None = None
        self.rejected: int | None = None
        self.window = None

    # -- steps -------------------------------------------------------------------------------

    def step_resources(self) -> str:
        from app.core.model.taxonomy import load_taxonomy
        from app.paths import resource

        taxonomy = load_taxonomy(resource("taxonomy.toml"))
        _check(len(taxonomy.categories) > 0, "the taxonomy has no categories")
        icon = resource("icons/hashdesk.png")
        _check(icon.is_file(), f"icon missing at {icon}")
        return f"taxonomy ({len(taxonomy.categories)} categories), icon, from {resource('')}"

    def step_database(self) -> str:
        from app.compose import open_context
        from app.core.settings.config import load_settings

        self.settings = load_settings(
            {
                "HASHDESK_DATABASE_URL": f"sqlite:///{(self.root / 'selftest.sqlite3').as_posix()}",
                "HASHDESK_MEDIA_ROOT": str(self.root / "media"),
            }
        )
        self.ctx = open_context(self.settings, journal_dir=self.root / "journal")
        self.db = self.ctx.db
        current, head = self.db.current_revision(), self.db.head_revision()
        _check(current is not None and current == head, f"schema at {current}, head is {head}")
        return f"{self.db.dialect} in a temporary folder, migrated to {current}"

    def step_media(self) -> str:
        from app.tools.demo import sample_picture

        incoming = self.root / "incoming"
        incoming.mkdir()
        sample_picture(1717).save(incoming / "picture.jpg", "JPEG", quality=90)
        _write_video(incoming / "clip.mp4")
        return f"picture.jpg and a {VIDEO_SECONDS} s clip.mp4 (mp4v)"

    def step_ingest(self) -> str:
        from sqlalchemy import select

        from app.core.ingest.jobs import jobs_from_paths
        from app.storage.models import Item, SignalRow

        incoming = self.root / "incoming"
        # The picture first: it comes up first in the queue and is the one confirmed (PDQ,
        # pHash); the video is rejected.
        jobs = jobs_from_paths(
            [incoming / "picture.jpg", incoming / "clip.mp4"],
            source="self-test",
            reason="self-test",
        )
        summary = self.ctx.ingest(jobs)
        _check(summary.new == 2, f"expected 2 new items, got {summary.new}")
        _check(not summary.unreadable, f"unreadable: {summary.unreadable}")
        with self.db.session() as s:
            for item in s.scalars(select(Item)):
                algos = set(
                    s.scalars(select(SignalRow.algorithm).where(SignalRow.item_id == item.id))
                )
                _check(item.preview_key is not None, f"item {item.id} ({item.kind}) has no preview")
                _check({"md5", "sha256"} <= algos, f"item {item.id} lacks byte hashes: {algos}")
                self.items[item.kind] = item.id
        _check(
            set(self.items) == {"image", "video"}, f"expected an image and a video: {self.items}"
        )
        return "2 items (image, video)"

    def step_process_pool(self) -> str:
        from app.core.ingest.jobs import analyze_jobs, jobs_from_paths
        from app.core.ingest.media import analyze_file

        jobs = jobs_from_paths([self.root / "incoming"]) * 2  # 4 jobs: enough for the pool
        pooled = [a for _job, a in analyze_jobs(jobs, workers=2)]
        for job, analysis in zip(jobs, pooled, strict=True):
            direct = analyze_file(job.path)
            _check(
                (analysis.sha256, analysis.signals) == (direct.sha256, direct.signals),
                f"{job.path.name}: worker process and in-process hashes differ",
            )
        return f"{len(jobs)} files on 2 worker processes, same hashes as in process"

    def step_user(self) -> str:
        from app.core.model.domain import Role

        self.user = self.ctx.users.add(USER, PASSWORD, Role.MODERATOR, "Self-test Moderator")
        _check(self.ctx.users.authenticate(USER, PASSWORD) is not None, "cannot sign in")
        return f"{USER} ({self.user.role.value}), signs in"

    def step_window(self) -> str:
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtTest import QTest

        from app.ui.app import make_qapp
        from app.ui.review_window import ReviewWindow

        _quiet_offscreen_warnings()
        make_qapp()
        self.window = ReviewWindow(self.ctx, self.user)
        controller = self.window.controller
        controller.dwell_seconds = 0.0  # no human is watching: keys may follow at once
        self.window.show()
        self.window.start()
        self.window.activateWindow()
        QTest.qWaitForWindowExposed(self.window, 5000)
        QTest.qWaitForWindowActive(self.window, 5000)
        self._wait(lambda: controller.current is not None, "the first item to appear")
        return f"review window on {QGuiApplication.platformName()}, first item shown"

    def step_confirm(self) -> str:
        from PySide6.QtCore import Qt

        controller = self.window.controller
        item = controller.current.item
        self._key(Qt.Key.Key_1)
        self._wait(lambda: controller.category is not None, "the category from key 1")
        self._key(Qt.Key.Key_Y)
        self._wait(
            lambda: controller.current is not None and controller.current.item.id != item.id,
            "the next item after Y",
        )
        self.confirmed = item.id
        decision = self._wait_decided(item.id, "confirm")
        return f"item {item.id} ({item.kind.value}) by keys 1, Y, category {decision.category}"

    def step_reject(self) -> str:
        from PySide6.QtCore import Qt

        controller = self.window.controller
        item = controller.current.item
        self._key(Qt.Key.Key_N)
        self._wait(lambda: controller.current is None, "the empty queue after N")
        self.rejected = item.id
        self._wait_decided(item.id, "reject")
        self._wait(lambda: controller.pending == 0, "every decision to be written")
        return f"item {item.id} ({item.kind.value}) by key N"

    def step_hash_list(self) -> str:
        from sqlalchemy import select

        from app.storage.models import Item, SignalRow

        review = self.ctx.review
        entries = review.active_hashes_for_item(self.confirmed)
        algos = {e.algorithm for e in entries}
        visual = "pdq" if self.confirmed == self.items["image"] else "pdq_frame"
        needed = {"md5", "sha256", visual}
        _check(
            needed <= algos, f"item {self.confirmed} has {sorted(algos)}, needs {sorted(needed)}"
        )
        with self.db.session() as s:
            item = s.get(Item, self.confirmed)
            signals = {
                (r.algorithm, r.value)
                for r in s.scalars(select(SignalRow).where(SignalRow.item_id == self.confirmed))
            }
            md5, sha256 = item.md5, item.sha256
        listed = {(e.algorithm, e.value) for e in entries}
        _check(listed <= signals, "the hash list holds values that are not the item's hashes")
        _check({("md5", md5), ("sha256", sha256)} <= listed, "the byte hashes are not listed")
        _check(
            all(e.category == "imminent_threat" for e in entries),
            f"categories {sorted({str(e.category) for e in entries})}, expected imminent_threat",
        )
        rejected = review.active_hashes_for_item(self.rejected)
        _check(not rejected, f"rejected item {self.rejected} has {len(rejected)} hash-list entries")
        return (
            f"{len(entries)} entries for item {self.confirmed} ({', '.join(sorted(algos))}), "
            f"none for item {self.rejected}"
        )

    def step_close(self) -> str:
        from PySide6.QtWidgets import QApplication

        self.window.close()
        self.window.deleteLater()
        self.window = None
        QApplication.processEvents()
        return "window closed, claims released, writes finished"

    # -- helpers -----------------------------------------------------------------------------

    def _key(self, key) -> None:
        from PySide6.QtTest import QTest

        QTest.keyClick(self.window, key)

    def _wait(
        self, condition: Callable[[], bool], what: str, timeout: float = STEP_TIMEOUT
    ) -> None:
        from PySide6.QtTest import QTest

        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            QTest.qWait(20)

    def _wait_decided(self, item_id: int, verdict: str):
        review = self.ctx.review

        def found():
            return [d for d in review.decisions_for_item(item_id) if d.verdict == verdict]

        self._wait(
            lambda: bool(found()), f"a {verdict} decision for item {item_id} in the database"
        )
        return found()[-1]

    def cleanup(self) -> None:
        if self.window is not None:
            self.window.close()
            self.window = None
        if getattr(self, "ctx", None) is not None:
            self.ctx.journal.close()  # an open file cannot be removed on Windows
        if self.db is not None:
            self.db.dispose()
            self.db = None


def _quiet_offscreen_warnings() -> None:
    """Drop the offscreen platform's note that it cannot size windows; pass on the rest."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode, _context, message: str) -> None:
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def run_self_test() -> int:
    from app import __version__
    from app.paths import is_frozen

    # Offscreen unless the caller chose a platform: the test must not depend on a display, and
    # keys sent to a window on a real desktop could land elsewhere.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    mode = "frozen" if is_frozen() else "from source"
    print(
        f"hashdesk {__version__} self-test ({mode}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()})",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="hashdesk-selftest-"))
    test = SelfTest(root)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("resources", test.step_resources),
        ("database", test.step_database),
        ("media", test.step_media),
        ("ingest", test.step_ingest),
        ("process pool", test.step_process_pool),
        ("user", test.step_user),
        ("review window", test.step_window),
        ("confirm", test.step_confirm),
        ("reject", test.step_reject),
        ("hash list", test.step_hash_list),
        ("close", test.step_close),
    ]
    failed = False
    started = time.monotonic()
    try:
        for name, step in steps:
            try:
                detail = step()
            except Exception as exc:  # any failure is reported as this step's, then we stop
                print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
                failed = True
                break
            print(f"ok   {name}: {detail}", flush=True)
    finally:
        test.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        print(f"FAIL cleanup: could not remove {root}", flush=True)
        failed = True
    else:
        print("ok   cleanup: temporary folder removed", flush=True)
    elapsed = time.monotonic() - started
    print(f"self-test {'FAILED' if failed else 'passed'} in {elapsed:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_self_test())
