"""The ingest pipeline's Qt- and SQL-free half: which files, with what sighting facts, analysed
on every core. The caller records each result (see app.storage.ingest_recorder)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from app.core.errors import Refusal
from app.core.ingest.media import analyze_file
from app.core.model.domain import MediaAnalysis, SightingInfo, utcnow


class ManifestError(Refusal, ValueError):
    pass


@dataclass(frozen=True)
class IngestJob:
    path: Path
    sighting: SightingInfo


@dataclass
class IngestSummary:
    new: int = 0  # new items (an unreadable file that became an item included)
    copies: int = 0  # exact copies of known items: a sighting added
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    missing: list[str] = field(default_factory=list)
    # Not files Hashdesk can read at all (a named pipe, a device, a broken link, a name too
    # long): reported with the reason, never an item, never waited on.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    manifest_problems: list[str] = field(default_factory=list)
    auto_matched: int = 0
    clustered: int = 0  # new items that joined a near-duplicate's cluster in the queue
    clusters: int = 0  # the distinct clusters they joined
    # Each file counted once, in exactly one of: "new", "copy", "unreadable", "missing",
    # "skipped".
    files: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.files.values())

    def count(self, bucket: str) -> None:
        self.files[bucket] = self.files.get(bucket, 0) + 1


def parse_time(value: str, what: str) -> datetime:
    """ISO 8601; an offset is converted to UTC, a naive time is taken as UTC."""
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ManifestError(f"{what} {value!r} is not an ISO 8601 time") from None
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def walk_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files under the given paths (folders recursively, sorted, hidden files skipped)."""
    for p in paths:
        p = Path(p)
        try:
            folder = p.is_dir()
        except OSError:  # a name too long, say: the analysis names the reason
            folder = False
        if folder:
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield p


def presence(path: Path) -> str | None:
    """None when ``path`` names something to analyse; else why not: "missing" (nothing
    there), or a reason it is skipped (a broken link, a name the system refuses)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if path.is_symlink() and not os.path.exists(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"broken link (points to {target}, which does not exist)"
    return None


def jobs_from_paths(
    paths: Iterable[str | Path], source: str = "manual", reason: str | None = None
) -> list[IngestJob]:
    now = utcnow()
    base = SightingInfo(
        source=source, external_id=None, source_url=None, reason=reason, score=None, flagged_at=now
    )
    return [IngestJob(path=f, sighting=base) for f in walk_files(paths)]


_MANIFEST_FIELDS = {
    "path",
    "source",
    "external_id",
    "url",
    "source_url",
    "reason",
    "score",
    "flagged_at",
    "deadline",
}


def sighting_from_row(
    row: Mapping[str, object],
    default_source: str,
    default_reason: str | None,
    now: datetime,
    time_field: str = "flagged_at",
) -> tuple[SightingInfo, list[str]]:
    """One manifest row's (or sidecar's) sighting facts, and the problems found: a bad field is
    left empty (its default) and named. ``time_field``: the key of the time the report was
    received (``flagged_at`` in a manifest; a sidecar says ``received_at``)."""
    problems: list[str] = []
    score = None
    if str(row.get("score") or "").strip():
        try:
            score = float(row["score"])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            problems.append(f"score {row['score']!r} is not a number")
    times: dict[str, datetime | None] = {time_field: None, "deadline": None}
    for key in times:
        if str(row.get(key) or "").strip():
            try:
                times[key] = parse_time(str(row[key]), key)
            except ManifestError as exc:
                problems.append(str(exc))
    url = row.get("url") or row.get("source_url")
    ext = row.get("external_id")
    sighting = SightingInfo(
        source=str(row.get("source") or default_source).strip(),
        external_id=(str(ext).strip() or None) if ext not in (None, "") else None,
        source_url=str(url).strip() if url else None,
        reason=str(row.get("reason") or "").strip() or default_reason,
        score=score,
        flagged_at=times[time_field] or now,
        deadline=times["deadline"],
    )
    return sighting, problems


def read_manifest(
    manifest: str | Path, default_source: str = "manifest", default_reason: str | None = None
) -> tuple[list[IngestJob], list[str]]:
    """Jobs from a CSV (with a header row) or JSON-lines manifest, and the problems found.

    A row with a bad field still ingests its file with that field left empty; the problem is
    reported with its line number. A row without a path is reported and skipped.
    """
    manifest = Path(manifest)
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ManifestError(f"manifest {manifest} is not UTF-8 text") from None
    rows: list[tuple[int, dict]] = []
    problems: list[str] = []
    stripped = text.lstrip()
    if manifest.suffix.lower() in {".jsonl", ".ndjson", ".json"} or stripped.startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{manifest.name} line {n}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{manifest.name} line {n}: expected a JSON object")
                continue
            rows.append((n, obj))
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ManifestError(
                f"manifest {manifest} needs a header row with a 'path' column "
                f"(found {reader.fieldnames})"
            )
        unknown = set(reader.fieldnames) - _MANIFEST_FIELDS
        if unknown:
            problems.append(f"{manifest.name}: unknown columns ignored: {sorted(unknown)}")
        rows.extend((n, row) for n, row in enumerate(reader, 2))

    jobs: list[IngestJob] = []
    now = utcnow()
    for n, row in rows:
        where = f"{manifest.name} line {n}"
        raw_path = str(row.get("path") or "").strip()
        if not raw_path:
            problems.append(f"{where}: no path")
            continue
        path = Path(raw_path)
        if not path.is_absolute():
            path = manifest.parent / path
        sighting, bad = sighting_from_row(row, default_source, default_reason, now)
        problems += [f"{where}: {b}" for b in bad]
        for sub in walk_files([path]):
            jobs.append(IngestJob(path=sub, sighting=replace(sighting)))
    return jobs, problems


def _one_segment_per_video() -> None:
    """Pool workers decode each video in one pass: the pool already keeps every core busy with
    whole files, and a second decoding thread per worker would only contend with them."""
    from app.core.video import decode

    decode.SEGMENTS = 1


def analyze_jobs(
    jobs: list[IngestJob],
    workers: int | None = None,
    on_result: Callable[[IngestJob, MediaAnalysis], None] | None = None,
) -> Iterator[tuple[IngestJob, MediaAnalysis]]:
    """Analyse every job's file, on a process pool when there is more than a handful.

    Results come back in job order. ``analyze_file`` never raises for bad media.
    """
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(jobs) < 4:
        for job in jobs:
            yield job, analyze_file(job.path)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_segment_per_video) as pool:
        chunk = max(1, min(16, len(jobs) // (workers * 4)))
        yield from zip(
            jobs, pool.map(analyze_file, [j.path for j in jobs], chunksize=chunk), strict=True
        )
