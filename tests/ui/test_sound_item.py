"""A file of sound alone in the review window: shown as "sound only", never played, decided
with the same keys; confirming it puts its fingerprint (the sound as it is, no speed variant)
in the hash list. Nothing in the application can play sound at all."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from app.core.model.domain import MediaKind
from app.storage.models import HashListEntry
from app.tools import sound_writer as sw
from tests.ui.conftest import KEY, press

APP = Path(__file__).resolve().parents[2] / "app"
_PLAYBACK = re.compile(
    r"QtMultimedia|QMediaPlayer|QSoundEffect|QAudioOutput|QAudioSink|simpleaudio|sounddevice|pyaudio"
)


def test_nothing_in_the_application_can_play_sound():
    found = [
        str(p.relative_to(APP))
        for p in APP.rglob("*.py")
        if _PLAYBACK.search(p.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_a_sound_item_is_shown_silent_and_confirmed_with_its_fingerprint(
    qtbot, make_window, db, tmp_path
):
    path = tmp_path / "in" / "speech.m4a"
    path.parent.mkdir()
    sw.write_sound(path, sw.music(8, 3), 22050)
    w = make_window(db, paths=[path])
    item = w.controller.current.item
    assert item.kind is MediaKind.AUDIO
    assert w.preview._message.startswith("sound only (8 s): fingerprinted, never played")
    assert not w.preview.revealed
    press(qtbot, w, KEY.Key_3)
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_Y)
    with db.session() as s:
        rows = s.execute(
            select(HashListEntry.algorithm, HashListEntry.variant).where(
                HashListEntry.item_id == item.id
            )
        ).all()
    sound = [v for a, v in rows if a == "audio"]
    assert len(sound) > 20 and set(sound) == {""}
    assert {a for a, _ in rows} == {"audio", "md5", "sha256"}
