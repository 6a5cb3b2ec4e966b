"""Ingest analysis of one file: byte hashes, content sniffing, then the image or video path.

Never raises for bad media: a file that cannot be decoded gives an UNREADABLE analysis with the
reason, so the item stays visible and actionable. The format is decided by the content (magic
bytes), never by the file name: a ``.jpg`` that holds a PNG is analysed as a PNG.

The file is read once: the first chunk decides the route; an image is then read whole (its bytes
are needed for decoding anyway) and hashed from memory, anything else is hashed in streamed
chunks and, for video, handed to :mod:`app.core.video.analysis` with its path; a video's sound,
and a file of sound alone, to :mod:`app.core.audio.analysis`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from app.core.audio import analysis as audio
from app.core.errors import describe
from app.core.hashing import imaging
from app.core.model.domain import MediaAnalysis, MediaKind

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: A file that sniffs as an image but is bigger than this is not decoded (byte hashes only).
MAX_IMAGE_FILE_BYTES = 512 << 20

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def analyze_file(path: str | Path) -> MediaAnalysis:
    """Hash and analyse one media file. Never raises, never blocks on a special file:

    * a path that cannot even be looked at (a name too long, a loop of links) or that is not a
      regular file (a named pipe, a device, a socket, a folder): an analysis without a content
      identity (``sha256 == ""``), and the reason; the caller reports it and skips it;
    * a regular file whose bytes cannot be read (no read permission, an I/O error): an
      UNREADABLE analysis identified by :func:`unread_identity`, so it still becomes an item a
      person sees and can act on, like any other unreadable file;
    * anything else that cannot be decoded: UNREADABLE with its byte hashes and the reason."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as e:
        return _not_read(f"cannot read file: {describe(e)}")
    if not stat.S_ISREG(st.st_mode):
        return _not_read(f"not a regular file ({_file_kind(st.st_mode)}): skipped")
    try:
        return _analyze(path)
    except OSError as e:
        return MediaAnalysis(
            sha256=unread_identity(path, st),
            md5="",
            size=st.st_size,
            kind=MediaKind.UNREADABLE,
            error=f"cannot read file: {describe(e)} (its content was not read)",
        )


def unread_identity(path: Path, st: os.stat_result) -> str:
    """The stand-in identity of a file whose bytes could not be read: a digest of where it is,
    its size and its modification time (never of content, and never a hash-list signal: the
    analysis carries no signals). Ingesting the same unread file again adds a sighting."""
    where = f"hashdesk-unread:{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()


def _not_read(reason: str) -> MediaAnalysis:
    # No content was read, so there is no content identity: sha256/md5 are "" and there are
    # no signals (the caller reports the file rather than storing an item).
    return MediaAnalysis(sha256="", md5="", size=0, kind=MediaKind.UNREADABLE, error=reason)


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "folder"),
    ):
        if test(mode):
            return name
    return "special file"


def _analyze(path: Path) -> MediaAnalysis:
    sha = hashlib.sha256()
    md5 = hashlib.md5()
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(CHUNK)
        if not head:
            return imaging.unreadable(_EMPTY_SHA256, _EMPTY_MD5, 0, "empty file (0 bytes)")
        sniffed = imaging.sniff(head[:64])
        family, mime = sniffed if sniffed else (None, None)

        if family == "image" and size <= MAX_IMAGE_FILE_BYTES:
            data = head + f.read()
            sha.update(data)
            md5.update(data)
            return _analyze_image(data, sha.hexdigest(), md5.hexdigest(), mime)

        chunk = head
        size = 0
        while chunk:
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            chunk = f.read(CHUNK)
    sha256_hex, md5_hex = sha.hexdigest(), md5.hexdigest()

    if family == "image":
        return imaging.unreadable(
            sha256_hex,
            md5_hex,
            size,
            f"image file too large: {size} bytes (limit {MAX_IMAGE_FILE_BYTES})",
            mime,
        )
    if family == "video":
        try:
            from app.core.video import analysis as video

            result = video.analyze_video(path, sha256_hex, md5_hex, size)
        except Exception as e:  # the video path must not take ingest down either
            log.warning("video analysis failed for %s: %r", path, e)
            result = imaging.unreadable(
                sha256_hex, md5_hex, size, f"video analysis failed: {describe(e)}", mime
            )
        return _with_sound(path, result, mime)
    if family == "audio":
        sound = audio.analyze_sound(path, sha256_hex, md5_hex, size, mime)
        return sound or imaging.unreadable(
            sha256_hex, md5_hex, size, "no audio stream in a sound file", mime
        )
    return imaging.unreadable(
        sha256_hex,
        md5_hex,
        size,
        "not a supported image, video or sound (content starts with "
        f"{head[:4].hex(' ')}{' ...' if len(head) > 4 else ''})",
    )


def _with_sound(path: Path, result: MediaAnalysis, mime: str | None) -> MediaAnalysis:
    """The one place the sound joins a video's analysis: a video gets its sound's signals; a
    file the video path could not read (no picture at all: an M4A, an MP4 of sound) becomes
    a sound item when it has sound, and keeps its reason when it has none."""
    if result.kind is MediaKind.VIDEO:
        return audio.add_sound(path, result)
    if result.kind is MediaKind.UNREADABLE and result.sha256:
        sound_mime = "audio/" + mime.partition("/")[2] if mime else None
        sound = audio.analyze_sound(path, result.sha256, result.md5, result.size, sound_mime)
        if sound is not None and sound.kind is MediaKind.AUDIO:
            return sound
    return result


def _analyze_image(data: bytes, sha256: str, md5: str, mime: str | None) -> MediaAnalysis:
    try:
        return imaging.analyze_image_bytes(data, sha256, md5, mime=mime)
    except Exception as e:  # analyze_image_bytes already catches; this is the last guard
        log.warning("image analysis failed: %r", e)
        return imaging.unreadable(sha256, md5, len(data), describe(e), mime)
