"""`hashdesk bench runs`: the run rule (partial copies, :mod:`app.core.matching.frame_runs`)
measured on real media, as ingest meets it.

Positives: compilations written with PyAV (:func:`app.tools.video_writer.write_mp4`): a photo
slideshow, then ``seconds`` of a corpus video (from its 5th second on, at 1x or sped up), then
another slideshow, matched by :func:`app.core.matching.match_rules.find_known` against an index
holding the corpus video as a confirm puts it in the hash list (its sampled frames, about one a
second), and against one holding every frame of it (a dense reference).

Negatives: every corpus video against the references of the other families (chair, pattern,
doorknob, the padded test clip) and the compilations' slideshows alone against every reference;
besides the verdict, the longest chance chain each finds (any length: the margin under the
minimums).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from app.core.hashing.pdq import luma_from_rgb, pdq_from_luma
from app.core.ingest.media import analyze_file
from app.core.matching.frame_runs import RUN_MIN_FRAMES, RUN_MIN_SECONDS, find_runs
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import (
    MatchPolicy,
    Query,
    find_known,
    index_signal,
    look_up,
)
from app.core.model.domain import Algorithm, MediaKind, Signal
from app.tools.video_writer import write_mp4

SIZE = (480, 720)  # the chair clips' own size (W, H): a compilation is cut to one size
FPS = 30
PHOTOS = (
    "labelme-subset__q0003.jpg",
    "labelme-subset__q0004.jpg",
    "labelme-subset__q0122.jpg",
    "labelme-subset__q0291.jpg",
    "labelme-subset__q0746.jpg",
    "labelme-subset__q1050.jpg",
    "labelme-subset__q2821.jpg",
    "bridge-mods__aaa-orig.jpg",
    "misc-images__modes__original.jpg",
    "pen-and-coaster.png",
)


def family(name: str) -> str:
    return name.split("-")[0]


def slideshow(paths: list[Path], seconds_each: float, size=SIZE) -> Iterator[np.ndarray]:
    """Photos one after another, each slowly zoomed (a slideshow's pan), cut to ``size``."""
    w, h = size
    n = round(seconds_each * FPS)
    for p in paths:
        im = Image.open(p).convert("RGB")
        for k in range(n):
            z = 1.0 + 0.15 * k / n
            cw, ch = im.width / z, im.height / z
            x0, y0 = (im.width - cw) / 2, (im.height - ch) / 2
            box = (x0, y0, x0 + cw, y0 + ch)
            yield np.asarray(im.resize((w, h), Image.Resampling.BILINEAR, box=box))


def video_part(
    path: Path, start: float, seconds: float, speed: float = 1.0, size=SIZE
) -> Iterator[np.ndarray]:
    """``seconds`` of output from ``path``'s ``start`` on, played at ``speed`` (frames picked),
    cut to ``size``."""
    import av

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if f.time is None or f.time < start:
                continue
            if f.time > start + seconds * speed + 1:
                break
            frames.append(f.to_ndarray(format="rgb24"))
    for k in range(round(seconds * FPS)):
        i = min(len(frames) - 1, round(k * speed))
        im = Image.fromarray(frames[i])
        yield (
            np.asarray(im.resize(size, Image.Resampling.BILINEAR)) if im.size != size else frames[i]
        )


def write_compilation(path: Path, photos: Path, middle: Iterable[np.ndarray]) -> Path:
    """A compilation: 8 s of slides (4 photos of :data:`PHOTOS` in ``photos``), the frames of
    ``middle``, 8 s of 4 other slides; at :data:`SIZE`, :data:`FPS`."""
    paths = [photos / p for p in PHOTOS]
    write_mp4(path, [*slideshow(paths[:4], 2.0), *middle, *slideshow(paths[4:8], 2.0)], FPS)
    return path


def dense_signals(path: Path) -> list[Signal]:
    """Every frame of a video hashed (a dense reference): plain frame PDQ with its time."""
    import av

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            value, quality = pdq_from_luma(luma_from_rgb(f.to_ndarray(format="rgb24")))
            out.append(Signal(Algorithm.PDQ_FRAME, value, quality, round(float(f.time or 0), 3)))
    return out


def _index(refs: dict[int, list[Signal]], policy: MatchPolicy) -> HashIndex:
    index = HashIndex()
    entry = 0
    for ref, signals in refs.items():
        for sig in signals:
            entry += 1
            index_signal(index, entry, sig, ref, policy)
    return index


def shuffled_seconds(path: Path, seed: int, size=SIZE) -> Iterator[np.ndarray]:
    """Every whole second of a video, in a shuffled order (each second's frames in order):
    every sampled frame of it is in the original, at the wrong place."""
    import av

    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    seconds = [frames[i : i + FPS] for i in range(0, len(frames) - FPS + 1, FPS)]
    order = np.random.default_rng(seed).permutation(len(seconds))
    for k in order.tolist():
        for rgb in seconds[k]:
            im = Image.fromarray(rgb)
            yield rgb if im.size == size else np.asarray(im.resize(size))


def hit_frames(index: HashIndex, signals: list[Signal], policy: MatchPolicy) -> int:
    """How many of the plain frames hit some reference at all."""
    queries = [
        Query.of(s, MediaKind.VIDEO, policy)
        for s in signals
        if s.algorithm is Algorithm.PDQ_FRAME and s.variant == ""
    ]
    return sum(1 for lk in look_up(index, queries) if lk.hits)


def longest_chain(index: HashIndex, signals: list[Signal], policy: MatchPolicy) -> tuple:
    """The longest chance chain (frames, seconds) of any reference in the plain frame set, at
    any length."""
    queries = [
        Query.of(s, MediaKind.VIDEO, policy)
        for s in signals
        if s.algorithm is Algorithm.PDQ_FRAME and s.variant == ""
    ]
    lookups = look_up(index, queries)
    runs = find_runs(
        [(lk.query.signal.frame_ts, lk.hits) for lk in lookups], min_seconds=0, min_frames=2
    )
    if not runs:
        return (0, 0.0)
    return max((r.frames, r.seconds) for r in runs)


def report(videos: Path, photos: Path) -> Iterator[str]:
    policy = MatchPolicy()
    clips = sorted(videos.glob("*.mp4"))
    if not (videos / "chair-orig-22-sd-bar.mp4").is_file() or not photos.is_dir():
        yield f"runs: the reference corpus was not found at {videos.parent}: skipped"
        return
    yield (
        f"run rule: at least {RUN_MIN_SECONDS:g} s and {RUN_MIN_FRAMES} frames; "
        f"{len(clips)} corpus videos, {len(PHOTOS)} photos"
    )
    analysed = {p.name: analyze_file(p).signals for p in clips}
    ids = {name: i + 1 for i, name in enumerate(analysed)}
    # Negatives: each video against the other families' references.
    fired, worst, hits = 0, (0, 0.0), 0
    for name, signals in analysed.items():
        others = {ids[n]: s for n, s in analysed.items() if family(n) != family(name)}
        index = _index(others, policy)
        km = find_known(index, signals, MediaKind.VIDEO, policy)
        if km is not None and km.evidence is not None and km.evidence.partial:
            fired += 1
            yield f"  FALSE: {name}: {km.evidence.describe()}"
        worst = max(worst, longest_chain(index, signals, policy))
        hits += hit_frames(index, signals, policy)
    pairs = sum(
        1 for a in analysed for b in analysed if family(a) != family(b)
    )  # query x reference pairs
    yield (
        f"unrelated corpus videos: {pairs} query x reference pairs, {fired} partial-copy "
        f"matches; {hits} query frames hit an unrelated reference at all; longest chance "
        f"chain {worst[0]} frames over {worst[1]:.1f} s"
    )
    orig = videos / "chair-orig-22-sd-bar.mp4"
    photo_paths = [photos / p for p in PHOTOS]
    everything = _index({ids[n]: s for n, s in analysed.items()}, policy)
    dense = _index({ids[orig.name]: dense_signals(orig)}, policy)
    with tempfile.TemporaryDirectory() as tmp:
        # The slideshows alone: nothing of any reference.
        path = Path(tmp) / "slides.mp4"
        write_mp4(path, slideshow(photo_paths, 3.0), FPS)
        signals = analyze_file(path).signals
        km = find_known(everything, signals, MediaKind.VIDEO, policy)
        chain = longest_chain(everything, signals, policy)
        verdict = km.evidence.describe() if km and km.evidence else "no match"
        yield (
            f"photo slideshow ({len(PHOTOS) * 3} s) against every corpus video: {verdict}; "
            f"longest chance chain {chain[0]} frames over {chain[1]:.1f} s"
        )
        cases = ((4, 1.0, 5.0), (5, 1.0, 5.0), (6, 1.0, 5.0), (8, 1.0, 5.0), (8, 1.0, 5.5))
        # The original's own seconds shuffled: every frame is in it, none in order.
        for seed in (1, 2, 3):
            path = Path(tmp) / f"shuffled-{seed}.mp4"
            write_mp4(path, shuffled_seconds(orig, seed), FPS)
            signals = analyze_file(path).signals
            for label, index in (("sparse", everything), ("dense", dense)):
                km = find_known(index, signals, MediaKind.VIDEO, policy)
                ev = km.evidence if km is not None else None
                said = ev.describe() if ev is not None else "no match"
                chain = longest_chain(index, signals, policy)
                yield (
                    f"{orig.name}'s seconds shuffled (order {seed}), {label} reference: "
                    f"{hit_frames(index, signals, policy)} frames hit; {said}; longest chain "
                    f"{chain[0]} frames over {chain[1]:.1f} s"
                )
        for seconds, speed, start in (*cases, (8, 1.25, 5.0), (6, 0.8, 5.0)):
            path = Path(tmp) / f"comp-{seconds}-{speed}-{start}.mp4"
            write_compilation(path, photos, video_part(orig, start, seconds, speed))
            signals = analyze_file(path).signals
            for label, index in (("sparse", everything), ("dense", dense)):
                km = find_known(index, signals, MediaKind.VIDEO, policy)
                ev = km.evidence if km is not None else None
                said = ev.describe() if ev is not None else "no match"
                yield (
                    f"{seconds} s of {orig.name} from {start:g} s at {speed}x, put at 0:08, "
                    f"{label} reference: {said}"
                )
