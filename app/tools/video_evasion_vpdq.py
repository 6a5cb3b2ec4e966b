"""Meta's vPDQ on the video evasion set, as a reference column beside ``hashdesk bench evasion
--video``: comparison only, never a dependency of the application.

Run with a Python that has the ``vpdq`` package (built from PyPI against FFmpeg's development
files), after ``hashdesk bench evasion --video`` has written the set::

    PYTHONPATH=<repo> <venv>/bin/python -m app.tools.video_evasion_vpdq [--json FILE]

The rule is python-threatexchange's for vPDQ: frames of quality below 50 are left out on both
sides and duplicates removed; a query matches a reference when at least 80% of its frames lie
within PDQ distance 31 of some frame of the reference. Queries are hashed at vPDQ's default
(one frame a second); the confirmed references once that way and once at every frame. The
negatives are also matched against each other (one frame a second on both sides), a group's own
files left out, as the application's table does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from app.tools.video_evasion import RELATED, Entry, cache_dir

QUALITY = 50
DISTANCE = 31
FRACTION = 0.8


def hashes(path: Path, seconds_per_hash: float) -> np.ndarray:
    """The file's vPDQ frame hashes of quality >= :data:`QUALITY`, deduplicated, as rows of
    four 64-bit words."""
    import vpdq

    features = vpdq.computeHash(str(path), seconds_per_hash=seconds_per_hash)
    hexes = sorted({f.hex for f in features if f.quality >= QUALITY})
    if not hexes:
        return np.zeros((0, 4), np.uint64)
    raw = np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), dtype=">u8")
    return raw.astype(np.uint64).reshape(-1, 4)


def fraction_within(query: np.ndarray, ref: np.ndarray) -> float:
    """The share of ``query``'s frames within :data:`DISTANCE` of some frame of ``ref``."""
    if query.shape[0] == 0 or ref.shape[0] == 0:
        return 0.0
    d = np.bitwise_count(query[:, None, :] ^ ref[None, :, :]).sum(axis=2)
    return float((d.min(axis=1) <= DISTANCE).mean())


def best(query: np.ndarray, refs: list[np.ndarray]) -> tuple[int | None, float]:
    """The reference the query matches best by the rule (None: none reaches it)."""
    top, share = None, 0.0
    for i, ref in enumerate(refs):
        f = fraction_within(query, ref)
        if f >= FRACTION and f > share:
            top, share = i, f
    return top, share


def run(folder: Path) -> tuple[list[str], list[dict]]:
    entries = [Entry(**e) for e in json.loads((folder / "manifest.json").read_text())]
    started = time.perf_counter()
    one = {e.file: hashes(folder / e.file, 1.0) for e in entries}
    refs = [e for e in entries if e.role == "source" and e.confirmed]
    every = [hashes(folder / e.file, 0) for e in refs]
    hashed = time.perf_counter() - started
    ref_one = [one[e.file] for e in refs]
    results = []
    for e in entries:
        if e.role == "source" and e.confirmed:
            continue
        r1, f1 = best(one[e.file], ref_one)
        r2, f2 = best(one[e.file], every)
        results.append(
            {
                **e.__dict__,
                "match_1fps": refs[r1].source if r1 is not None else None,
                "fraction_1fps": f1,
                "match_every_frame": refs[r2].source if r2 is not None else None,
                "fraction_every_frame": f2,
            }
        )
    negatives = [r for r in results if not r["confirmed"] and r["source"] not in RELATED]
    for r in negatives:
        others = [n for n in negatives if n["group"] != r["group"]]
        i, f = best(one[r["file"]], [one[n["file"]] for n in others])
        r["among"] = others[i]["file"] if i is not None else None
        r["among_fraction"] = f
    lines = [
        f"vPDQ on the video evasion set ({folder}): {len(entries)} files hashed in {hashed:.0f} s "
        f"(queries at 1 frame a second; references at 1 frame a second and at every frame); "
        f"rule: quality >= {QUALITY}, {FRACTION:.0%} of the query's frames within distance "
        f"{DISTANCE}",
        *table(results),
    ]
    return lines, results


