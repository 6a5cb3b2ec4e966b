"""Area reduction (app/core/hashing/resample.py) against OpenCV's INTER_AREA, an independent
implementation of the same averaging: at most one level apart (rounding) on uint8, and equal to
float precision on float32 planes; on corpus photos and on noise, at integer and non-integer
factors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.core.hashing.resample import area_reduce
from tests.conftest import CORPUS, CORPUS_SKIP, skip_without_corpus

cv2 = pytest.importorskip("cv2")

PHOTOS = CORPUS / "pdq-images"


def _cases(rng: np.random.Generator, count: int):
    for _ in range(count):
        rows, cols = (int(v) for v in rng.integers(2, 700, 2))
        h, w = int(rng.integers(1, rows + 1)), int(rng.integers(1, cols + 1))
        yield rows, cols, h, w


def test_noise_at_random_factors_matches_inter_area():
    rng = np.random.default_rng(15)
    for rows, cols, h, w in _cases(rng, 60):
        for shape in ((rows, cols, 3), (rows, cols)):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            ours = area_reduce(pixels, (w, h))
            theirs = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
            assert ours.shape == theirs.shape and ours.dtype == np.uint8
            assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1, (shape, w, h)
            plane = pixels.astype(np.float32)
            ours_f = area_reduce(plane, (w, h))
            theirs_f = cv2.resize(plane, (w, h), interpolation=cv2.INTER_AREA)
            assert ours_f.dtype == np.float32
            np.testing.assert_allclose(ours_f, theirs_f, atol=1e-3)


def test_strided_crops_and_integer_factors():
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    crop = pixels[13:401, 7:590]  # a view, as a bar-trimmed frame is
    for size in ((583 // 2, 388 // 2), (100, 97), (583, 388), (1, 1)):
        ours = area_reduce(crop, size).astype(int)
        theirs = cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA)
        assert np.abs(ours - theirs.astype(int)).max() <= 1, size


@pytest.mark.corpus
def test_corpus_photos_match_inter_area():
    skip_without_corpus(PHOTOS)
    photos = sorted(PHOTOS.glob("*.jpg"))[:12]
    if not photos:
        pytest.skip(CORPUS_SKIP)
    for path in photos:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        h, w = rgb.shape[:2]
        scale = 256 / max(h, w)
        if scale >= 1:
            continue  # regions.py does not reduce it either
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        ours = area_reduce(rgb, size).astype(int)
        theirs = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(ours - theirs).max() <= 1, path.name


def test_enlarging_is_refused():
    with pytest.raises(ValueError):
        area_reduce(np.zeros((10, 10), np.uint8), (11, 10))
