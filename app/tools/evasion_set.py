"""An evasion set: real photos and deterministic evasion edits of them, and how well the hash
list catches the edits once each photo is confirmed. No Qt, no SQL.

Used by ``tests/unit/test_evasion_set.py`` (general properties) and ``hashdesk bench evasion``
(the recall table by edit kind, with false matches).

The photos: the sample photos scikit-image ships inside its wheel (no download: read straight
from the package folder, so a frozen build without scikit-image simply has none of them) and the
reference corpus's photos of different scenes (``bridge-mods__aaa-orig`` stands for its group:
every other ``bridge-mods``/``dih``/``misc-images__modes`` file is an edit of the same bridge).
The unrelated set is the corpus's ``labelme-subset__*`` photos: none of them may match any
original or edit, in either direction, and no original or edit may match another original.

Each original is reduced to at most :data:`ORIGINAL_LONG_SIDE` px and confirmed as a JPEG; its
edits (:data:`EDITS`) are made from the same pixels: re-encoding, resizing, mirroring, quarter
turns, transposition, black letterbox/pillarbox bars, white borders, the picture set in a
portrait (9:16) or landscape (16:9) frame, a crop, brightness/contrast, grey, a sticker over a
corner, a meme's caption band above the picture, a news strip laid over its bottom, a tilt of
a few degrees, and combinations. Everything is deterministic (no random numbers; the text is
drawn in Pillow's own bundled font). The corpus's own edits of the bridge (``bridge-mods__*``:
blur, sharpen, contrast, shrink, squares; ``dih__bridge-*``: its rotations and mirrors) are
added as two more kinds (:data:`CORPUS_EDITS`).

Matching is the app's: an original's stored signals go in a :class:`HashIndex` through
:func:`app.core.matching.match_rules.index_signal` (what the hash list holds after a confirm), and
an
edit's analysis is looked up with :func:`app.core.matching.match_rules.find_known`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app.core.hashing.imaging import analyze_image_bytes
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, find_known, index_signal
from app.core.matching.signal_types import dihedral_parts, is_dihedral
from app.core.model.domain import Algorithm, MediaAnalysis, Signal

#: Originals are reduced to this long side (px) before anything else: the set stays quick.
ORIGINAL_LONG_SIDE = 1024

#: scikit-image's bundled sample photos used (file names in ``skimage/data``; all ship in the
#: wheel). Left out: drawings and binary masks (horse, logo, text, page, chessboards: flat
#: pictures PDQ rates as low quality anyway), clock_motion (motion-blurred: PDQ quality 35, so
#: the quality rule keeps it out of PDQ matching altogether), the second motorcycle of the
#: stereo pair (nearly the same picture as the first), the tiny ones.
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
#: Corpus photos of distinct scenes (one per group of edits).
CORPUS_PHOTOS = (
    "bridge-mods__aaa-orig.jpg",
    "exif-rotn__exif-rotn-1.jpg",
    "misc-images__c.png",
    "pen-and-coaster.png",
)
#: Corpus photos unrelated to every original.
UNRELATED_GLOB = "labelme-subset__*.jpg"
#: The corpus's own edits of its originals: (kind, file name pattern, original's file name).
#: (The ``exif-rotn`` photos are not edits of one another: four shots of the same desk, each
#: framed differently.)
CORPUS_EDITS = (
    ("corpus bridge-mods", "bridge-mods__*.jpg", "bridge-mods__aaa-orig.jpg"),
    ("corpus dih", "dih__bridge-*.jpg", "bridge-mods__aaa-orig.jpg"),
)


@dataclass(frozen=True)
class Photo:
    name: str  # "skimage:astronaut", "corpus:pen-and-coaster"
    rgb: np.ndarray  # HxWx3 uint8


def skimage_data_dir() -> Path | None:
    """scikit-image's bundled data folder, found without importing scikit-image; None when it
    is not installed (a frozen build)."""
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "data"
    return folder if folder.is_dir() else None


def _reduced_rgb(img: Image.Image) -> np.ndarray:
    rgb = img.convert("RGB")
    long_side = max(rgb.size)
    if long_side > ORIGINAL_LONG_SIDE:
        s = ORIGINAL_LONG_SIDE / long_side
        rgb = rgb.resize((round(rgb.width * s), round(rgb.height * s)), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(rgb))


def load_photos(corpus: Path | None) -> list[Photo]:
    """The originals available here: scikit-image's photos (when installed) and the corpus's
    (when ``corpus``, the ``pdq-images`` folder, exists)."""
    out: list[Photo] = []
    folder = skimage_data_dir()
    if folder is not None:
        for name in SKIMAGE_PHOTOS:
            path = folder / name
            if path.is_file():
                with Image.open(path) as im:
                    out.append(Photo(f"skimage:{Path(name).stem}", _reduced_rgb(im)))
    if corpus is not None and corpus.is_dir():
        for name in CORPUS_PHOTOS:
            path = corpus / name
            if path.is_file():
                with Image.open(path) as im:
                    out.append(Photo(f"corpus:{Path(name).stem}", _reduced_rgb(im)))
    return out


def unrelated_files(corpus: Path | None) -> list[tuple[str, bytes]]:
    """The unrelated photos' (name, file bytes); [] without the corpus."""
    if corpus is None or not corpus.is_dir():
        return []
    return [(f"corpus:{p.stem}", p.read_bytes()) for p in sorted(corpus.glob(UNRELATED_GLOB))]


