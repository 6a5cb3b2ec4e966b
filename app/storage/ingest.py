"""Recording ingest results: content and preview into the store, the item with its signals and
sighting into the database. Exact copies (same SHA-256) add a sighting to the existing item."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.contentstore import ContentStore
from app.core.ingest import IngestJob, IngestSummary, analyze_jobs
from app.core.model import ItemStatus, MediaAnalysis, MediaKind, SightingInfo
from app.storage.db import Database
from app.storage.models import Item, Sighting, SignalRow


class IngestRecorder:
    def __init__(self, db: Database, store: ContentStore) -> None:
        self.db = db
        self.store = store

    def record(self, path: Path, analysis: MediaAnalysis, sighting: SightingInfo) -> str:
        """Store one analysed file. Returns "new" or "copy"."""
        content_key = None
        try:
            content_key = self.store.put_file(path, analysis.sha256)
        except OSError:
            # The file vanished or is unreadable since analysis; the item still records
            # what we know, without content.
            content_key = None
        preview_key = self.store.put_bytes(analysis.preview) if analysis.preview else None
        for _attempt in range(2):
            try:
                return self._record_row(path, analysis, sighting, content_key, preview_key)
            except IntegrityError:
                # Another workstation inserted the same SHA-256 first: record a copy instead.
                continue
        raise RuntimeError(f"could not record {path}")

    def _record_row(
        self,
        path: Path,
        a: MediaAnalysis,
        sighting: SightingInfo,
        content_key: str | None,
        preview_key: str | None,
    ) -> str:
        with self.db.session() as s:
            item = s.scalar(select(Item).where(Item.sha256 == a.sha256))
            outcome = "copy"
            if item is None:
                outcome = "new"
                unreadable = a.kind is MediaKind.UNREADABLE
                item = Item(
                    sha256=a.sha256,
                    md5=a.md5,
                    kind=a.kind.value,
                    mime=a.mime,
                    size=a.size,
                    width=a.width,
                    height=a.height,
                    duration=a.duration,
                    content_key=content_key,
                    preview_key=preview_key,
                    preview_frames=a.preview_frames,
                    status=(ItemStatus.UNREADABLE if unreadable else ItemStatus.QUEUED).value,
                    priority=0,
                    deadline=sighting.deadline,
                    error=a.error,
                )
                s.add(item)
                s.flush()
                for sig in a.signals:
                    s.add(
                        SignalRow(
                            item_id=item.id,
                            algorithm=sig.algorithm.value,
                            value=sig.value,
                            quality=sig.quality,
                            frame_ts=sig.frame_ts,
                            variant=sig.variant,
                        )
                    )
            elif sighting.deadline and (item.deadline is None or sighting.deadline < item.deadline):
                item.deadline = sighting.deadline
            s.add(
                Sighting(
                    item_id=item.id,
                    source=sighting.source,
                    external_id=sighting.external_id,
                    source_url=sighting.source_url,
                    original_name=path.name,
                    reason=sighting.reason,
                    score=sighting.score,
                    flagged_at=sighting.flagged_at,
                    deadline=sighting.deadline,
                )
            )
            return outcome


def ingest_jobs(
    recorder: IngestRecorder,
    jobs: list[IngestJob],
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Analyse and record every job; one bad file never stops the run."""
    summary = IngestSummary()
    for done, (job, analysis) in enumerate(analyze_jobs(jobs, workers=workers), 1):
        if not job.path.exists():
            summary.missing.append(str(job.path))
        elif not analysis.sha256:
            # Not even the bytes could be read: nothing to store, so it is reported instead.
            summary.unreadable.append((str(job.path), analysis.error or "cannot read file"))
        else:
            outcome = recorder.record(job.path, analysis, job.sighting)
            if outcome == "new":
                summary.new += 1
            else:
                summary.copies += 1
            if analysis.error:
                summary.unreadable.append((str(job.path), analysis.error))
        if progress:
            progress(done, len(jobs))
    return summary
