"""`hashdesk bench audio`: the sound's fingerprint, measured as ingest meets it.

References (the "confirmed" sounds): synthetic music and espeak-ng speech (when espeak-ng is
installed), 30 s each. Each is edited the ways a re-upload changes sound (:data:`KINDS`: noise
at several SNRs, a re-recording through a room, speed from 0.75x to 1.33x, a level change,
lossy re-encodes at low bit rates, a 10 s clip from the middle), every edit written to a real
file with PyAV and analysed by the ingest path (:func:`app.core.ingest.media.analyze_file`),
then matched by :func:`app.core.matching.match_rules.find_known` against an index holding the
references' blocks as the hash list would (the sound as it is; the speed variants are the
query's).

Negatives: a few hundred unrelated clips (other music, tones and chords, noise of three
colours, speech, the corpus videos' sound cut in pieces), each matched against the
references and against every other negative (its own blocks taken out of the index first).
Every match is counted with its bit error rate, so the table shows recall and false matches
at the threshold in force and at its neighbours: that is how the threshold is chosen.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.core.audio.decode import decode_sound
from app.core.audio.fingerprint import SPEEDS
from app.core.audio.signals import sound_signals
from app.core.ingest.media import analyze_file
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, find_known, index_signal
from app.core.model.domain import Algorithm, MediaKind, Signal
from app.tools import sound_writer as sw

RATE = 22050
SECONDS = 30.0
#: Thresholds (thousandths of a bit error rate) the table shows besides the one in force.
THRESHOLDS = (250, 275, 300, 325, 350)
#: The bench matches with this one and counts at each of :data:`THRESHOLDS`.
PERMISSIVE = 400

_Edit = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Kind:
    name: str
    edit: _Edit
    suffix: str = ".m4a"
    bit_rate: int | None = 96000


def _clip(x: np.ndarray) -> np.ndarray:
    mid = x.shape[0] // 2
    return x[mid - 5 * RATE : mid + 5 * RATE]


KINDS: tuple[Kind, ...] = (
    Kind("noise 20 dB", lambda x: sw.add_noise(x, 20, 1)),
    Kind("noise 10 dB", lambda x: sw.add_noise(x, 10, 2)),
    Kind("noise 5 dB", lambda x: sw.add_noise(x, 5, 3)),
    Kind("noise 0 dB", lambda x: sw.add_noise(x, 0, 4)),
    Kind("room re-recording", lambda x: sw.room(x, RATE, 5)),
    Kind("speed 0.75", lambda x: sw.speed(x, 0.75)),
    Kind("speed 0.8", lambda x: sw.speed(x, 0.8)),
    Kind("speed 0.9", lambda x: sw.speed(x, 0.9)),
    Kind("speed 1.1", lambda x: sw.speed(x, 1.1)),
    Kind("speed 1.25", lambda x: sw.speed(x, 1.25)),
    Kind("speed 1.33", lambda x: sw.speed(x, 1.33)),
    Kind("level -20 dB", lambda x: x * 0.1),
    Kind("AAC 24 kb/s", lambda x: x, ".m4a", 24000),
    Kind("MP3 32 kb/s", lambda x: x, ".mp3", 32000),
    Kind("Opus 12 kb/s", lambda x: x, ".ogg", 12000),
    Kind("10 s from the middle", _clip),
    Kind("room + speed 1.25", lambda x: sw.room(sw.speed(x, 1.25), RATE, 6)),
)

_TEXT = (
    "the morning train left the station before anyone noticed that the bridge was closed "
    "seven people waited in the rain while the radio played an old song about the sea and "
    "a dog barked twice then the lights went out across the whole valley nobody spoke "
    "market prices rose again this week as farmers reported a difficult harvest and "
    "the council promised new roads schools and a library near the river by next summer "
    "children painted the fence blue the teacher laughed and the bell rang for lunch"
)
_WORDS = _TEXT.split()


def _speech(folder: Path, n: int, seconds: float, seed: int) -> list[np.ndarray]:
    """``n`` clips of espeak-ng speech (random sentences, voices and speeds); none when
    espeak-ng is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return []
    r = np.random.default_rng(seed)
    voices = ("en-us", "en-gb", "en-sc", "de", "fr", "es", "it", "nl")
    out = []
    for i in range(n):
        words = " ".join(r.choice(_WORDS, int(seconds * 3.2)).tolist())
        wav = folder / f"speech-{seed}-{i}.wav"
        subprocess.run(
            [
                exe,
                "-v",
                str(r.choice(voices)),
                "-s",
                str(int(r.integers(130, 200))),
                "-p",
                str(int(r.integers(20, 80))),
                "-w",
                str(wav),
                words,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        sound = decode_sound(wav)
        x = _to_rate(sound.samples, 5512)
        out.append(x[: int(seconds * RATE)])
    return out


def _to_rate(x: np.ndarray, rate: int) -> np.ndarray:
    n = int(x.shape[0] * RATE / rate)
    return np.interp(np.arange(n) * rate / RATE, np.arange(x.shape[0]), x).astype(np.float32)


def _corpus_pieces(corpus: Path | None, seconds: float = 5.0) -> list[np.ndarray]:
    """The corpus videos' sound (one file per distinct sound) cut in pieces."""
    if corpus is None or not corpus.is_dir():
        return []
    out = []
    for name in ("chair-orig-22-sd-bar.mp4", "pattern-longer-no-bar.mp4", "doorknob-hd-no-bar.mp4"):
        p = corpus / name
        if not p.is_file():
            continue
        x = _to_rate(decode_sound(p).samples, 5512)
        step = int(seconds * RATE)
        out += [x[i : i + step] for i in range(0, x.shape[0] - step + 1, step)]
    return out


def _negatives(folder: Path, corpus: Path | None) -> list[tuple[str, np.ndarray]]:
    r = np.random.default_rng(99)
    out: list[tuple[str, np.ndarray]] = []
    out += [("music", sw.music(10, 1000 + i, RATE)) for i in range(100)]
    for i in range(40):  # steady, or with a tremolo of 3-8 Hz (every fourth)
        k = int(r.integers(1, 4))
        freqs = tuple(float(f) for f in r.uniform(100, 1500, k))
        x = sw.tone(10, freqs, RATE)
        if i % 4 == 3:
            t = np.arange(x.shape[0]) / RATE
            x = (x * (0.6 + 0.4 * np.sin(2 * np.pi * r.uniform(3, 8) * t))).astype(np.float32)
        out.append(("tone/chord", x))
    out += [("noise", sw.noise(10, 2000 + i, RATE, colour=i % 3)) for i in range(30)]
    out += [("speech", x) for x in _speech(folder, 100, 10, 3000)]
    out += [("corpus sound", x) for x in _corpus_pieces(corpus)]
    return out


def _analyse(path: Path) -> tuple[list[Signal], float]:
    started = time.perf_counter()
    a = analyze_file(path)
    return [s for s in a.signals if s.algorithm is Algorithm.AUDIO], time.perf_counter() - started


def _plain(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if not s.variant]


def _add(index: HashIndex, signals: list[Signal], ref: int, next_id: int, pol) -> tuple[int, list]:
    ids = []
    for s in _plain(signals):
        if index_signal(index, next_id, s, ref, pol):
            ids.append(next_id)
            next_id += 1
    return next_id, ids


def bench_audio(corpus: Path | None = None, refs_music: int = 5, refs_speech: int = 3) -> dict:
    """Recall by kind of edit and false matches by kind of negative, each with its bit error
    rate; the cost per minute of sound. See the module docstring."""
    policy = replace(MatchPolicy(), audio_ber=PERMISSIVE)
    with tempfile.TemporaryDirectory(prefix="hashdesk-audio-bench-") as tmp:
        folder = Path(tmp)
        sources = [("music", sw.music(SECONDS, 10 + i, RATE)) for i in range(refs_music)]
        sources += [("speech", x) for x in _speech(folder, refs_speech, SECONDS, 20)]
        index = HashIndex()
        next_id = 1
        for ref, (_, x) in enumerate(sources, 1):
            p = folder / f"ref-{ref}.m4a"
            sw.write_sound(p, x, RATE)
            sigs, _ = _analyse(p)
            next_id, _ = _add(index, sigs, ref, next_id, policy)
        positives: list[tuple[str, int, int | None]] = []  # kind, ref, BER or None
        for kind in KINDS:
            for ref, (_, x) in enumerate(sources, 1):
                p = folder / f"edit-{ref}{kind.suffix}"
                sw.write_sound(p, kind.edit(x), RATE, bit_rate=kind.bit_rate)
                sigs, _ = _analyse(p)
                k = find_known(index, sigs, MediaKind.AUDIO, policy)
                ok = k is not None and k.evidence is not None and k.evidence.ref == ref
                positives.append((kind.name, ref, k.evidence.distance if ok and k else None))
                wrong = k is not None and k.evidence is not None and k.evidence.ref != ref
                if wrong:
                    positives.append((kind.name + " (wrong reference)", ref, None))
                p.unlink()
        negs = _negatives(folder, corpus)
        neg_sigs = []
        for i, (_, x) in enumerate(negs):
            p = folder / f"neg-{i}.m4a"
            sw.write_sound(p, x, RATE)
            neg_sigs.append(_analyse(p)[0])
            p.unlink()
        against_refs = [_best(index, s, policy) for s in neg_sigs]
        # every negative against every other: all in one index, each one's own taken out
        others = HashIndex()
        owned = []
        nid = 1
        for i, s in enumerate(neg_sigs):
            nid, ids = _add(others, s, 10_000 + i, nid, policy)
            owned.append(ids)
        among = []
        for i, s in enumerate(neg_sigs):
            rows = [(e, sig) for e, sig in zip(owned[i], _plain(s), strict=False)]
            others.remove_many(owned[i])
            among.append(_best(others, s, policy))
            for e, sig in rows:
                index_signal(others, e, sig, 10_000 + i, policy)
        cost = _cost(folder, index, policy)
    return {
        "sources": [k for k, _ in sources],
        "positives": positives,
        "negatives": [k for k, _ in negs],
        "against_refs": against_refs,
        "among": among,
        "cost": cost,
        "threshold": MatchPolicy().audio_ber,
    }


def _best(index: HashIndex, sigs: list[Signal], policy: MatchPolicy) -> int | None:
    k = find_known(index, sigs, MediaKind.AUDIO, policy)
    return k.evidence.distance if k is not None and k.evidence is not None else None


def _cost(folder: Path, index: HashIndex, policy: MatchPolicy) -> dict:
    """A minute of sound (AAC, 48 kHz stereo as a video carries it): decoding, the
    fingerprint with its speed variants, matching against the references; rows stored."""
    x = sw.music(60, 77, RATE)
    p = folder / "minute.m4a"
    sw.write_sound(p, x, RATE, out_rate=48000)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        sound = decode_sound(p)
        t1 = time.perf_counter()
        sigs = sound_signals(sound.samples)
        t2 = time.perf_counter()
        find_known(index, sigs, MediaKind.AUDIO, policy)
        t3 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1, t3 - t2))
    dec, fpr, mat = (min(r[i] for r in runs) for i in range(3))
    plain = len(_plain(sigs))
    return {
        "decode": dec,
        "fingerprint": fpr,
        "match": mat,
        "rows_plain": plain,
        "rows_speed": len(sigs) - plain,
        "index_rows": len(index),
    }