def corpus_edits(corpus: Path | None, photos: list[Photo]) -> list[tuple[int, str, bytes]]:
    """The corpus's own edits of the originals in ``photos``: (original's position, kind, file
    bytes); the original's own file is left out."""
    if corpus is None or not corpus.is_dir():
        return []
    position = {p.name: i for i, p in enumerate(photos)}
    out = []
    for kind, pattern, original in CORPUS_EDITS:
        i = position.get(f"corpus:{Path(original).stem}")
        if i is None:
            continue
        for path in sorted(corpus.glob(pattern)):
            if path.name != original:
                out.append((i, kind, path.read_bytes()))
    return out


# --------------------------------------------------------------------------------------------
# edits (each: RGB array -> file bytes)


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG")
    return buf.getvalue()


def pad(rgb: np.ndarray, top: int, bottom: int, left: int, right: int, colour: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = np.full((h + top + bottom, w + left + right, 3), colour, np.uint8)
    out[top : top + h, left : left + w] = rgb
    return out


def letterbox(rgb: np.ndarray, share: float = 0.12, colour: int = 0) -> np.ndarray:
    """Bars of ``share`` of the height above and below."""
    b = round(rgb.shape[0] * share)
    return pad(rgb, b, b, 0, 0, colour)


def pillarbox(rgb: np.ndarray, share: float = 0.12, colour: int = 0) -> np.ndarray:
    b = round(rgb.shape[1] * share)
    return pad(rgb, 0, 0, b, b, colour)


def border(rgb: np.ndarray, share: float = 0.06, colour: int = 255) -> np.ndarray:
    """A frame of ``share`` of the long side on all four sides."""
    b = round(max(rgb.shape[:2]) * share)
    return pad(rgb, b, b, b, b, colour)


def framed(rgb: np.ndarray, aspect: float, colour: int = 0) -> np.ndarray:
    """The picture centred in a canvas of width/height ``aspect`` (9/16: a portrait phone
    frame; 16/9: a landscape one), bars where it does not fill it."""
    h, w = rgb.shape[:2]
    if w / h > aspect:  # wider than the frame: bars above and below
        extra = round(w / aspect) - h
        return pad(rgb, extra // 2, extra - extra // 2, 0, 0, colour)
    extra = round(h * aspect) - w
    return pad(rgb, 0, 0, extra // 2, extra - extra // 2, colour)


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    img = Image.fromarray(rgb)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))


def crop(rgb: np.ndarray, share: float = 0.04) -> np.ndarray:
    h, w = rgb.shape[:2]
    dy, dx = round(h * share), round(w * share)
    return rgb[dy : h - dy, dx : w - dx]


def tone(rgb: np.ndarray, gain: float = 1.25, offset: float = -20.0) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))


