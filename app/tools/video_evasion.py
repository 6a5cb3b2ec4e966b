"""A video evasion set: real footage and camera pans over real photos, deterministic edits of
each as a re-upload changes a video, and how well the hash list catches the edits once their
source is confirmed. No Qt, no SQL.

Used by ``tests/unit/test_video_evasion.py`` (general properties) and ``hashdesk bench evasion
--video`` (the recall table by edit kind, with false matches); ``app/tools/video_evasion_vpdq.py``
reads the same files for Meta's vPDQ as a reference column.

Sources (:func:`sources`): the corpus videos (each with its own sound; :data:`RELATED` says
which one turned out to be a longer take of another) and
slow camera pans over real photos (scikit-image's bundled photos, the corpus's), each pan with a
sound of :mod:`app.tools.sound_writer` (music) or a speech-like babble. :data:`CONFIRMED` of
them are confirmed (their analysis goes in the index as the hash list holds it), the others
are not: they and all their edits are negatives.

Edits (:data:`EDITS`, each a named function of a :class:`Footage`): clips, speed changes (the
sound sped up with the picture), a lower frame rate, a low-quality re-encode, grey, mirror, a
quarter turn, captions and a logo, a crop, a zoom in a coloured border, a vertical 9:16
reframing over a blurred copy, a picture-in-picture inset over other footage, a screen filmed
off a monitor (perspective, moiré, glare, noise; the sound re-recorded through a room), a
compilation, a changed opening, a tilt, a watermark and combinations; the corpus's own edits of
its videos are one more kind. The "other footage" of an edit is a pan over a photo reserved to
that source (:data:`FILLER_PHOTOS`), so two sources' edits never share footage.

Negatives besides the unconfirmed sources: short pans over photos no source uses, along
different paths, at different sizes, frame rates and durations, and synthetic textured scenes,
each with its own sound (or none).

Everything is deterministic (random numbers only from generators with a fixed seed). The files
are written once into a cache folder under the system's temporary folder, named by
:data:`VERSION`, and reused. Matching is the app's: a file's analysis is the ingest path's
(:func:`app.core.ingest.media.analyze_file`, picture and sound), a confirmed source's signals go
in a :class:`~app.core.matching.hash_index.HashIndex` through
:func:`~app.core.matching.match_rules.index_signal`, and every edit and negative is looked up
with :func:`~app.core.matching.match_rules.find_known`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from itertools import chain, islice
from pathlib import Path

import numpy as np

#: Bump when the set's files change: a new cache folder is written.
VERSION = "1"
#: Sample rate (Hz) of the sound the edits work on (mono).
RATE = 22050
#: Size (w, h) and frame rate of a pan source.
PAN_SIZE = (640, 360)
PAN_FPS = 25.0
#: The corpus videos used as sources (distinct scenes), and whether each is confirmed.
CORPUS_SOURCES = (
    ("chair-orig-22-sd-bar.mp4", True),
    ("doorknob-hd-no-bar.mp4", True),
    ("pattern-hd-no-bar.mp4", True),
    ("pattern-longer-no-bar.mp4", False),
)
#: Sources that turned out to be another source's footage: ``pattern-longer`` opens with the
#: same frames as ``pattern-hd`` and carries the same sound, then goes on (a longer take). It
#: and its edits are neither edits of kinds nor negatives: the table reports them on their own
#: line (matching ``pattern-hd`` is right for them, matching anything else is false).
RELATED = {"video:pattern-longer-no-bar": "video:pattern-hd-no-bar"}
#: The corpus's own edits of its sources: (file, source file).
CORPUS_EDITS = (
    ("chair-19-sd-bar.mp4", "chair-orig-22-sd-bar.mp4"),
    ("chair-20-sd-bar.mp4", "chair-orig-22-sd-bar.mp4"),
    ("chair-22-sd-grey-bar.mp4", "chair-orig-22-sd-bar.mp4"),
    ("chair-22-sd-sepia-bar.mp4", "chair-orig-22-sd-bar.mp4"),
    ("chair-22-with-large-logo-bar.mp4", "chair-orig-22-sd-bar.mp4"),
    ("chair-22-with-small-logo-bar.mp4", "chair-orig-22-sd-bar.mp4"),
    ("pattern-sd-grey-bar.mp4", "pattern-hd-no-bar.mp4"),
    ("pattern-sd-with-large-logo-bar.mp4", "pattern-hd-no-bar.mp4"),
    ("pattern-sd-with-small-logo-bar.mp4", "pattern-hd-no-bar.mp4"),
)
#: Pan sources: (photo, seconds, sound, confirmed). Photos are "skimage:<file>" or
#: "corpus:<file>" (in the corpus's ``pdq-images``).
PAN_SOURCES = (
    ("skimage:astronaut.png", 14.0, "music", True),
    ("corpus:pen-and-coaster.png", 12.0, "speech", True),
    ("skimage:coffee.png", 12.0, "speech", False),
    ("corpus:bridge-mods__aaa-orig.jpg", 14.0, "music", False),
    ("skimage:rocket.jpg", 10.0, "music", False),
)
#: One photo per source (by its :attr:`Source.slot`: the corpus videos, then the pans) for the
#: "other footage" of its edits (picture-in-picture, compilation, changed opening).
FILLER_PHOTOS = (
    "skimage:chelsea.png",
    "skimage:motorcycle_left.png",
    "skimage:brick.png",
    "skimage:grass.png",
    "skimage:hubble_deep_field.jpg",
    "corpus:misc-images__c.png",
    "corpus:labelme-subset__q0003.jpg",
    "corpus:labelme-subset__q0004.jpg",
    "corpus:labelme-subset__q0122.jpg",
)
#: Photos of the generated negatives (no source and no filler uses them).
NEGATIVE_PHOTOS = (
    "skimage:camera.png",
    "skimage:cell.png",
    "skimage:coins.png",
    "skimage:gravel.png",
    "skimage:ihc.png",
    "skimage:moon.png",
    "skimage:retina.jpg",
    "corpus:exif-rotn__exif-rotn-1.jpg",
    "corpus:labelme-subset__q0291.jpg",
    "corpus:labelme-subset__q0746.jpg",
    "corpus:labelme-subset__q1050.jpg",
    "corpus:labelme-subset__q2821.jpg",
)
#: Generated negative clips per photo, and synthetic scenes.
CLIPS_PER_PHOTO = 17
SYNTHETIC_SCENES = 30


# --------------------------------------------------------------------------------------------
# footage: frames made lazily (a source never sits in memory whole), the sound beside them


@dataclass(frozen=True)
class Footage:
    """``n`` frames at ``fps`` (``frames()`` yields them, HxWx3 uint8 RGB, each call from the
    start) and the sound (mono float at :data:`RATE`, or None); ``crf``: the quality it is
    written at (x264's constant rate factor)."""

    fps: float
    n: int
    frames: Callable[[], Iterator[np.ndarray]]
    sound: np.ndarray | None
    crf: int = 20

    @property
    def seconds(self) -> float:
        return self.n / self.fps


def per_frame(f: Footage, fn: Callable[[np.ndarray], np.ndarray]) -> Footage:
    return replace(f, frames=lambda: (fn(x) for x in f.frames()))


def _sound_part(sound: np.ndarray | None, start: float, seconds: float) -> np.ndarray | None:
    if sound is None:
        return None
    return sound[int(start * RATE) : int((start + seconds) * RATE)]


def clip(f: Footage, start: float, seconds: float) -> Footage:
    """``seconds`` from ``start`` (in seconds), the sound cut with it."""
    i0 = min(f.n - 1, round(start * f.fps))
    n = max(1, min(f.n - i0, round(seconds * f.fps)))
    return Footage(
        f.fps,
        n,
        lambda: islice(f.frames(), i0, i0 + n),
        _sound_part(f.sound, i0 / f.fps, n / f.fps),
        f.crf,
    )


def retime(f: Footage, fps: float, factor: float = 1.0) -> Footage:
    """Played ``factor`` times as fast (the sound too, pitch with it) at ``fps`` frames a
    second: output frame j shows the source frame at time j * factor / fps."""
    n = max(1, int(f.n / f.fps / factor * fps))

    def frames() -> Iterator[np.ndarray]:
        src = f.frames()
        current, at = None, -1
        for j in range(n):
            want = min(f.n - 1, int(j * factor * f.fps / fps + 1e-9))
            while at < want:
                nxt = next(src, None)
                if nxt is None:
                    break
                current, at = nxt, at + 1
            if current is None:
                return
            yield current

    sound = f.sound
    if sound is not None and factor != 1.0:
        from app.tools.sound_writer import speed

        sound = speed(sound, factor)
    return Footage(fps, n, frames, sound, f.crf)


def concat(parts: list[Footage]) -> Footage:
    """One after another (all of one size and frame rate), each part's sound with it."""

    def frames() -> Iterator[np.ndarray]:
        for p in parts:
            yield from islice(p.frames(), p.n)

    sounds = []
    for p in parts:
        x = p.sound if p.sound is not None else np.zeros(0, np.float32)
        want = round(p.seconds * RATE)
        sounds.append(np.pad(x[:want], (0, max(0, want - x.shape[0]))))
    return Footage(parts[0].fps, sum(p.n for p in parts), frames, np.concatenate(sounds))


def overlay(base: Footage, top: Footage, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """``fn(base frame, top frame)`` frame by frame for ``top``'s length (``base`` at least as
    long), the two sounds mixed."""

    def frames() -> Iterator[np.ndarray]:
        for b, t in zip(base.frames(), islice(top.frames(), top.n), strict=False):
            yield fn(b, t)

    sound = top.sound
    if sound is not None and base.sound is not None:
        m = min(sound.shape[0], base.sound.shape[0])
        sound = (0.7 * sound[:m] + 0.5 * base.sound[:m]).astype(np.float32)
    return Footage(top.fps, top.n, frames, sound, top.crf)


# --------------------------------------------------------------------------------------------
# sources: corpus videos and pans over photos


def _corpus_dir(corpus: Path | None, sub: str) -> Path | None:
    if corpus is None:
        return None
    folder = corpus / sub
    return folder if folder.is_dir() else None


def read_sound(path: Path) -> np.ndarray | None:
    """A file's sound, mono float at :data:`RATE` (None: it has none)."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        parts = []
        for frame in c.decode(c.streams.audio[0]):
            for fr in resampler.resample(frame):
                parts.append(fr.to_ndarray().reshape(-1))
        for fr in resampler.resample(None):
            parts.append(fr.to_ndarray().reshape(-1))
    return np.concatenate(parts).astype(np.float32) if parts else None


def read_footage(path: Path) -> Footage:
    """A video file as footage (frames decoded afresh at each ``frames()``)."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        fps = float(v.average_rate or 30)
        n = v.frames or int(float(c.duration or 0) / 1e6 * fps)

    def frames() -> Iterator[np.ndarray]:
        with av.open(str(path)) as c:
            for frame in c.decode(c.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")

    return Footage(fps, n, frames, read_sound(path))


def load_photo(name: str, corpus: Path | None) -> np.ndarray | None:
    """A photo by its set name (``skimage:<file>``, ``corpus:<file>``), RGB; None when it is
    not here."""
    from PIL import Image

    from app.tools.evasion_set import skimage_data_dir

    where, _, file = name.partition(":")
    folder = skimage_data_dir() if where == "skimage" else _corpus_dir(corpus, "pdq-images")
    if folder is None or not (folder / file).is_file():
        return None
    with Image.open(folder / file) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def _ease(t: float) -> float:
    return t * t * (3 - 2 * t)


@dataclass(frozen=True)
class PanPath:
    """A camera's slow move over a photo: the window (a share of the photo's short side) and
    its centre (shares of the photo's size) go from ``start`` to ``end``, with a hand's small
    wobble (``shake`` px) and light changing a little."""

    start: tuple[float, float, float]  # window, centre x, centre y
    end: tuple[float, float, float]
    shake: float = 1.5
    seed: int = 0


def pan(
    photo: np.ndarray,
    path: PanPath,
    seconds: float,
    fps: float,
    size: tuple[int, int],
    sound: np.ndarray | None,
) -> Footage:
    """Footage of a camera (``size`` w x h) moving over ``photo`` along ``path``."""
    import cv2

    w, h = size
    ph, pw = photo.shape[:2]
    n = max(1, round(seconds * fps))
    r = np.random.default_rng(path.seed)
    phase = r.uniform(0, 2 * np.pi, 4)

    def frames() -> Iterator[np.ndarray]:
        for i in range(n):
            t = _ease(i / max(1, n - 1))
            win, cx, cy = (a + (b - a) * t for a, b in zip(path.start, path.end, strict=True))
            # the window: the photo's short side times ``win``, at the frame's aspect
            scale_h = min(ph, pw * h / w) * win
            s = h / scale_h  # output px per photo px
            tt = i / fps
            jx = path.shake * np.sin(2 * np.pi * 0.7 * tt + phase[0])
            jy = path.shake * np.sin(2 * np.pi * 0.9 * tt + phase[1])
            m = np.array(
                [
                    [s, 0, w / 2 - s * cx * pw + jx],
                    [0, s, h / 2 - s * cy * ph + jy],
                ],
                np.float32,
            )
            out = cv2.warpAffine(
                photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            gain = 1.0 + 0.03 * np.sin(2 * np.pi * 0.3 * tt + phase[2])
            yield cv2.convertScaleAbs(out, alpha=float(gain))

    return Footage(fps, n, frames, sound)


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """A speech-like babble: voiced syllables (a pitch of 90-230 Hz gliding, harmonics shaped
    by two formants that change each syllable) in words with pauses."""
    r = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = np.zeros(n, np.float32)
    pos = int(0.1 * RATE)
    base = r.uniform(90, 230)
    while pos < n:
        for _ in range(int(r.integers(1, 5))):
            d = int(r.uniform(0.1, 0.3) * RATE)
            if pos + d >= n:
                break
            t = np.arange(d) / RATE
            f0 = base * (1 + 0.15 * r.uniform(-1, 1)) * (1 + 0.1 * r.uniform(-1, 1) * t / t[-1])
            ph = 2 * np.pi * np.cumsum(f0) / RATE
            f1, f2 = r.uniform(300, 850), r.uniform(900, 2500)
            y = np.zeros(d)
            for k in range(1, 30):
                fk = k * float(f0.mean())
                if fk > RATE / 2 - 500:
                    break
                a = np.exp(-(((fk - f1) / 150) ** 2)) + 0.6 * np.exp(-(((fk - f2) / 250) ** 2))
                y += (a + 0.02) * np.sin(k * ph)
            env = np.minimum(1, np.minimum(t / 0.02, (t[-1] - t) / 0.04))
            x[pos : pos + d] += (y * env).astype(np.float32)
            pos += d
        pos += int(r.uniform(0.05, 0.45) * RATE)
    return (0.3 * x / max(1e-9, float(np.abs(x).max()))).astype(np.float32)


def _sound(kind: str, seconds: float, seed: int) -> np.ndarray | None:
    from app.tools import sound_writer as sw

    if kind == "music":
        return sw.music(seconds, seed, RATE)
    if kind == "speech":
        return speechlike(seconds, seed)
    if kind == "noise":
        return sw.noise(seconds, seed, RATE, colour=seed % 3)
    return None


@dataclass(frozen=True)
class Source:
    name: str
    confirmed: bool
    footage: Footage
    slot: int  # its place among all sources (its other footage and seeds follow from it)
    file: Path | None = None  # the corpus's own file (confirmed as it is)


def sources(corpus: Path | None) -> list[Source]:
    """The sources available here (the corpus videos when ``corpus`` has them; pans over the
    photos that are here)."""
    out = []
    videos = _corpus_dir(corpus, "videos")
    if videos is not None:
        for slot, (name, confirmed) in enumerate(CORPUS_SOURCES):
            if (videos / name).is_file():
                footage = read_footage(videos / name)
                out.append(
                    Source(f"video:{Path(name).stem}", confirmed, footage, slot, videos / name)
                )
    for i, (photo, seconds, sound, confirmed) in enumerate(PAN_SOURCES):
        rgb = load_photo(photo, corpus)
        if rgb is None:
            continue
        path = PanPath((0.85, 0.42, 0.45), (0.6, 0.58, 0.52), seed=100 + i)
        f = pan(rgb, path, seconds, PAN_FPS, PAN_SIZE, _sound(sound, seconds, 200 + i))
        name = f"pan:{photo.partition(':')[2].rsplit('.', 1)[0]}"
        out.append(Source(name, confirmed, f, len(CORPUS_SOURCES) + i))
    return out


def filler(photo: np.ndarray | None, seconds: float, fps: float, size, seed: int) -> Footage:
    """Other footage: a pan over ``photo`` (a textured synthetic scene when it is missing) with
    its own music."""
    sound = _sound("music", seconds, 7000 + seed)
    r = np.random.default_rng(seed)
    path = PanPath(
        (r.uniform(0.6, 0.9), r.uniform(0.35, 0.65), r.uniform(0.35, 0.65)),
        (r.uniform(0.5, 0.8), r.uniform(0.35, 0.65), r.uniform(0.35, 0.65)),
        seed=seed,
    )
    if photo is None:
        photo = synthetic_scene(seed)
    return pan(photo, path, seconds, fps, size, sound)


def synthetic_scene(seed: int) -> np.ndarray:
    """A textured synthetic picture (smooth coloured noise at a few scales, some shapes)."""
    import cv2

    r = np.random.default_rng(seed)
    img = np.zeros((480, 720, 3), np.float32)
    for cells, weight in ((4, 1.0), (12, 0.5), (40, 0.25)):
        small = r.uniform(0, 255, (cells, cells * 3 // 2, 3)).astype(np.float32)
        img += weight * cv2.resize(small, (720, 480), interpolation=cv2.INTER_CUBIC)
    img = img / 1.75
    for _ in range(int(r.integers(3, 9))):
        colour = tuple(float(c) for c in r.uniform(0, 255, 3))
        centre = (int(r.integers(0, 720)), int(r.integers(0, 480)))
        if r.random() < 0.5:
            cv2.circle(img, centre, int(r.integers(20, 120)), colour, -1)
        else:
            d = (int(r.integers(30, 200)), int(r.integers(30, 200)))
            cv2.rectangle(img, centre, (centre[0] + d[0], centre[1] + d[1]), colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# per-frame edits


def _even(x: int) -> int:
    return max(2, x - x % 2)


def _resize(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def grey(rgb: np.ndarray) -> np.ndarray:
    y = (rgb @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    return np.repeat(y[:, :, None], 3, axis=2)


def mirror(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


def quarter_turn(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(rgb, 1))


def crop(rgb: np.ndarray, share: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    dy, dx = round(h * share), round(w * share)
    return rgb[dy : h - dy, dx : w - dx]


def zoom_in_border(rgb: np.ndarray, zoom: float = 0.06, share: float = 0.08) -> np.ndarray:
    """Zoomed in by ``zoom`` per side, set in a coloured border of ``share`` of the width."""
    h, w = rgb.shape[:2]
    b = round(w * share)
    inner = _resize(crop(rgb, zoom), w - 2 * b, h - 2 * b)
    out = np.empty_like(rgb)
    out[:] = (196, 40, 92)
    out[b : h - b, b : w - b] = inner
    return out


def tilt(rgb: np.ndarray, degrees: float = 4.0) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR)


def vertical(rgb: np.ndarray) -> np.ndarray:
    """Reframed for a 9:16 phone screen: the whole picture across the width, over a blurred,
    darkened copy of itself filling the frame."""
    import cv2

    h, w = rgb.shape[:2]
    H = _even(h)
    W = _even(round(H * 9 / 16))
    s = max(W / w, H / h)
    bw, bh = max(W, round(w * s)), max(H, round(h * s))
    small = cv2.resize(rgb, (max(1, bw // 8), max(1, bh // 8)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3)
    back = cv2.resize(small, (bw, bh), interpolation=cv2.INTER_LINEAR)
    y0, x0 = (bh - H) // 2, (bw - W) // 2
    out = (back[y0 : y0 + H, x0 : x0 + W].astype(np.uint16) * 3 // 5).astype(np.uint8)
    fh = _even(round(h * W / w))
    fg = _resize(rgb, W, min(fh, H))
    top = (H - fg.shape[0]) // 2
    out[top : top + fg.shape[0]] = fg
    return out


def _overlay_rgba(shape: tuple[int, int], draw_fn) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, ImageDraw

    h, w = shape
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw_fn(ImageDraw.Draw(img), w, h)
    a = np.asarray(img).astype(np.float32)
    return a[:, :, :3], a[:, :, 3:] / 255.0


class _Stamp:
    """A transparent overlay drawn once per frame size and laid over every frame."""

    def __init__(self, draw_fn) -> None:
        self.draw_fn = draw_fn
        self.cache: dict[tuple[int, int], tuple] = {}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        key = rgb.shape[:2]
        if key not in self.cache:
            colour, alpha = _overlay_rgba(key, self.draw_fn)
            inked = np.flatnonzero(alpha.reshape(alpha.shape[0], -1).max(axis=1) > 0)
            rows = [(int(inked[0]), int(inked[-1]) + 1)] if inked.size else []
            self.cache[key] = (colour, alpha, rows)
        colour, alpha, rows = self.cache[key]
        out = rgb.copy()
        for y0, y1 in rows:
            a = alpha[y0:y1]
            out[y0:y1] = (rgb[y0:y1] * (1 - a) + colour[y0:y1] * a).astype(np.uint8)
        return out


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=max(8, size))


def _fitted(draw, text: str, size: int, w: int):
    """The font of ``text`` at ``size``, made smaller (2 px at a time, down to 10) until the
    line fits in 90 % of ``w``; with its size."""
    font = _font(size)
    while size > 10 and draw.textlength(text, font=font) > 0.9 * w:
        size -= 2
        font = _font(size)
    return font, size


def _captions_and_logo(draw, w: int, h: int) -> None:
    size = max(10, h // 14)
    text = "wait for the end... you won't believe it"
    font, size = _fitted(draw, text, size, w)
    x = (w - draw.textlength(text, font=font)) / 2
    draw.text(
        (x, h * 0.82),
        text,
        fill=(255, 255, 255, 255),
        font=font,
        stroke_width=2,
        stroke_fill=(0, 0, 0, 255),
    )
    r = max(12, min(w, h) // 12)
    cx, cy = w - r - w // 30, r + h // 30
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(230, 30, 60, 230))
    draw.text((cx - r * 0.6, cy - r * 0.45), "TV", fill=(255, 255, 255, 255), font=_font(r))


def _watermark(draw, w: int, h: int) -> None:
    size = max(10, h // 12)
    font = _font(size)
    for row, y in enumerate(range(0, h, size * 3)):
        for x in range(-(row % 2) * size * 3, w, size * 7):
            draw.text((x, y), "@reposter", fill=(255, 255, 255, 90), font=font)


captions_and_logo = _Stamp(_captions_and_logo)
watermark = _Stamp(_watermark)


def caption_band(rgb: np.ndarray, share: float = 0.16) -> np.ndarray:
    """A white band above the picture with a line of black text (a meme's caption)."""
    from PIL import Image, ImageDraw

    h, w = rgb.shape[:2]
    band = _even(round(h * share))
    img = Image.new("RGB", (w, h + band), (255, 255, 255))
    img.paste(Image.fromarray(rgb), (0, band))
    draw = ImageDraw.Draw(img)
    size = max(10, band // 2)
    text = "POV: nobody saw this coming"
    font, size = _fitted(draw, text, size, w)
    draw.text(
        ((w - draw.textlength(text, font=font)) / 2, (band - size) / 2),
        text,
        fill=(0, 0, 0),
        font=font,
    )
    return np.asarray(img)


class ScreenFilm:
    """The picture on a monitor filmed by a phone: the screen a keystoned quadrilateral in a
    darker surround, with moiré, a glare and sensor noise; the hand moves a little."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.i = 0
        self.cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _setup(self, h: int, w: int):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        moire = 0.85 * (1 + 0.07 * np.sin(2 * np.pi * (xx * 0.93 + yy * 0.37) / 3.3))
        glare = 70 * np.exp(
            -(((xx - 0.68 * w) / (0.22 * w)) ** 2 + ((yy - 0.3 * h) / (0.25 * h)) ** 2)
        )
        room = np.clip(24 + 18 * yy / h + 10 * xx / w, 0, 255).astype(np.uint8)
        r = np.random.default_rng(self.seed)
        noises = [r.normal(0, 4, (h, w)).astype(np.float32) for _ in range(7)]
        return (
            np.repeat(moire[:, :, None], 3, axis=2),
            np.repeat((glare + 18)[:, :, None], 3, axis=2),
            np.repeat(room[:, :, None], 3, axis=2),
            [np.repeat(x[:, :, None], 3, axis=2) for x in noises],
        )

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        if (h, w) not in self.cache:
            self.cache[(h, w)] = self._setup(h, w)
        moire, glare, room, noises = self.cache[(h, w)]
        t = self.i / 25.0
        dx, dy = 2.0 * np.sin(2 * np.pi * 0.5 * t), 1.5 * np.sin(2 * np.pi * 0.37 * t + 1)
        quad = np.float32(
            [
                [0.13 * w + dx, 0.11 * h + dy],
                [0.90 * w + dx, 0.17 * h + dy],
                [0.87 * w + dx, 0.88 * h + dy],
                [0.16 * w + dx, 0.83 * h + dy],
            ]
        )
        src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
        m = cv2.getPerspectiveTransform(src, quad)
        shown = cv2.multiply(rgb, moire, dtype=cv2.CV_32F)
        shown = cv2.add(shown, glare)
        out = cv2.add(shown, noises[self.i % len(noises)])
        out = cv2.convertScaleAbs(out)
        filmed = room.copy()
        cv2.warpPerspective(
            out, m, (w, h), dst=filmed, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT
        )
        self.i += 1
        return filmed


def picture_in_picture(base: np.ndarray, top: np.ndarray, share: float = 0.45) -> np.ndarray:
    """``top`` scaled to ``share`` of ``base``'s width, inset near its top left corner."""
    h, w = base.shape[:2]
    th, tw = top.shape[:2]
    iw = _even(round(w * share))
    ih = min(h - 4, _even(round(th * iw / tw)))
    out = base.copy()
    x0, y0 = round(w * 0.05), min(round(h * 0.08), h - ih)
    out[y0 : y0 + ih, x0 : x0 + iw] = _resize(top, iw, ih)
    return out


# --------------------------------------------------------------------------------------------
# edits of a source (footage + its own other footage -> footage)


@dataclass(frozen=True)
class Context:
    """What an edit may use besides the source: the photo of its other footage, a seed."""

    other: np.ndarray | None
    seed: int


def _size(f: Footage) -> tuple[int, int]:
    first = next(iter(f.frames()))
    return first.shape[1], first.shape[0]


def _other(f: Footage, ctx: Context, seconds: float, k: int) -> Footage:
    return filler(ctx.other, seconds, f.fps, _size(f), ctx.seed * 10 + k)


def clip_start(f: Footage, ctx: Context) -> Footage:
    return clip(f, 0, max(3.0, 0.4 * f.seconds))


def clip_middle(f: Footage, ctx: Context) -> Footage:
    return clip(f, 0.3 * f.seconds, max(2.5, 0.4 * f.seconds))


def speed_125(f: Footage, ctx: Context) -> Footage:
    return retime(f, f.fps, 1.25)


def speed_08(f: Footage, ctx: Context) -> Footage:
    return retime(f, f.fps, 0.8)


def speed_2(f: Footage, ctx: Context) -> Footage:
    return retime(f, f.fps, 2.0)


def fps_12(f: Footage, ctx: Context) -> Footage:
    return retime(f, 12.0)


def low_quality(f: Footage, ctx: Context) -> Footage:
    """Half the size, re-encoded at a low quality (CRF 40)."""

    def half(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        return _resize(rgb, _even(w // 2), _even(h // 2))

    return replace(per_frame(f, half), crf=40)


def greyscale(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, grey)


def mirrored(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, mirror)


def turned(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, quarter_turn)


def captioned_with_logo(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, captions_and_logo)


def cropped(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, lambda a: crop(a, 0.05))


def zoomed_in_border(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, zoom_in_border)


def vertical_reframe(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, vertical)


def inset_over_other(f: Footage, ctx: Context) -> Footage:
    return overlay(_other(f, ctx, f.seconds + 1, 1), f, picture_in_picture)


def screen_recording(f: Footage, ctx: Context) -> Footage:
    from app.tools import sound_writer as sw

    def frames() -> Iterator[np.ndarray]:
        film = ScreenFilm(ctx.seed)
        return (film(a) for a in f.frames())

    sound = None if f.sound is None else 0.5 * sw.room(f.sound, RATE, ctx.seed)
    return replace(f, frames=frames, sound=sound)


def compilation(f: Footage, ctx: Context) -> Footage:
    """The video a third of the length, between two pieces of other footage."""
    return concat([_other(f, ctx, f.seconds, 2), f, _other(f, ctx, f.seconds, 3)])


def changed_opening(f: Footage, ctx: Context) -> Footage:
    return concat([_other(f, ctx, 3.0, 4), f])


def mirror_crop_caption(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, lambda a: caption_band(crop(mirror(a), 0.04)))


def tilted(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, tilt)


def watermarked(f: Footage, ctx: Context) -> Footage:
    return per_frame(f, watermark)


Edit = Callable[[Footage, Context], Footage]
#: Edit kind -> how it is made.
EDITS: dict[str, Edit] = {
    "clip from the start": clip_start,
    "clip from the middle": clip_middle,
    "speed 1.25x": speed_125,
    "speed 0.8x": speed_08,
    "speed 2x": speed_2,
    "12 fps": fps_12,
    "low quality (half size, CRF 40)": low_quality,
    "greyscale": greyscale,
    "mirror": mirrored,
    "quarter turn": turned,
    "captions + logo": captioned_with_logo,
    "crop 5% per side": cropped,
    "zoom 6% + coloured border 8%": zoomed_in_border,
    "vertical 9:16 over blurred copy": vertical_reframe,
    "picture-in-picture 45% over other": inset_over_other,
    "screen recording off a monitor": screen_recording,
    "compilation (a third)": compilation,
    "changed opening (3 s other)": changed_opening,
    "mirror+crop+caption": mirror_crop_caption,
    "tilt 4 degrees": tilted,
    "watermark": watermarked,
}
CORPUS_KIND = "corpus's own edits"


# --------------------------------------------------------------------------------------------
# writing


def video_codec() -> str:
    """H.264 (x264 or OpenH264) when this FFmpeg has an encoder for it, else MPEG-4 Part 2."""
    import av

    for name in ("libx264", "libopenh264"):
        if name in av.codecs_available:
            return name
    return "mpeg4"


def write(path: Path, f: Footage) -> int:
    """Encode ``f`` into ``path`` (MP4: H.264 or MPEG-4, AAC sound); returns the frames
    written. Written under a temporary name and renamed, so a file present is complete."""
    import av

    from app.tools.sound_writer import _audio_stream, _encode_sound

    codec = video_codec()
    part = path.with_name(path.name + ".part")
    frames = islice(f.frames(), f.n)
    first = next(frames)
    h, w = (_even(x) for x in first.shape[:2])
    written = 0
    with av.open(str(part), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(f.fps).limit_denominator(1001))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(f.crf), "preset": "ultrafast"}
        else:
            stream.bit_rate = int(w * h * f.fps * (0.05 if f.crf >= 35 else 0.5))
        has_sound = f.sound is not None and f.sound.shape[0] > 0
        sound = None
        if has_sound:
            sound = _audio_stream(container, "aac", RATE, 96000 if f.crf < 35 else 32000)
        for rgb in chain([first], frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
            written += 1
        container.mux(stream.encode(None))
        if sound is not None:
            _encode_sound(container, sound, f.sound, RATE)
    part.replace(path)
    return written


# --------------------------------------------------------------------------------------------
# the set on disk


@dataclass
class Entry:
    """One file of the set. ``role``: "source", "edit" or "negative"; ``source``: the source
    it is made from (an edit, a source), or None; ``group``: what it may legitimately match
    (its source, or the photo or scene of a generated negative)."""

    file: str
    role: str
    kind: str
    source: str | None
    confirmed: bool
    group: str


def cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"hashdesk-video-evasion-v{VERSION}"


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s).strip("-")


def negative_clips(corpus: Path | None) -> list[tuple[str, str, Callable[[], Footage]]]:
    """The generated negatives: (file stem, group, how to make it)."""
    out = []
    for pi, name in enumerate(NEGATIVE_PHOTOS):
        for k in range(CLIPS_PER_PHOTO):
            seed = 50_000 + pi * 100 + k
            out.append((f"neg-{_slug(name)}-{k:02d}", name, _negative_maker(name, corpus, seed)))
    for k in range(SYNTHETIC_SCENES):
        seed = 90_000 + k
        out.append(
            (f"neg-synthetic-{k:02d}", f"synthetic:{k}", _negative_maker(None, corpus, seed))
        )
    return out


def _negative_maker(photo_name: str | None, corpus: Path | None, seed: int):
    def make() -> Footage | None:
        photo = synthetic_scene(seed) if photo_name is None else load_photo(photo_name, corpus)
        if photo is None:
            return None
        r = np.random.default_rng(seed)
        seconds = float(r.uniform(3.0, 6.0))
        fps = float(r.choice([15.0, 24.0, 25.0, 30.0]))
        size = [(480, 270), (640, 360), (360, 640), (480, 480)][int(r.integers(0, 4))]
        path = PanPath(
            (r.uniform(0.4, 1.0), r.uniform(0.3, 0.7), r.uniform(0.3, 0.7)),
            (r.uniform(0.4, 1.0), r.uniform(0.3, 0.7), r.uniform(0.3, 0.7)),
            shake=float(r.uniform(0, 3)),
            seed=seed,
        )
        sound_kind = ["music", "speech", "noise", "music", None][int(r.integers(0, 5))]
        return pan(photo, path, seconds, fps, size, _sound(sound_kind or "", seconds, seed))

    return make


def build(corpus: Path | None, folder: Path | None = None, log=print) -> tuple[Path, list[Entry]]:
    """Write the set into ``folder`` (default :func:`cache_dir`), reusing the files already
    there; returns the folder and its entries (also saved as ``manifest.json``)."""
    folder = folder or cache_dir()
    manifest = folder / "manifest.json"
    if manifest.is_file():
        entries = [Entry(**e) for e in json.loads(manifest.read_text())]
        if all((folder / e.file).is_file() for e in entries):
            return folder, entries
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    srcs = sources(corpus)
    started = time.perf_counter()
    for src in srcs:
        group = src.name
        stem = _slug(src.name)
        if src.file is not None:
            file = f"{stem}.mp4"
            if not (folder / file).is_file():
                (folder / file).write_bytes(src.file.read_bytes())
        else:
            file = f"{stem}.mp4"
            if not (folder / file).is_file():
                write(folder / file, src.footage)
        entries.append(Entry(file, "source", "source", src.name, src.confirmed, group))
        other = load_photo(FILLER_PHOTOS[src.slot % len(FILLER_PHOTOS)], corpus)
        ctx = Context(other, 300 + src.slot)
        for kind, edit in EDITS.items():
            file = f"{stem}--{_slug(kind)}.mp4"
            if not (folder / file).is_file():
                write(folder / file, edit(src.footage, ctx))
            entries.append(Entry(file, "edit", kind, src.name, src.confirmed, group))
        videos = _corpus_dir(corpus, "videos")
        if src.file is not None and videos is not None:
            for name, of in CORPUS_EDITS:
                if of == src.file.name and (videos / name).is_file():
                    file = f"corpus--{name}"
                    if not (folder / file).is_file():
                        (folder / file).write_bytes((videos / name).read_bytes())
                    entries.append(Entry(file, "edit", CORPUS_KIND, src.name, src.confirmed, group))
        log(f"  source {src.name}: written ({time.perf_counter() - started:.0f} s)")
    for stem, group, make in negative_clips(corpus):
        file = f"{stem}.mp4"
        if not (folder / file).is_file():
            f = make()
            if f is None:
                continue
            write(folder / file, f)
        entries.append(Entry(file, "negative", "generated", None, False, group))
    log(f"  negatives written ({time.perf_counter() - started:.0f} s)")
    tmp = manifest.with_name("manifest.json.part")
    tmp.write_text(json.dumps([asdict(e) for e in entries], indent=1))
    tmp.replace(manifest)
    return folder, entries


# --------------------------------------------------------------------------------------------
# measuring


def dense_signals() -> Callable[[Path], list] | None:
    """``app.core.video.dense.dense_frame_signals`` when that module exists: a confirmed
    reference's every frame hashed."""
    try:
        from app.core.video.dense import dense_frame_signals  # type: ignore[import-not-found]
    except ImportError:
        return None
    return dense_frame_signals


@dataclass
class Result(Entry):
    """One file's lookup: the reference it matched (None: none), how, and (for a negative of
    the second pass) what it matched among the other negatives."""

    matched: str | None = None
    algorithm: str | None = None
    detail: str | None = None
    among: str | None = None
    among_detail: str | None = None
    analysis_seconds: float = 0.0
    signals: int = 0


@dataclass
class Measurement:
    results: list[Result]
    dense: bool
    seconds: dict[str, float] = field(default_factory=dict)


PICTURE = ("pdq", "pdq_frame", "phash")


def measure(folder: Path, entries: list[Entry], log=print) -> Measurement:
    """Analyse every file of the set by the ingest path, confirm the confirmed sources, look
    every other file up (see the module docstring)."""
    from app.core.ingest.media import analyze_file
    from app.core.matching.hash_index import HashIndex
    from app.core.matching.match_rules import MatchPolicy, find_known, index_signal

    policy = MatchPolicy()
    dense = dense_signals()
    t0 = time.perf_counter()
    analyses = {}
    results = []
    for e in entries:
        t = time.perf_counter()
        a = analyze_file(folder / e.file)
        r = Result(e.file, e.role, e.kind, e.source, e.confirmed, e.group)
        r.analysis_seconds = time.perf_counter() - t
        r.signals = len(a.signals)
        analyses[e.file] = a
        results.append(r)
    t1 = time.perf_counter()
    log(f"  {len(entries)} files analysed ({t1 - t0:.0f} s)")
    refs = [e for e in entries if e.role == "source" and e.confirmed]
    names = [e.source for e in refs]
    index = HashIndex()
    entry_id = 0
    for ref, e in enumerate(refs):
        signals = list(analyses[e.file].signals)
        if dense is not None:
            signals += dense(folder / e.file)
        for sig in signals:
            entry_id += 1
            index_signal(index, entry_id, sig, ref, policy)
    for r in results:
        if r.role == "source" and r.confirmed:
            continue
        a = analyses[r.file]
        known = find_known(index, a.signals, a.kind, policy)
        if known is not None and known.evidence is not None:
            ev = known.evidence
            r.matched = names[ev.ref or 0]
            r.algorithm = ev.algorithm
            r.detail = ev.describe()
    t2 = time.perf_counter()
    # second pass: the negatives against each other, a group's own files taken out
    negatives = [r for r in results if not r.confirmed and r.source not in RELATED]
    others = HashIndex()
    owned: dict[str, list[tuple[int, object, int]]] = {}
    nid = 0
    for i, r in enumerate(negatives):
        for sig in analyses[r.file].signals:
            nid += 1
            if index_signal(others, nid, sig, i, policy):
                owned.setdefault(r.group, []).append((nid, sig, i))
    for group, rows in owned.items():
        others.remove_many([row[0] for row in rows])
        for r in negatives:
            if r.group != group:
                continue
            a = analyses[r.file]
            known = find_known(others, a.signals, a.kind, policy)
            if known is not None and known.evidence is not None:
                ev = known.evidence
                r.among = negatives[ev.ref or 0].file
                r.among_detail = ev.describe()
        for row_id, sig, i in rows:
            index_signal(others, row_id, sig, i, policy)
    t3 = time.perf_counter()
    return Measurement(
        results,
        dense is not None,
        {"analysis": t1 - t0, "against sources": t2 - t1, "among negatives": t3 - t2},
    )


def by_picture(algorithm: str | None) -> bool:
    return algorithm in PICTURE


def _false(r: Result) -> bool:
    """An unconfirmed file's match that is false: any, except its related source's."""
    return r.matched is not None and r.matched != RELATED.get(r.source or "")


def table(results: list[Result]) -> list[str]:
    """The recall table by edit kind (edits of confirmed sources), with false matches: an edit
    matching another source, an unconfirmed source's edit of that kind matching any."""
    kinds = list(dict.fromkeys(r.kind for r in results if r.role == "edit"))
    width = max(len(k) for k in kinds) + 2
    lines = [
        "edit kind".ljust(width) + f"{'caught':>12}{'picture':>9}{'sound':>7}{'false':>7}",
    ]
    tot = pic = snd = fal = n = 0
    for kind in kinds:
        mine = [r for r in results if r.role == "edit" and r.kind == kind and r.confirmed]
        caught = [r for r in mine if r.matched == r.source]
        p = sum(1 for r in caught if by_picture(r.algorithm))
        false = sum(1 for r in mine if r.matched not in (None, r.source))
        false += sum(
            1
            for r in results
            if r.role == "edit" and r.kind == kind and not r.confirmed and _false(r)
        )
        share = f"{len(caught)}/{len(mine)}" if mine else "-"
        lines.append(kind.ljust(width) + f"{share:>12}{p:>9}{len(caught) - p:>7}{false:>7}")
        tot, pic, snd, fal, n = (
            tot + len(caught),
            pic + p,
            snd + len(caught) - p,
            fal + false,
            n + len(mine),
        )
    lines.append(
        "all".ljust(width) + f"{f'{tot}/{n} {tot / max(n, 1):.0%}':>12}{pic:>9}{snd:>7}{fal:>7}"
    )
    negs = [r for r in results if not r.confirmed and r.source not in RELATED]
    related = [r for r in results if r.source in RELATED]
    generated = [r for r in negs if r.role == "negative"]
    against = [r for r in negs if r.matched]
    if related:
        right = [r for r in related if r.matched == RELATED.get(r.source or "")]
        p = sum(1 for r in right if by_picture(r.algorithm))
        lines.append(
            f"related ({', '.join(f'{a}, a longer take of {b}' for a, b in RELATED.items())}): "
            f"{len(right)} of {len(related)} files matched it ({p} by picture, "
            f"{len(right) - p} by sound); false: {sum(1 for r in related if _false(r))}"
        )
    among = [r for r in negs if r.among]
    lines.append(
        f"negatives: {len(negs)} ({len(negs) - len(generated)} unconfirmed sources and their "
        f"edits, {len(generated)} generated clips); false matches against the confirmed "
        f"sources: {len(against)} of {len(negs)}; against each other (a different source or "
        f"scene): {len(among)} of {len(negs)}"
    )
    return lines


def report(corpus: Path | None, json_path: Path | None = None, log=print) -> list[str]:
    """What ``hashdesk bench evasion --video`` prints."""
    try:
        import cv2  # noqa: F401  (the edits draw with it)
    except ImportError:
        return ["video evasion: skipped (OpenCV is not installed here: the edits draw with it)"]
    started = time.perf_counter()
    folder, entries = build(corpus, log=log)
    built = time.perf_counter() - started
    if not any(e.role == "source" and e.confirmed for e in entries):
        return ["video evasion: skipped (no sources: no corpus and no scikit-image)"]
    m = measure(folder, entries, log=log)
    srcs = [e for e in entries if e.role == "source"]
    edits = [e for e in entries if e.role == "edit"]
    lines = [
        f"video evasion set ({folder}, {video_codec()}): {len(srcs)} sources "
        f"({', '.join(str(e.source) + (' [confirmed]' if e.confirmed else '') for e in srcs)}), "
        f"{len(edits)} edits of {len({e.kind for e in edits})} kinds, "
        f"{sum(1 for e in entries if e.role == 'negative')} generated negatives; "
        f"dense references: {'yes' if m.dense else 'no (app.core.video.dense not present)'}",
        *table(m.results),
    ]
    for r in m.results:
        if r.role == "edit" and r.confirmed and r.matched != r.source:
            lines.append(
                f"missed: {r.source} {r.kind}"
                + (f" (matched {r.matched}: {r.detail})" if r.matched else "")
            )
    for r in m.results:
        if not r.confirmed and _false(r):
            lines.append(f"FALSE MATCH: {r.file} -> {r.matched} ({r.detail})")
        if not r.confirmed and r.among:
            lines.append(f"FALSE MATCH among negatives: {r.file} -> {r.among} ({r.among_detail})")
    total = time.perf_counter() - started
    lines.append(
        f"wall time {total:.0f} s: set written or reused {built:.0f} s, analysis "
        f"{m.seconds['analysis']:.0f} s, lookups {m.seconds['against sources']:.1f} s + "
        f"{m.seconds['among negatives']:.1f} s"
    )
    if json_path is not None:
        json_path.write_text(
            json.dumps(
                {
                    "folder": str(folder),
                    "dense": m.dense,
                    "results": [asdict(r) for r in m.results],
                },
                indent=1,
            )
        )
    return lines


def corpus_root() -> Path | None:
    """The corpus beside the repository, or where HASHDESK_TEST_CORPUS says."""
    env = os.environ.get("HASHDESK_TEST_CORPUS", "").strip()
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    return root if root.is_dir() else None