def report(corpus: Path | None = None) -> list[str]:
    """The tables `hashdesk bench audio` prints (and docs/PERFORMANCE.md shows)."""
    r = bench_audio(corpus)
    t = r["threshold"]
    lines = [
        f"references: {len(r['sources'])} sounds of {SECONDS:.0f} s "
        f"({', '.join(sorted(set(r['sources'])))}); threshold in force: BER <= {t / 1000:.3f}",
        "",
        f"| edit | caught at {t / 1000:.3f} | BER of the match (median, worst) |",
        "|---|---|---|",
    ]
    kinds: dict[str, list[int | None]] = {}
    for kind, _, ber in r["positives"]:
        kinds.setdefault(kind, []).append(ber)
    total = caught = 0
    for kind, bers in kinds.items():
        got = [b for b in bers if b is not None and b <= t]
        total += len(bers)
        caught += len(got)
        seen = sorted(b for b in bers if b is not None)
        spread = f"{np.median(seen) / 1000:.3f}, {seen[-1] / 1000:.3f}" if seen else "-"
        lines.append(f"| {kind} | {len(got)}/{len(bers)} | {spread} |")
    lines.append(f"| **all** | **{caught}/{total} ({caught / max(total, 1):.0%})** | |")
    negs = r["negatives"]
    lines += [
        "",
        f"negatives: {len(negs)} clips ("
        + ", ".join(f"{k} {negs.count(k)}" for k in dict.fromkeys(negs))
        + ("" if "corpus sound" in negs else "; the corpus was not found")
        + "); false matches against the references and among themselves, by threshold:",
        "",
        "| threshold | recall | false vs references | false among negatives |",
        "|---|---|---|---|",
    ]
    all_pos = [b for _, _, b in r["positives"]]
    for th in sorted({*THRESHOLDS, t}):
        rec = sum(1 for b in all_pos if b is not None and b <= th)
        fr = sum(1 for b in r["against_refs"] if b is not None and b <= th)
        fa = sum(1 for b in r["among"] if b is not None and b <= th)
        mark = " (in force)" if th == t else ""
        lines.append(
            f"| {th / 1000:.3f}{mark} | {rec}/{len(all_pos)} | {fr}/{len(negs)} | "
            f"{fa}/{len(negs)} |"
        )
    near = sorted(b for b in r["against_refs"] + r["among"] if b is not None)
    by_kind: dict[str, list[int]] = {}
    for kind, a, b in zip(negs, r["against_refs"], r["among"], strict=True):
        by_kind.setdefault(kind, []).extend(x for x in (a, b) if x is not None)
    lines.append("")
    lines.append(
        "lowest BER any negative reached (against references or another negative): "
        + (f"{near[0] / 1000:.3f}" if near else f"none under {PERMISSIVE / 1000:.3f}")
        + "; by kind: "
        + ", ".join(
            f"{k} ({negs.count(k)}) {min(v) / 1000:.3f}" if v else f"{k} ({negs.count(k)}) -"
            for k, v in by_kind.items()
        )
    )
    c = r["cost"]
    lines += [
        "",
        f"cost per minute of sound: decode {c['decode']:.2f} s, fingerprint (as it is and "
        f"at {len(SPEEDS)} speeds) {c['fingerprint']:.2f} s, "
        f"match against {c['index_rows']} reference blocks {c['match']:.2f} s; rows stored: "
        f"{c['rows_plain']} blocks of the sound as it is (the hash list's on confirm), "
        f"{c['rows_speed']} query-only speed blocks",
    ]
    return lines
