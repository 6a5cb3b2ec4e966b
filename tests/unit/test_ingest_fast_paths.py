"""Image ingest's fast paths give the floats and answers of their plain formulations, bit for
bit: the luma plane (app/core/hashing/pdq.py), the bar scan's line test
(app/core/hashing/bars.py), the halves'
banded maps (app/core/hashing/regions.py), and so every PDQ signal of an analysis.

The pictures are those the ingest bench times (2400x1600 JPEGs decoded at 1/4, some turned so
that they have pillarbox bars) and the reference corpus photos (decoded at full size)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from app.core.hashing import bars, imaging, pdq, regions
from app.core.hashing.views import zoom_signals
from app.core.matching.signal_types import TRIMMED, VIEW_PREFIX, ZOOM_PREFIX, untrimmed_half_variant
from app.core.model.domain import Algorithm
from app.tools.bench import _make_jpegs
from tests.conftest import CORPUS

IMAGES = CORPUS / "pdq-images"
F32 = np.float32


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> list[bytes]:
    """Bench JPEGs turned 0, 7, 77 and 91 degrees (the last two with pillarbox bars), and
    every fifth corpus JPEG when the corpus is there."""
    folder = tmp_path_factory.mktemp("bench")
    bench = _make_jpegs(folder, 14)
    datas = [bench[i].read_bytes() for i in (0, 1, 11, 13)]
    if IMAGES.is_dir():
        corpus = sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        datas += [p.read_bytes() for p in corpus[::5]]
    return datas


def _decoded(data: bytes) -> imaging.DecodedPicture:
    return imaging.decode_picture(data, imaging.sniff(data[:64])[1])


def plain_luma(rgb: np.ndarray) -> np.ndarray:
    """``0.299 R + 0.587 G + 0.114 B``, each product rounded to float32, summed left to right."""
    c = rgb.astype(F32)
    return (F32(0.299) * c[:, :, 0] + F32(0.587) * c[:, :, 1]) + F32(0.114) * c[:, :, 2]


def plain_bars(rgb: np.ndarray) -> bars.Bars | None:
    """trim_bars's answer from the full border scan (no quick rejection)."""
    scan = bars.scan_borders(rgb)
    return None if scan.uniform else bars.bars_from_runs(scan.height, scan.width, scan.runs)


def test_luma_of_decoded_pictures_is_the_plain_formula(pictures: list[bytes]) -> None:
    for data in pictures:
        rgb = np.asarray(_decoded(data).image)
        luma = pdq.luma_from_rgb(rgb)
        assert luma.dtype == F32
        assert np.array_equal(luma.view(np.uint32), plain_luma(rgb).view(np.uint32))


def test_flat_lines_count_pixels_as_a_plain_per_pixel_test(pictures: list[bytes]) -> None:
    """Lines from every side (the left and right ones are the picture's columns, read in
    place), any colour, any run of lines: the same answer as the per-pixel test on a copy."""
    rng = np.random.default_rng(5)
    flat_seen = 0
    for data in pictures[:4]:
        rgb = np.asarray(_decoded(data).image)
        for side in bars.SIDES:
            view = bars._side_view(rgb, side)
            for _ in range(12):
                start = int(rng.integers(0, view.shape[0] - 1))
                lines = view[start : start + int(rng.integers(1, 80))]
                colour = np.asarray(lines[0, 0] if rng.random() < 0.5 else rng.integers(0, 256, 3))
                colour = colour.astype(np.uint8)
                near = np.abs(np.array(lines, np.int16) - colour.astype(np.int16)).max(axis=2)
                need = math.ceil(bars.FLAT_FRACTION * lines.shape[1])
                expected = (near <= bars.FLAT_TOLERANCE).sum(axis=1) >= need
                got = bars._flat_lines(lines, colour)
                assert np.array_equal(got, expected), (side, start, colour)
                flat_seen += int(expected.sum())
    assert flat_seen > 50  # bars were among the lines looked at


def test_banded_maps_are_the_per_output_products(pictures: list[bytes]) -> None:
    """The halves' row and column passes against one small product per output: the weights
    times the rows it reads (a view of the plane), and the columns it reads (a column-major
    copy, as each output's columns lie in the gathered block) times the weights."""
    for data in pictures[:4]:
        luma = pdq.luma_from_rgb(np.asarray(_decoded(data).image))
        h, w = luma.shape
        scale = regions.REGION_SIDE / max(h, w)
        maps = regions._turned_maps(h, w, round(h * scale), round(w * scale))
        full_rows, half_rows, cols, half_cols = maps
        for index, weight in (full_rows, half_rows):
            got = regions._banded_rows(luma, index, weight)
            for i in range(len(index)):
                rows = luma[index[i, 0] : index[i, -1] + 1]
                assert np.array_equal(got[i], np.matmul(weight[i], rows)), i
        for reduced_map, (index, weight) in ((half_rows, cols), (full_rows, half_cols)):
            reduced = regions._banded_rows(luma, *reduced_map)
            got = regions._banded_cols(reduced, index, weight)
            for j in range(len(index)):
                block = np.asfortranarray(reduced[:, index[j, 0] : index[j, -1] + 1])
                assert np.array_equal(got[:, j], np.matmul(block, weight[j])), j


def test_analysis_pdq_signals_are_those_of_the_plain_pieces(pictures: list[bytes]) -> None:
    """Every PDQ signal of an analysis (whole, trimmed, halves, and their turns; a barred
    picture's untrimmed halves) as computed from the plain luma and the full bar scan, with the
    same qualities."""
    barred = 0
    for data in pictures:
        pic = _decoded(data)
        rgb = np.asarray(pic.image)
        luma = plain_luma(rgb)
        expected = pdq.pdq_signals_with_dihedral(pic.whole_pdq_plane(luma), transformed=True)
        found = plain_bars(rgb)
        content = luma
        if found is not None:
            barred += 1
            top, bottom, left, right = found
            rows, cols = luma.shape
            content = luma[top : rows - bottom, left : cols - right]
            plane = imaging._pdq_plane(
                content, pic.rows.crop(top, rows - bottom), pic.cols.crop(left, cols - right)
            )
            expected += pdq.pdq_signals_with_dihedral(plane, transformed=True, of=TRIMMED)
            # The untrimmed picture's halves, query-only (a strip laid over an edge).
            expected += [
                replace(s, variant=untrimmed_half_variant(s.variant.split(":")[1]))
                for s in regions.region_signals_from_luma(luma)
            ]
        expected += regions.region_signals_from_luma(content, dihedral=True)
        analysis = imaging.analyze_image_bytes(data, "sha", "md5")
        pdqs = [s for s in analysis.signals if s.algorithm == Algorithm.PDQ]
        # The stored centres, of the content (bars trimmed), from the same plain luma.
        centres = [s for s in pdqs if s.variant.startswith(ZOOM_PREFIX)]
        assert centres == zoom_signals(content)
        got = [s for s in pdqs if not s.variant.startswith((ZOOM_PREFIX, VIEW_PREFIX))]
        assert len(got) == len(expected) == len({s.variant for s in got})
        assert sorted(got, key=lambda s: s.variant) == sorted(expected, key=lambda s: s.variant)
    assert barred >= 2
