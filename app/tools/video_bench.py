"""The video part of ``hashdesk bench``: figures, not checks (app/tools/bench.py prints them).

Each clip is measured in rounds, every way of decoding once a round (interleaved, so a busy
machine weighs on all of them alike), and the fastest round of each is kept:

* ``hash``: :func:`app.core.video.analysis.analyze_video` as ingest runs it (parallel segments),
and in
  one pass;
* ``selective``: decoding the sampled frames only, as analysis does, without hashing;
* ``floor``: decoding every frame (PyAV, FFmpeg's own threads), the floor under any hashing
  that decodes everything;
* ``dense`` (:func:`bench_dense`): every frame hashed, as a confirmed video is after its
  confirm, on a thread of its own, with the rows it keeps.

A minute of the corpus's H.264 is its 720p clip (4 s) copied end to end, packets as they are
(no re-encoding, timestamps shifted), so the minute has the clip's own GOPs and B-frames.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from app.core.ingest.media import analyze_file
from app.core.model.domain import Algorithm
from app.core.video.analysis import analyze_video
from app.core.video.decode import _segment_count, decode_samples
from app.tools.video_writer import write_mp4

ROUNDS = 3


def write_synthetic_clip(path: Path, seconds: int = 60, size=(1280, 720), fps=30.0) -> None:
    """A moving synthetic clip (mp4v, :func:`app.tools.video_writer.write_mp4`: a keyframe
    every 12 frames, no B-frames): a scrolling texture, a new colouring every 5 s, a white disc
    crossing it."""
    w, h = size
    rng = np.random.default_rng(1)
    small = Image.fromarray(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8))
    base = np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))
    yy, xx = np.mgrid[0:h, 0:w]
    # The other scenes' colourings: the first channel through a per-scene colour table.
    levels = np.arange(256)
    tables = [
        np.stack([(levels * k) % 256, 255 - levels, (levels * (k + 2)) % 256], axis=1).astype(
            np.uint8
        )
        for k in range(4)
    ]

    def frames():
        for i in range(int(seconds * fps)):
            frame = np.roll(base, (i * 3) % w, axis=1)
            scene = (i // int(fps * 5)) % 4  # a new "scene" every 5 s
            frame = tables[scene][frame[:, :, 0]] if scene else frame.copy()
            cx, cy = (i * 7) % w, (i * 5) % h
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 80**2] = (255, 255, 255)
            yield frame

    write_mp4(path, frames(), fps)


def repeat_clip(src: Path, dst: Path, seconds: float) -> int:
    """``src``'s video packets, and its sound's when it has sound, copied end to end into
    ``dst`` until it lasts ``seconds``: the same encoded frames and sound, timestamps shifted by
    each stream's own length each time. Returns the number of copies."""
    import av

    with av.open(str(src)) as source:
        streams = [source.streams.video[0], *source.streams.audio[:1]]
        packets: dict[int, list[tuple[bytes, int, int, int, bool]]] = {s.index: [] for s in streams}
        for p in source.demux(*streams):
            if p.size and p.pts is not None and p.dts is not None:
                packets[p.stream.index].append(
                    (bytes(p), p.pts, p.dts, p.duration or 0, p.is_keyframe)
                )
        spans = {
            i: max(p[1] + p[3] for p in ps) - min(p[1] for p in ps)
            for i, ps in packets.items()
            if ps
        }
        video = streams[0]
        if video.time_base is None or video.index not in spans:
            raise ValueError(f"{src.name}: no time base or no video packets")
        copies = max(1, round(seconds / float(spans[video.index] * video.time_base)))
        with av.open(str(dst), "w") as out:
            outs = {s.index: out.add_stream_from_template(s) for s in streams if s.index in spans}
            for n in range(copies):
                for s in streams:
                    if s.index not in spans:
                        continue
                    for data, pts, dts, duration, key in packets[s.index]:
                        packet = av.Packet(data)
                        shift = n * spans[s.index]
                        packet.pts, packet.dts = pts + shift, dts + shift
                        packet.duration = duration
                        packet.time_base = s.time_base
                        packet.stream = outs[s.index]
                        packet.is_keyframe = key
                        out.mux(packet)
    return copies


