"""Harmless generated sample media for `hashdesk demo` and the tests.

Abstract pictures (shapes, gradients, stripes) with a visible caption, a few exact copies under
other names, near-duplicates (resized, recompressed, brightened, cropped), and one corrupt file,
so every path of the review loop shows up on a fresh machine.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

SOURCES = ("user_report", "classifier", "partner_feed", "removal_order")
# Each source's own kind of reason: a removal order never says "partner hash-sharing alert".
REASONS = {
    "user_report": ("reported as violent extremist propaganda", "reported as attack footage"),
    "classifier": ("classifier: weapon and flag detected", "classifier: logo of a listed group"),
    "partner_feed": ("partner hash-sharing alert", "partner feed: near match to a listed video"),
    "removal_order": ("removal order from competent authority",),
}


def sample_picture(seed: int, size: tuple[int, int] = (960, 640)) -> Image.Image:
    """A distinct abstract picture for ``seed``: different seeds hash far apart."""
    rng = random.Random(seed)
    w, h = size
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    gradient = np.asarray(top, float) * (1 - t) + np.asarray(bottom, float) * t
    img = Image.fromarray(np.broadcast_to(gradient, (h, w, 3)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randint(40, w // 2), y0 + rng.randint(40, h // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(("ellipse", "rectangle", "line"))
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=rng.randint(4, 24))
    font = ImageFont.load_default(size=40)
    draw.text(
        (24, h - 64),
        f"SAMPLE {seed % 1000:03d}",
        fill=(255, 255, 255),
        font=font,
        stroke_width=3,
        stroke_fill=(0, 0, 0),
    )
    return img


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_demo_media(folder: Path, count: int = 40, seed: int = 7) -> Path:
    count = max(count, 12)
    """Write about ``count`` sample files into ``folder`` and a JSON-lines manifest beside them.

    Returns the manifest's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows: list[dict] = []

    def add(name: str, data: bytes, n: int) -> None:
        (folder / name).write_bytes(data)
        source = SOURCES[n % len(SOURCES)]
        row = {
            "path": name,
            "source": source,
            "external_id": f"{source[:3].upper()}-{100000 + n}",
            "url": f"https://example.invalid/post/{100000 + n}",
            "reason": REASONS[source][n // len(SOURCES) % len(REASONS[source])],
            "score": round(rng.uniform(0.5, 0.99), 2),
            "flagged_at": (now - timedelta(minutes=rng.randint(1, 600))).isoformat(),
        }
        if name == "sample-000.jpg":
            # The near-duplicate cluster comes first, under the tightest deadline.
            row["deadline"] = (now + timedelta(minutes=5)).isoformat()
        elif source == "removal_order":
            row["deadline"] = (now + timedelta(minutes=rng.randint(10, 60))).isoformat()
        rows.append(row)

    originals = max(1, count - 10)
    pictures: dict[int, Image.Image] = {}
    for n in range(originals):
        pictures[n] = sample_picture(seed * 1000 + n)
        add(f"sample-{n:03d}.jpg", _jpeg(pictures[n]), n)
    # Near-duplicates of the first picture: the cluster a moderator decides once.
    base = pictures[0]
    add("sample-000-small.jpg", _jpeg(base.resize((480, 320))), originals)
    add("sample-000-lowq.jpg", _jpeg(base, quality=35), originals + 1)
    add("sample-000-bright.jpg", _jpeg(ImageEnhance.Brightness(base).enhance(1.25)), originals + 2)
    add("sample-000-crop.png", _png(base.crop((10, 8, 950, 632))), originals + 3)
    # Exact copies under other names (same bytes): sightings of one item, not new queue entries.
    for i, n in enumerate(n for n in (1, 2, 3) if n < originals):
        add(f"repost-{n:03d}.jpg", (folder / f"sample-{n:03d}.jpg").read_bytes(), originals + 4 + i)
    # Mislabelled: a PNG named .jpg (must be read by content).
    add("mislabelled.jpg", _png(pictures[min(4, originals - 1)].rotate(180)), originals + 7)
    # A short generated video: its keyframe strip is stepped with Left/Right.
    clip = folder / "sample-clip.mp4"
    write_sample_video(clip, seed * 1000 + 500)
    add(clip.name, clip.read_bytes(), originals + 9)
    # One corrupt file: a JPEG cut short.
    broken = _jpeg(sample_picture(seed * 1000 + 999))
    add("corrupt-upload.jpg", broken[: len(broken) // 3], originals + 8)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def write_sample_video(path: Path, seed: int, seconds: int = 8, fps: int = 10) -> None:
    """A harmless moving picture (a pan across a sample picture), MPEG-4 in an MP4 file."""
    from app.tools.video_writer import write_mp4

    wide = np.asarray(sample_picture(seed, (1280, 480)))
    w = 640
    total = seconds * fps
    pan = (
        wide[:, x : x + w]
        for x in (int((wide.shape[1] - w) * i / max(1, total - 1)) for i in range(total))
    )
    write_mp4(path, pan, fps)
