"""The views' set: real photos hidden in the things the views of a picture see through (a
shaded coloured frame, a blurred 9:16 re-framing, an inset over another photo, a filmed screen,
a crop of a few percent), and how well the hash list catches them once each photo is
confirmed. No Qt, no SQL.

Used by ``tests/unit/test_views.py`` (the makers) and ``hashdesk bench views`` (the recall
table, with and without the views, against the full hash list and against one partner PDQ per
photo; false matches of unrelated photos made the same ways; the originals against each other).
The photos are the evasion set's (:func:`app.tools.evasion_set.load_photos`); everything is
deterministic. Pictures are drawn with Pillow and numpy.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from app.core.hashing.imaging import analyze_image_bytes
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, find_match, index_signal
from app.core.matching.signal_types import is_view
from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind
from app.tools.evasion_set import UNRELATED_GLOB, crop, load_photos


def resized(a: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize((w, h), Image.BILINEAR))


def in_shaded_frame(
    a: np.ndarray,
    colour: tuple[int, int, int] = (200, 30, 40),
    sides: tuple[float, float, float, float] = (0.08, 0.05, 0.1, 0.06),
) -> np.ndarray:
    """The picture inside a coloured frame, uneven per side (top, bottom, left, right shares)
    and shaded top to bottom (no flat bar: the bars' detector leaves it alone)."""
    h, w = a.shape[:2]
    t, b, left, r = (round(s * (h if i < 2 else w)) for i, s in enumerate(sides))
    out = np.zeros((h + t + b, w + left + r, 3), np.float32)
    out[:] = colour
    out *= np.linspace(0.6, 1.0, out.shape[0])[:, None, None]
    framed = out.astype(np.uint8)
    framed[t : t + h, left : left + w] = a
    return framed


def in_blurred_portrait(a: np.ndarray, width: int = 720, height: int = 1280) -> np.ndarray:
    """The picture across a 9:16 frame over a blurred, stretched copy of itself."""
    bg = Image.fromarray(np.ascontiguousarray(a)).resize((width, height))
    out = np.array(bg.filter(ImageFilter.GaussianBlur(20)))
    nh = round(a.shape[0] * width / a.shape[1])
    y = (height - nh) // 2
    out[y : y + nh] = resized(a, width, nh)
    return out


def as_inset(
    a: np.ndarray, background: np.ndarray, share: float = 0.45, outline: int = 4
) -> np.ndarray:
    """The picture as an inset (``share`` of the width, at most 60 % of the height, with a
    white outline ``outline`` px wide) over another picture, 1280x720."""
    out = resized(background, 1280, 720).copy()
    h, w = a.shape[:2]
    nw = round(1280 * share)
    nh = round(h * nw / w)
    if nh > 0.6 * 720:
        nh = round(720 * 0.6)
        nw = round(w * nh / h)
    x, y = 1280 - nw - 60, 60
    out[y - outline : y + nh + outline, x - outline : x + nw + outline] = 255
    out[y : y + nh, x : x + nw] = resized(a, nw, nh)
    return out


#: Where the screen's corners land in the 1280x720 picture of the room (clockwise from the
#: top left): seen from a little to the left and below.
SCREEN_CORNERS = ((260, 110), (1050, 160), (1010, 600), (300, 640))


def _perspective_coefficients(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """Pillow's PERSPECTIVE coefficients mapping each output point ``dst`` to input ``src``."""
    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coeffs = np.linalg.solve(np.array(rows, np.float64), src.reshape(8).astype(np.float64))
    return tuple(float(c) for c in coeffs)


def on_screen(a: np.ndarray, seed: int = 0) -> np.ndarray:
    """The picture on a screen filmed at an angle (:data:`SCREEN_CORNERS`) in a dark room,
    with sensor noise."""
    h, w = a.shape[:2]
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], np.float64)
    coeffs = _perspective_coefficients(src, np.array(SCREEN_CORNERS, np.float64))
    img = Image.fromarray(np.ascontiguousarray(a))
    warped = img.transform((1280, 720), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    mask = Image.new("L", (w, h), 255).transform(
        (1280, 720), Image.PERSPECTIVE, coeffs, Image.BILINEAR
    )
    room = Image.new("RGB", (1280, 720), (25, 25, 25))
    room.paste(warped, (0, 0), mask)
    noise = np.random.default_rng(seed).normal(0, 6, (720, 1280, 3))
    return np.clip(np.asarray(room).astype(np.float32) + noise, 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def analyze_bytes(data: bytes) -> MediaAnalysis:
    return analyze_image_bytes(
        data, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    )


#: Edit kind -> (how it is made from an original and the photo it may be laid over, JPEG
#: quality).
EDITS = {
    "shaded coloured frame": (lambda a, _: in_shaded_frame(a), 85),
    "uneven light frame q60": (
        lambda a, _: in_shaded_frame(a, (250, 250, 250), (0.03, 0.1, 0.05, 0.15)),
        60,
    ),
    "blurred 9:16 band": (lambda a, _: in_blurred_portrait(a), 85),
    "inset, outlined": (lambda a, under: as_inset(a, under), 85),
    "inset, no outline": (lambda a, under: as_inset(a, under, outline=0), 85),
    "filmed screen": (lambda a, _: on_screen(a), 85),
    "crop 2%": (lambda a, _: crop(a, 0.02), 85),
    "crop 3%": (lambda a, _: crop(a, 0.03), 85),
    "crop 4%": (lambda a, _: crop(a, 0.04), 85),
    "crop 6%": (lambda a, _: crop(a, 0.06), 85),
}


def _index(
    analyses: list[MediaAnalysis], *, partner: bool = False, skip: int | None = None
) -> HashIndex:
    """The hash list after each original was confirmed (``partner``: only its plain PDQ, as a
    partner's list gives it; ``skip``: but that one)."""
    index = HashIndex()
    for ref, a in enumerate(analyses):
        if ref == skip:
            continue
        for i, sig in enumerate(a.signals):
            if partner and (sig.algorithm is not Algorithm.PDQ or sig.variant):
                continue
            index_signal(index, ref * 10_000 + i, sig, ref, MatchPolicy())
    return index


def report(corpus: Path | None) -> list[str]:
    """The recall table by edit kind and the false matches (``corpus``: the pdq-images folder,
    for its originals and unrelated photos)."""
    photos = load_photos(corpus)
    if not photos:
        return ["views: no photos (scikit-image not installed and no corpus)"]
    originals = [analyze_bytes(encode(p.rgb)) for p in photos]
    full, partner = _index(originals), _index(originals, partner=True)
    n = len(photos)
    policy = MatchPolicy()
    lines = [
        f"views: {n} originals; matched by the full hash list without / with the views "
        "(through a view) | by one partner PDQ a photo without / with the views"
    ]
    for kind, (make, quality) in EDITS.items():
        counts = [0, 0, 0, 0, 0]
        for i, p in enumerate(photos):
            under = photos[(i + 3) % n].rgb  # another original: matching it is no error
            a = analyze_bytes(encode(make(p.rgb, under), quality))
            plain = [s for s in a.signals if not is_view(s.variant)]
            for k, (index, sigs) in enumerate(
                ((full, plain), (full, a.signals), (partner, plain), (partner, a.signals))
            ):
                ev = find_match(index, sigs, MediaKind.IMAGE, policy)
                hit = ev is not None and ev.ref == i
                counts[(0, 1, 3, 4)[k]] += hit
                if k == 1 and hit and ev is not None and is_view(ev.variant):
                    counts[2] += 1
        b, w, v, pb, pw = counts
        lines.append(f"  {kind:24} {b:2}/{n} -> {w:2}/{n} ({v:2}) | {pb:2}/{n} -> {pw:2}/{n}")
    unrelated = (
        [np.asarray(Image.open(q).convert("RGB")) for q in sorted(corpus.glob(UNRELATED_GLOB))]
        if corpus is not None and corpus.is_dir()
        else []
    )
    false = through_view = tried = 0
    for k, u in enumerate(unrelated):
        other = unrelated[(k + 1) % len(unrelated)]
        for make, quality in EDITS.values():
            a = analyze_bytes(encode(make(u, other), quality))
            tried += 1
            ev = find_match(full, a.signals, MediaKind.IMAGE, policy)
            false += ev is not None
            through_view += ev is not None and is_view(ev.variant)
    lines.append(
        f"  unrelated photos ({len(unrelated)}, each made the {len(EDITS)} ways: {tried} "
        f"queries): {false} false matches ({through_view} through a view)"
    )
    cross = 0
    for i, a in enumerate(originals):
        ev = find_match(_index(originals, skip=i), a.signals, MediaKind.IMAGE, policy)
        cross += ev is not None
    lines.append(f"  originals with their views against the others ({n}): {cross} matches")
    return lines
