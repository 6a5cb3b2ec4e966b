"""Run work off the GUI thread and get the result back on it.

Two pools: ``reader`` for loading and preparing (claims, decoding previews, blurring small
images), and ``writer`` with one thread, so database writes from this workstation happen one at
a time and in the order they were made (a decision, then its undo). Workers never touch widgets.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # delivered to the GUI thread, not swallowed
            log.debug("background task failed: %s", traceback.format_exc())
            self._deliver(self.relay.failed, exc)
        else:
            self._deliver(self.relay.done, result)

    @staticmethod
    def _deliver(signal, value) -> None:
        try:
            signal.emit(value)
        except RuntimeError:
            # The window that asked went away while this ran (closing): nobody to tell.
            log.debug("background result dropped: its receiver was deleted")


class TaskRunner(QObject):
    def __init__(self, parent: QObject | None = None, readers: int = 2) -> None:
        super().__init__(parent)
        self.reader = QThreadPool(self)
        self.reader.setMaxThreadCount(readers)
        self.writer = QThreadPool(self)
        self.writer.setMaxThreadCount(1)
        self._relays: set[_Relay] = set()

    def _submit(
        self,
        pool: QThreadPool,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[Exception], None] | None,
    ) -> None:
        relay = _Relay()  # lives in the GUI thread: its signals are delivered there (queued)
        self._relays.add(relay)

        def finish(handler, value) -> None:
            self._relays.discard(relay)
            relay.deleteLater()
            if handler is not None:
                handler(value)
            elif isinstance(value, Exception):
                log.error("background task failed: %s", value)

        relay.done.connect(lambda v: finish(on_done, v))
        relay.failed.connect(lambda e: finish(on_error, e))
        pool.start(_Task(fn, relay))

    def read(self, fn, on_done=None, on_error=None) -> None:
        self._submit(self.reader, fn, on_done, on_error)

    def write(self, fn, on_done=None, on_error=None) -> None:
        self._submit(self.writer, fn, on_done, on_error)

    def busy(self) -> bool:
        return bool(self._relays)

    def wait(self, msecs: int = 10000) -> bool:
        ok = self.reader.waitForDone(msecs)
        return self.writer.waitForDone(msecs) and ok
