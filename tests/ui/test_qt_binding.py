"""The Qt binding itself: a guard against a PySide6 release with a known fatal refcount bug
(6.12.0's Signal.emit under-counts the bool it returns; a few thousand emits abort the app)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_signal_emit_keeps_reference_counts(qapp):
    e = _Emitter()
    seen = []
    e.fired.connect(seen.append)
    before = (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None))
    for _ in range(20):
        e.fired.emit(None)
    after = (sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None))
    assert len(seen) == 20
    # Every emit returns a bool; none of those references may go missing. (None gains 20
    # references held by ``seen``.)
    assert after[0] - before[0] == 0
    assert after[1] - before[1] == 0
    assert after[2] - before[2] == 20