def sticker(rgb: np.ndarray) -> np.ndarray:
    """A large round sticker (white disc, black ring and marks) over the top right corner, as
    the corpus's logo-stamped videos carry."""
    from PIL import ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb))
    w, h = img.size
    cx, cy, r = int(w * 0.75), int(h * 0.25), int(min(h, w) * 0.2)
    draw = ImageDraw.Draw(img)

    def box(x: int, y: int, rx: float, ry: float) -> tuple[float, float, float, float]:
        return (x - rx, y - ry, x + rx, y + ry)

    # A line of width t centred on the outline, as a stroke of that width along it would be.
    ring = max(2, r // 12)
    draw.ellipse(box(cx, cy, r + ring / 2, r + ring / 2), fill="white", outline="black", width=ring)
    for dx in (-r // 3, r // 3):
        draw.ellipse(box(cx + dx, cy - r // 4, r // 6, r // 6), fill="black")
    mouth = max(2, r // 10)
    draw.arc(
        box(cx, cy + r // 5, r // 2 + mouth / 2, r // 3 + mouth / 2),
        0,
        180,
        fill="black",
        width=mouth,
    )
    return np.asarray(img)


def caption(rgb: np.ndarray, share: float = 0.2, colour: int = 255) -> np.ndarray:
    """A meme's caption band: a band of ``colour`` ``share`` of the height added above the
    picture, with a line of bold text in the opposite colour across most of its width."""
    from PIL import ImageDraw, ImageFont

    h, w = rgb.shape[:2]
    band = max(8, round(h * share))
    out = Image.fromarray(pad(rgb, band, 0, 0, 0, colour))
    ink = 255 - colour
    size = max(6, band * 2 // 5)
    font = ImageFont.load_default(size=size)
    text = "SHARE BEFORE THEY DELETE IT"
    draw = ImageDraw.Draw(out)
    # Shrink until the line fits in 90% of the width.
    while size > 6 and draw.textlength(text, font=font) > 0.9 * w:
        size -= 2
        font = ImageFont.load_default(size=size)
    x = (w - draw.textlength(text, font=font)) / 2
    draw.text(
        (x, (band - size) / 2),
        text,
        fill=(ink,) * 3,
        font=font,
        stroke_width=1,
        stroke_fill=(ink,) * 3,
    )
    return np.asarray(out)


def news_strip(rgb: np.ndarray, share: float = 0.18) -> np.ndarray:
    """A news channel's strip laid over the bottom of the picture (it hides that part): dark,
    with a line of white text."""
    from PIL import ImageDraw, ImageFont

    img = Image.fromarray(np.ascontiguousarray(rgb))
    w, h = img.size
    top = h - max(8, round(h * share))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, top, w, h), fill=(24, 24, 40))
    size = max(6, (h - top) * 2 // 5)
    draw.text(
        (w // 20, top + (h - top - size) / 2),
        "BREAKING: FOOTAGE FROM THE SCENE",
        fill=(255, 255, 255),
        font=ImageFont.load_default(size=size),
    )
    return np.asarray(img)


def tilt(rgb: np.ndarray, degrees: float = 5.0) -> np.ndarray:
    """Rotated by a few degrees in place (the corners it uncovers black), as a re-post
    straightened or skewed by hand."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(img.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=False))


def mirror(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, ::-1]


def flip(rgb: np.ndarray) -> np.ndarray:
    return rgb[::-1]


def rot(rgb: np.ndarray, quarter_turns: int) -> np.ndarray:
    return np.rot90(rgb, quarter_turns)


#: Edit kind -> how it is made from the original's pixels (to file bytes). The names say what
#: is done, in order.
EDITS: dict[str, Callable[[np.ndarray], bytes]] = {
    "re-encode q55": lambda a: jpeg(a, 55),
    "resize 60%": lambda a: jpeg(resize(a, 0.6), 80),
    "crop 4%": lambda a: jpeg(crop(a)),
    "brightness/contrast": lambda a: jpeg(tone(a)),
    "grey": lambda a: jpeg(grey(a)),
    "sticker on a corner": lambda a: jpeg(sticker(a)),
    "mirror": lambda a: jpeg(mirror(a)),
    "flip upside down": lambda a: jpeg(flip(a)),
    "rotate 90": lambda a: jpeg(rot(a, 1)),
    "rotate 180": lambda a: jpeg(rot(a, 2)),
    "rotate 270": lambda a: jpeg(rot(a, 3)),
    "transpose": lambda a: jpeg(a.transpose(1, 0, 2)),
    "letterbox": lambda a: jpeg(letterbox(a)),
    "pillarbox": lambda a: jpeg(pillarbox(a)),
    "white border q60": lambda a: jpeg(border(a), 60),
    "portrait frame": lambda a: jpeg(framed(a, 9 / 16)),
    "landscape frame": lambda a: jpeg(framed(a, 16 / 9)),
    "white portrait frame q60": lambda a: jpeg(framed(a, 9 / 16, 255), 60),
    "mirror+letterbox q60": lambda a: jpeg(letterbox(mirror(a)), 60),
    "mirror+pillarbox q60": lambda a: jpeg(pillarbox(mirror(a)), 60),
    "mirror+portrait frame q60": lambda a: jpeg(framed(mirror(a), 9 / 16), 60),
    "mirror+white border q60": lambda a: jpeg(border(mirror(a)), 60),
    "rotate 90+landscape frame": lambda a: jpeg(framed(rot(a, 1), 16 / 9)),
    "rotate 270+letterbox q60": lambda a: jpeg(letterbox(rot(a, 3)), 60),
    "flip+white border": lambda a: jpeg(border(flip(a))),
    "crop+mirror": lambda a: jpeg(mirror(crop(a, 0.03))),
    "grey+letterbox": lambda a: jpeg(letterbox(grey(a))),
    "caption band": lambda a: jpeg(caption(a)),
    "black caption band": lambda a: jpeg(caption(a, 0.15, 0)),
    "mirror+caption band": lambda a: jpeg(caption(mirror(a))),
    "news strip over bottom": lambda a: jpeg(news_strip(a)),
    "tilt 2 degrees": lambda a: jpeg(tilt(a, 2.0)),
    "tilt 5 degrees": lambda a: jpeg(tilt(a, 5.0)),
    "mirror+sticker": lambda a: jpeg(sticker(mirror(a))),
    "mirror+letterbox+sticker": lambda a: jpeg(sticker(letterbox(mirror(a)))),
}
#: The kinds that are mirrored (or flipped) copies with bars, re-encoded: none matched before
#: the trimmed picture was tried in its dihedral orientations.
MIRRORED_WITH_BARS = (
    "mirror+letterbox q60",
    "mirror+pillarbox q60",
    "mirror+portrait frame q60",
    "mirror+white border q60",
    "flip+white border",
)


def analyze_bytes(data: bytes) -> MediaAnalysis:
    return analyze_image_bytes(
        data, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    )


@dataclass(frozen=True)
class Edit:
    original: int  # index into the originals
    kind: str
    analysis: MediaAnalysis


@dataclass
class EvasionSet:
    names: list[str]  # the originals' names
    originals: list[MediaAnalysis]  # as confirmed
    edits: list[Edit]
    unrelated: list[tuple[str, MediaAnalysis]]


def build_set(
    photos: list[Photo],
    unrelated: Iterable[tuple[str, bytes]] = (),
    kinds: Iterable[str] | None = None,
    extra: Iterable[tuple[int, str, bytes]] = (),
) -> EvasionSet:
    """Analyse every original (a JPEG q 92 of its pixels), each of its edits, the ``extra``
    edits (original's position, kind, file bytes: :func:`corpus_edits`) and the unrelated
    photos."""
    chosen = list(EDITS) if kinds is None else list(kinds)
    originals = [analyze_bytes(jpeg(p.rgb, 92)) for p in photos]
    edits = [
        Edit(i, kind, analyze_bytes(EDITS[kind](p.rgb)))
        for i, p in enumerate(photos)
        for kind in chosen
    ]
    edits += [Edit(i, kind, analyze_bytes(data)) for i, kind, data in extra]
    others = [(name, analyze_bytes(data)) for name, data in unrelated]
    return EvasionSet([p.name for p in photos], originals, edits, others)


# --------------------------------------------------------------------------------------------
# measuring


def confirmed_index(
    analyses: list[MediaAnalysis], policy: MatchPolicy, skip: int | None = None
) -> HashIndex:
    """A hash list holding each analysis's stored signals (ref: its position), except ``skip``."""
    index = HashIndex()
    entry = 0
    for ref, a in enumerate(analyses):
        if ref == skip:
            continue
        for sig in a.signals:
            entry += 1
            index_signal(index, entry, sig, ref, policy)
    return index


SignalFilter = Callable[[Signal], bool]


def _query(index: HashIndex, a: MediaAnalysis, policy: MatchPolicy, keep: SignalFilter | None):
    signals = a.signals if keep is None else [s for s in a.signals if keep(s)]
    known = find_known(index, signals, a.kind, policy)
    return None if known is None else known.evidence


@dataclass
class KindResult:
    total: int = 0
    matched: int = 0
    how: dict[str, int] = field(default_factory=dict)  # variant that matched -> count
    missed: list[str] = field(default_factory=list)  # originals' names


@dataclass
class Measurement:
    by_kind: dict[str, KindResult]
    false_matches: list[str]  # "query -> reference (how)"
    comparisons: int  # query-reference pairs that must not match

    @property
    def recall(self) -> float:
        total = sum(r.total for r in self.by_kind.values())
        return sum(r.matched for r in self.by_kind.values()) / total if total else 0.0


def measure(
    es: EvasionSet, policy: MatchPolicy | None = None, keep: SignalFilter | None = None
) -> Measurement:
    """Recall by edit kind (the edit matches its own original, with every original confirmed)
    and false matches: an edit or original matching a different original (looked up with its
    own original left out of the list), an unrelated photo matching any original, an original
    matching any unrelated photo confirmed. ``keep``: only the query signals it accepts (to
    compare query vocabularies)."""
    policy = policy or MatchPolicy()
    everything = confirmed_index(es.originals, policy)
    by_kind: dict[str, KindResult] = {}
    false: list[str] = []
    comparisons = 0
    for e in es.edits:
        r = by_kind.setdefault(e.kind, KindResult())
        r.total += 1
        ev = _query(everything, e.analysis, policy, keep)
        if ev is not None and ev.ref == e.original:
            r.matched += 1
            how = f"{ev.algorithm} {ev.variant or 'plain'}"
            r.how[how] = r.how.get(how, 0) + 1
        else:
            r.missed.append(es.names[e.original])
    n = len(es.originals)
    for i in range(n):
        without = confirmed_index(es.originals, policy, skip=i)
        queries = [("original", es.originals[i])]
        queries += [(e.kind, e.analysis) for e in es.edits if e.original == i]
        for label, a in queries:
            comparisons += n - 1
            ev = _query(without, a, policy, keep)
            if ev is not None:
                false.append(f"{es.names[i]} {label} -> {es.names[ev.ref or 0]} ({ev.describe()})")
    for name, a in es.unrelated:
        comparisons += n
        ev = _query(everything, a, policy, keep)
        if ev is not None:
            false.append(f"{name} -> {es.names[ev.ref or 0]} ({ev.describe()})")
    if es.unrelated:
        unrelated_index = confirmed_index([a for _, a in es.unrelated], policy)
        for i, a in enumerate(es.originals):
            comparisons += len(es.unrelated)
            ev = _query(unrelated_index, a, policy, keep)
            if ev is not None:
                false.append(f"{es.names[i]} -> {es.unrelated[ev.ref or 0][0]} ({ev.describe()})")
    return Measurement(by_kind, false, comparisons)


def format_table(columns: dict[str, Measurement]) -> list[str]:
    """Lines of a recall table: one row per edit kind, one column per measurement."""
    heads = list(columns)
    first = next(iter(columns.values()))
    width = max(len(k) for k in first.by_kind) + 2
    lines = ["edit kind".ljust(width) + "".join(f"{h:>16}" for h in heads)]
    for kind in first.by_kind:
        cells = []
        for m in columns.values():
            r = m.by_kind[kind]
            cells.append(f"{r.matched:>4}/{r.total:<4} {r.matched / r.total:>5.0%}")
        lines.append(kind.ljust(width) + "".join(f"{c:>16}" for c in cells))
    lines.append(
        "all".ljust(width)
        + "".join(
            f"{sum(r.matched for r in m.by_kind.values()):>4}/"
            f"{sum(r.total for r in m.by_kind.values()):<4} {m.recall:>5.0%}"
            for m in columns.values()
        )
    )
    lines.append(
        "false matches".ljust(width)
        + "".join(f"{len(m.false_matches):>6} of {m.comparisons:<6}" for m in columns.values())
    )
    return lines


def without_turned_parts(sig: Signal) -> bool:
    """Query filter: the query vocabulary before the trimmed picture, the halves and the pHash
    were tried turned and mirrored (``dih:<code>:trimmed``, ``dih:<code>:<half>`` and the
    pHash's ``dih:<name>`` left out; the whole picture's turned PDQs stay)."""
    if not is_dihedral(sig.variant):
        return True
    return sig.algorithm is Algorithm.PDQ and dihedral_parts(sig.variant)[1] == ""


def report(corpus: Path | None) -> list[str]:
    """The lines ``hashdesk bench evasion`` prints: recall by edit kind with every query and
    without the turned trimmed picture and halves, false matches, the margin (false matches
    at looser PDQ thresholds), and what the set held."""
    import time

    photos = load_photos(corpus)
    if not photos:
        where = "no corpus given" if corpus is None else f"no corpus at {corpus}"
        return [f"evasion: skipped (no photos: scikit-image is not installed, {where})"]
    unrelated = unrelated_files(corpus)
    started = time.perf_counter()
    es = build_set(photos, unrelated, extra=corpus_edits(corpus, photos))
    analysed = len(es.originals) + len(es.edits) + len(es.unrelated)
    by_kind = {e.kind for e in es.edits}
    built = time.perf_counter() - started
    policy = MatchPolicy()
    every = measure(es, policy)
    before = measure(es, policy, keep=without_turned_parts)
    lines = [
        f"evasion set: {len(es.originals)} originals ({', '.join(es.names)}), "
        f"{len(es.edits)} edits of {len(by_kind)} kinds, {len(es.unrelated)} unrelated photos"
        + ("" if es.unrelated else " (corpus not found: labelme set skipped)")
        + f"; {analysed} analyses in {built:.1f} s ({1000 * built / analysed:.1f} ms each)",
        *format_table({"no turned parts": before, "every query": every}),
    ]
    for t in (36, 41, 46):
        loose = measure(es, MatchPolicy(pdq_threshold=t))
        lines.append(
            f"margin: PDQ threshold {t} (matching uses {policy.pdq_threshold}): "
            f"{len(loose.false_matches)} false matches of {loose.comparisons}, "
            f"recall {loose.recall:.0%}"
        )
    for t in (12, 14):
        loose = measure(es, MatchPolicy(phash_threshold=t))
        lines.append(
            f"margin: pHash threshold {t} (matching uses {policy.phash_threshold}): "
            f"{len(loose.false_matches)} false matches of {loose.comparisons}, "
            f"recall {loose.recall:.0%}"
        )
    for kind, r in every.by_kind.items():
        if r.missed:
            lines.append(f"missed, {kind}: {', '.join(r.missed)}")
    lines += [f"FALSE MATCH: {f}" for f in every.false_matches]
    return lines