def _false(r: dict, c: str) -> bool:
    """An unconfirmed file's match that is false: any, except its related source's."""
    return r[f"match_{c}"] is not None and r[f"match_{c}"] != RELATED.get(r["source"] or "")


def table(results: list[dict]) -> list[str]:
    kinds = list(dict.fromkeys(r["kind"] for r in results if r["role"] == "edit"))
    width = max(len(k) for k in kinds) + 2
    cols = ("1fps", "every_frame")
    lines = [
        "edit kind".ljust(width)
        + f"{'caught, ref 1 fps':>20}{'caught, ref every frame':>25}{'false':>11}"
    ]
    tot = {c: 0 for c in cols}
    fal = {c: 0 for c in cols}
    n = 0
    for kind in kinds:
        mine = [r for r in results if r["role"] == "edit" and r["kind"] == kind and r["confirmed"]]
        theirs = [
            r for r in results if r["role"] == "edit" and r["kind"] == kind and not r["confirmed"]
        ]
        cells, falses = [], []
        for c in cols:
            caught = sum(1 for r in mine if r[f"match_{c}"] == r["source"])
            false = sum(1 for r in mine if r[f"match_{c}"] not in (None, r["source"]))
            false += sum(1 for r in theirs if _false(r, c))
            tot[c] += caught
            fal[c] += false
            cells.append(f"{caught}/{len(mine)}")
            falses.append(str(false))
        n += len(mine)
        lines.append(kind.ljust(width) + f"{cells[0]:>20}{cells[1]:>25}{' / '.join(falses):>11}")
    lines.append(
        "all".ljust(width)
        + f"{f'{tot[cols[0]]}/{n} {tot[cols[0]] / max(n, 1):.0%}':>20}"
        + f"{f'{tot[cols[1]]}/{n} {tot[cols[1]] / max(n, 1):.0%}':>25}"
        + f"{f'{fal[cols[0]]} / {fal[cols[1]]}':>11}"
    )
    negs = [r for r in results if not r["confirmed"] and r["source"] not in RELATED]
    related = [r for r in results if r["source"] in RELATED]
    if related:
        lines.append(
            f"related (a longer take of a confirmed source): {len(related)} files; matched it: "
            + ", ".join(
                f"{sum(1 for r in related if r[f'match_{c}'] == RELATED[r['source']])} ({c})"
                for c in cols
            )
            + "; false: "
            + ", ".join(f"{sum(1 for r in related if _false(r, c))} ({c})" for c in cols)
        )
    lines.append(
        f"negatives: {len(negs)}; false matches against the confirmed sources: "
        f"{sum(1 for r in negs if r['match_1fps'])} (references at 1 fps), "
        f"{sum(1 for r in negs if r['match_every_frame'])} (at every frame); against each other: "
        f"{sum(1 for r in negs if r['among'])} of {len(negs)}"
    )
    for r in negs:
        if r["match_1fps"] or r["match_every_frame"]:
            lines.append(
                f"FALSE MATCH: {r['file']} -> {r['match_1fps'] or r['match_every_frame']} "
                f"({max(r['fraction_1fps'], r['fraction_every_frame']):.0%} of frames)"
            )
        if r["among"]:
            lines.append(
                f"FALSE MATCH among negatives: {r['file']} -> {r['among']} "
                f"({r['among_fraction']:.0%} of frames)"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", default=str(cache_dir()), help="the set's folder")
    p.add_argument("--json", metavar="FILE", help="also save every file's result to FILE")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    if not (folder / "manifest.json").is_file():
        print(f"no video evasion set at {folder}: run `hashdesk bench evasion --video` first")
        return 1
    try:
        import vpdq  # noqa: F401
    except ImportError:
        print("vpdq is not importable here (it is a comparison, built in a separate venv)")
        return 1
    started = time.perf_counter()
    lines, results = run(folder)
    for line in lines:
        print(line)
    print(f"took {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
