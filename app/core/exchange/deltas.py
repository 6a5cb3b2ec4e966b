"""Hash deltas as files: what one numbered delta holds, its files in the exchange formats (the
writers of this package, nothing new), and its manifest; and, on a partner's side, a manifest
read and checked before anything of it is imported.

A delta ``N`` is a set of files in one folder, named ``hashdesk-delta-<N, 6 digits>.*``:

* one file per format a team chose; a format that can say "deleted" (TAT's ``deleted``,
  pytx CSV's ``NEGATIVE_CLASS``) holds the added and the retracted entries together; pytx's
  local file and VICS cannot, so they get two files, ``.added`` and ``.retracted``;
* ``hashdesk-delta-<N>.manifest.json``, written last: the sequence number and the one before,
  the time span, the counts, the incident's label, and each file's name, format, what it
  holds, its entry count and SHA-256.

Everything in the files comes from what the database recorded for the delta (its entries,
span, label), never from the clock at writing time: writing delta N again gives the same
bytes. No Qt, no SQL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from app.core.errors import Refusal
from app.core.exchange import ExchangeEntry, ExchangeError, read_text, write_text
from app.core.exchange.entries import iso, parse_time

MANIFEST_KIND = "hashdesk-delta"
MANIFEST_VERSION = 1
#: The formats a delta can be written in (vPDQ is a folder per video: not one file).
DELTA_FORMATS = ("pytx", "pytx-csv", "tat", "tat-csv", "vics")
#: Formats that carry a retraction in the same file as the additions.
CARRY_DELETIONS = frozenset({"pytx-csv", "tat", "tat-csv"})
#: The file a partner imports, the first of these present: pytx CSV keeps a video's frames
#: together (one vPDQ signal per video) and carries retractions.
IMPORT_ORDER = ("pytx-csv", "tat", "tat-csv", "pytx", "vics")
_SUFFIX = {
    "pytx": "pytx.txt",
    "pytx-csv": "pytx.csv",
    "tat": "tat.json",
    "tat-csv": "tat.csv",
    "vics": "vics.json",
}
#: pytx CSV's opinion for a retracted entry (app.core.exchange.pytx.NEGATIVE).
_NEGATIVE = (("opinion", "NEGATIVE_CLASS"),)


class DeltaError(Refusal, ValueError):
    """A delta that cannot be written or imported as asked (one line naming its number)."""


#: The formats of a delta taken outside an incident (an incident names its own).
DEFAULT_FORMATS = ("pytx", "pytx-csv")


@dataclass(frozen=True)
class DeltaCadence:
    """How this machine sends deltas (``hashdesk deltas run``; settings HASHDESK_DELTAS_*):
    every ``minutes`` while an incident is active (its own minutes and formats win), and also
    outside incidents when ``always``; to ``folder`` or through ``command``."""

    minutes: int = 5
    formats: tuple[str, ...] = DEFAULT_FORMATS
    always: bool = False
    folder: Path | None = None
    command: str | None = None


def check_formats(formats: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The formats of a delta, in a fixed order, each once; a name that is not one refused."""
    wanted = [f.strip().lower() for f in formats if f.strip()]
    bad = [f for f in wanted if f not in DELTA_FORMATS]
    if bad:
        raise DeltaError(
            f"delta format {bad[0]!r} is not one of {', '.join(DELTA_FORMATS)}"
            + (" (vpdq is a folder per video, not a delta file)" if bad[0] == "vpdq" else "")
        )
    if not wanted:
        raise DeltaError(f"a delta needs at least one format: {', '.join(DELTA_FORMATS)}")
    return tuple(f for f in DELTA_FORMATS if f in wanted)


def stem(seq: int) -> str:
    return f"hashdesk-delta-{seq:06d}"


def manifest_name(seq: int) -> str:
    return f"{stem(seq)}.manifest.json"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class DeltaContent:
    """What one delta holds, as the database recorded it."""

    seq: int
    span_start: datetime | None
    span_end: datetime
    label: str | None
    incident: str | None
    added: list[ExchangeEntry] = field(default_factory=list)
    retracted: list[ExchangeEntry] = field(default_factory=list)