def _decode_every_frame(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def bench_file(path: Path, rounds: int = ROUNDS) -> dict:
    """Seconds for each way of decoding ``path`` (fastest of ``rounds`` interleaved rounds),
    with the frames each decoded."""
    size = path.stat().st_size
    counts: dict[str, int] = {}

    def analyze(segments: int | None) -> Callable[[], None]:
        def run() -> None:
            a = analyze_video(path, "0" * 64, "0" * 32, size, segments=segments)
            plain = [s for s in a.signals if s.algorithm == Algorithm.PDQ_FRAME and not s.variant]
            counts["samples"] = len(plain)
            counts["duration"] = round(a.duration or 0)
            counts["width"], counts["height"] = a.width or 0, a.height or 0

        return run

    def selective() -> None:
        d = decode_samples(path, keep=False)
        counts["frames"], counts["decoded"] = d.frames, d.decoded

    def floor() -> None:
        counts["floor_frames"] = _decode_every_frame(path)

    def ingest() -> None:
        a = analyze_file(path)
        counts["sound_blocks"] = sum(
            1 for s in a.signals if s.algorithm is Algorithm.AUDIO and not s.variant
        )

    def before_views() -> None:
        # The ingest analysis as it was before the views and centres (issue 22), this run.
        from app.core.video import frames

        frames.GEOMETRY = False
        try:
            analyze_file(path)
        finally:
            frames.GEOMETRY = True

    ways = {
        "ingest": ingest,
        "ingest_before": before_views,
        "hash": analyze(None),
        "one_pass": analyze(1),
        "selective": selective,
        "floor": floor,
    }
    selective()  # the file into the page cache
    best = {name: float("inf") for name in ways}
    for _ in range(rounds):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {
        **{f"{name}_seconds": round(s, 3) for name, s in best.items()},
        **counts,
        "segments": _segment_count(None, counts["samples"]),
    }


def bench_video(seconds: int = 60, size: tuple[int, int] = (1280, 720)) -> dict:
    """The synthetic ``seconds`` of 720p (mp4v, 30 fps), written to a temp dir and measured."""
    with tempfile.TemporaryDirectory(prefix="hashdesk-bench-") as tmp:
        clip = Path(tmp) / "bench.mp4"
        write_synthetic_clip(clip, seconds, size)
        return {**bench_file(clip), "codec": "mp4v", "size": f"{size[0]}x{size[1]}"}


def bench_corpus_minute(clip: Path, seconds: int = 60) -> dict:
    """A minute of the corpus's H.264: ``clip`` repeated (:func:`repeat_clip`) and measured."""
    with tempfile.TemporaryDirectory(prefix="hashdesk-bench-") as tmp:
        minute = Path(tmp) / f"{clip.stem}-minute.mp4"
        copies = repeat_clip(clip, minute, seconds)
        return {**bench_file(minute), "codec": "h264", "copies": copies, "clip": clip.name}


def bench_frame_pdq(rgb: np.ndarray, repeats: int = 20) -> dict:
    """Milliseconds per frame: our PDQ (plain; and the sampled-frame hashing analysis runs:
    luma once, plain and 7 dihedral hashes) against pdqhash's ``compute`` and
    ``compute_dihedral`` when it is installed (``None`` otherwise)."""
    from app.core.hashing.pdq import pdq_dihedral_from_rgb, pdq_from_rgb

    def per_call(fn: Callable[[], object]) -> float:
        fn()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            best = min(best, (time.perf_counter() - t0) / repeats)
        return round(1000 * best, 2)

    rgb = np.ascontiguousarray(rgb)
    out: dict = {
        "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
        "ours_ms": per_call(lambda: pdq_from_rgb(rgb)),
        "ours_dihedral_ms": per_call(lambda: pdq_dihedral_from_rgb(rgb)),
        "pdqhash_ms": None,
        "pdqhash_dihedral_ms": None,
    }
    try:
        import pdqhash  # the C++ reference binding: a test oracle, not a dependency
    except ImportError:
        return out
    out["pdqhash_ms"] = per_call(lambda: pdqhash.compute(rgb))
    out["pdqhash_dihedral_ms"] = per_call(lambda: pdqhash.compute_dihedral(rgb))
    return out


def _stream_frames(path: Path) -> int:
    """Frames of the video stream, counted from its packets (no decoding)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size)


def bench_dense(clip: Path, minutes: float) -> dict:
    """Dense hashing (:func:`app.core.video.dense.dense_frame_signals`, as a confirmed video
    gets it) of ``clip`` copied end to end (:func:`repeat_clip`) until it lasts ``minutes``:
    seconds, frames, rows kept. It runs on its own thread, as in the application (never the
    GUI thread); meanwhile the calling thread ticks every 10 ms and the longest gap between
    two ticks is reported (what the GUI thread would feel of it)."""
    import threading

    from app.core.video.dense import dense_frame_signals

    with tempfile.TemporaryDirectory(prefix="hashdesk-bench-") as tmp:
        long = Path(tmp) / f"{clip.stem}-dense.mp4"
        copies = repeat_clip(clip, long, minutes * 60)
        frames = _stream_frames(long)
        out: dict = {}
        done = threading.Event()

        def work() -> None:
            t0 = time.perf_counter()
            out["signals"] = dense_frame_signals(long, time_budget=4 * 3600.0)
            out["seconds"] = time.perf_counter() - t0
            out["thread"] = threading.current_thread().name
            done.set()

        worker = threading.Thread(target=work, name="dense-frames", daemon=True)
        worker.start()
        gaps = []
        last = time.perf_counter()
        while not done.wait(0.01):
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
        worker.join()
    signals = out["signals"]
    plain = sum(1 for s in signals if not s.variant)
    duration = max((s.frame_ts or 0.0) for s in signals) if signals else 0.0
    return {
        "clip": clip.name,
        "copies": copies,
        "frames": frames,
        "minutes": round(duration / 60, 2),
        "seconds": round(out["seconds"], 1),
        "fps": round(frames / out["seconds"], 1) if out["seconds"] else 0.0,
        "rows": len(signals),
        "plain": plain,
        "trimmed": len(signals) - plain,
        "rows_per_minute": round(len(signals) / max(duration / 60, 1e-9), 1),
        "thread": out["thread"],
        "main_thread": "MainThread",
        "max_tick_gap_ms": round(1000 * max(gaps, default=0.0), 1),
        "p99_tick_gap_ms": round(1000 * float(np.percentile(gaps, 99)), 1) if gaps else 0.0,
    }
