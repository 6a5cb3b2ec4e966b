"""The banners over an unblurred picture (issue 25): the words fit inside the banner, and the
banner inside the picture, whatever the picture's aspect, down to the window's minimum size."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage

from app.core.review.preview import BLUR_LEVELS
from app.ui.preview import LENS_TEXT, REVEAL_TEXT, Banner, ScreenPreview

ASPECTS = {"4:3": (640, 480), "16:9": (640, 360), "9:16": (360, 640), "1:1": (500, 500)}


def _picture(width: int, height: int) -> ScreenPreview:
    img = QImage(width, height, QImage.Format.Format_RGB888)
    img.fill(QColor("#406080"))
    return ScreenPreview(frames=[img], blurred=[[img] * len(BLUR_LEVELS)])


def _fits(banner: Banner | None, picture: QRectF, text: str) -> None:
    assert banner is not None
    assert banner.text == text  # wrapped, not cut short
    assert picture.contains(banner.rect), (banner.rect, picture)
    words = banner.text_rect()
    assert banner.rect.contains(words), (words, banner.rect)


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_the_banners_fit_whatever_the_aspect(qtbot, make_window, db, aspect):
    w = make_window(db, n=1)
    preview = w.preview
    for size in (w.minimumSizeHint(), w.size()):  # the smallest window, and the usual one
        w.resize(size)
        qtbot.waitUntil(lambda s=size: w.size() == s.expandedTo(w.minimumSize()), timeout=5000)
        preview.show_preview(_picture(*ASPECTS[aspect]))
        preview.set_revealed(True)
        picture = preview._target()
        assert picture is not None and preview.rect().toRectF().contains(picture)
        _fits(preview.reveal_banner(), picture, REVEAL_TEXT)
        _fits(preview.lens_banner(), picture, LENS_TEXT)
        preview.grab()  # painting it does not fail either
        preview.set_revealed(False)