@dataclass(frozen=True)
class DeltaFile:
    name: str
    fmt: str
    holds: str  # "added+retracted", "added" or "retracted"
    entries: int
    sha256: str
    data: bytes = field(repr=False, compare=False)

    def facts(self) -> dict[str, object]:
        return {
            "name": self.name,
            "format": self.fmt,
            "holds": self.holds,
            "entries": self.entries,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class RenderedDelta:
    seq: int
    files: tuple[DeltaFile, ...]
    manifest: bytes = field(repr=False)

    @property
    def manifest_name(self) -> str:
        return manifest_name(self.seq)

    @property
    def manifest_sha256(self) -> str:
        return sha256_hex(self.manifest)

    def all_files(self) -> list[tuple[str, bytes]]:
        """Every file to write, the manifest last (a reader takes a delta by its manifest)."""
        return [*((f.name, f.data) for f in self.files), (self.manifest_name, self.manifest)]


def _labelled(e: ExchangeEntry, label: str | None, deleted: bool) -> ExchangeEntry:
    labels = e.labels if not label or label in e.labels else (*e.labels, label)
    return replace(e, labels=labels, deleted=deleted, meta=_NEGATIVE if deleted else e.meta)


def render(
    content: DeltaContent, formats: tuple[str, ...], collab: str = "hashdesk"
) -> RenderedDelta:
    """The files of ``content`` in ``formats`` and its manifest, as bytes."""
    formats = check_formats(formats)
    added = [_labelled(e, content.label, False) for e in content.added]
    gone = [_labelled(e, content.label, True) for e in content.retracted]
    files: list[DeltaFile] = []
    base = stem(content.seq)
    for fmt in formats:
        parts: list[tuple[str, list[ExchangeEntry]]]
        if fmt in CARRY_DELETIONS:
            parts = [("added+retracted", [*added, *gone])]
        else:
            parts = [("added", added), ("retracted", gone)]
        for holds, entries in parts:
            name = (
                f"{base}.{_SUFFIX[fmt]}"
                if holds == "added+retracted"
                else f"{base}.{holds}.{_SUFFIX[fmt]}"
            )
            try:
                text, n, _skipped = write_text(fmt, entries, collab=collab)
            except ExchangeError as exc:
                raise DeltaError(f"delta {content.seq}: {exc}") from None
            data = text.encode("utf-8")
            files.append(DeltaFile(name, fmt, holds, n, sha256_hex(data), data))
    manifest = {
        "kind": MANIFEST_KIND,
        "version": MANIFEST_VERSION,
        "sequence": content.seq,
        "previous": content.seq - 1 if content.seq > 1 else None,
        "span": {"from": iso(content.span_start) or None, "to": iso(content.span_end)},
        "label": content.label,
        "incident": content.incident,
        "counts": {"added": len(content.added), "retracted": len(content.retracted)},
        "files": [f.facts() for f in files],
    }
    data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
    return RenderedDelta(content.seq, tuple(files), data)


# -- a partner's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    path: Path
    seq: int
    label: str | None
    span_start: datetime | None
    span_end: datetime | None
    added: int
    retracted: int
    files: tuple[dict[str, object], ...]
    sha256: str  # of the manifest itself

    @property
    def folder(self) -> Path:
        return self.path.parent


def read_manifest(path: Path) -> Manifest:
    """A delta's manifest, checked for shape (not yet its files: :func:`checked_entries`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DeltaError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeltaError(f"{path.name}: not a delta manifest ({exc})") from None
    if not isinstance(raw, dict) or raw.get("kind") != MANIFEST_KIND:
        raise DeltaError(f"{path.name}: not a Hashdesk delta manifest")
    seq = raw.get("sequence")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise DeltaError(f"{path.name}: sequence {seq!r} is not a positive number")
    if raw.get("version") != MANIFEST_VERSION:
        raise DeltaError(f"delta {seq}: manifest version {raw.get('version')!r} is not 1")
    files = raw.get("files")
    counts = raw.get("counts") or {}
    span = raw.get("span") or {}
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) and "/" not in f["name"]
        and "\\" not in f["name"] and isinstance(f.get("sha256"), str)
        for f in files
    ):  # fmt: skip
        raise DeltaError(f"delta {seq}: the manifest's file list is malformed")
    try:
        start, end = parse_time(span.get("from")), parse_time(span.get("to"))
    except ValueError:
        raise DeltaError(f"delta {seq}: the manifest's time span is not a time") from None
    return Manifest(
        path,
        seq,
        raw.get("label") if isinstance(raw.get("label"), str) else None,
        start,
        end,
        int(counts.get("added") or 0),
        int(counts.get("retracted") or 0),
        tuple(files),
        sha256_hex(data),
    )


def manifests_in(path: Path) -> list[Manifest]:
    """The manifests of a folder in sequence order, or the one manifest ``path`` names."""
    if path.is_dir():
        found = [read_manifest(p) for p in sorted(path.glob("hashdesk-delta-*.manifest.json"))]
        if not found:
            raise DeltaError(f"no delta manifest (hashdesk-delta-*.manifest.json) in {path}")
        return sorted(found, key=lambda m: m.seq)
    if not path.exists():
        raise DeltaError(f"no such file or folder: {path}")
    return [read_manifest(path)]


def checked_entries(m: Manifest) -> tuple[str, str, list[ExchangeEntry]]:
    """The entries of delta ``m`` (added, and retracted ones marked deleted) from the first
    file of :data:`IMPORT_ORDER` it has, after checking every file's SHA-256 against the
    manifest. Returns (format, file name, entries). Any file missing or not matching its
    checksum refuses the whole delta."""
    contents: dict[str, bytes] = {}
    for f in m.files:
        name = str(f["name"])
        try:
            data = (m.folder / name).read_bytes()
        except OSError as exc:
            raise DeltaError(
                f"delta {m.seq}: cannot read {name}: {exc.strerror or exc}: nothing imported "
                f"from delta {m.seq}"
            ) from None
        if sha256_hex(data) != f["sha256"]:
            raise DeltaError(
                f"delta {m.seq}: {name} does not match its checksum in the manifest (damaged or "
                f"altered): nothing imported from delta {m.seq}"
            )
        contents[name] = data
    for fmt in IMPORT_ORDER:
        mine = [f for f in m.files if f.get("format") == fmt]
        if not mine:
            continue
        entries: list[ExchangeEntry] = []
        for f in mine:
            parsed = read_text(contents[str(f["name"])].decode("utf-8"), fmt)
            if parsed.problems:
                line, why = parsed.problems[0]
                raise DeltaError(
                    f"delta {m.seq}: {f['name']} line {line}: {why}: nothing imported from "
                    f"delta {m.seq}"
                )
            deleted = f.get("holds") == "retracted"
            for e in parsed.entries:
                e.deleted = e.deleted or deleted
                entries.append(e)
        return fmt, ",".join(str(f["name"]) for f in mine), entries
    raise DeltaError(f"delta {m.seq}: the manifest names no file in a format Hashdesk reads")
