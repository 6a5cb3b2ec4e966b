"""One error root, and one place that turns an error into the line a person reads.

Every error of ours derives from ``HashdeskError``, on one of two branches:

- ``Refusal``: will never succeed as asked (bad input, not allowed, a conflict, unreadable
  media). Never retried; shown with its reason.
- ``Unavailable``: might succeed later (the database down, a lock that timed out). Retried
  with backoff.

Classes keep the builtin they subclassed before the tree (``ConfigError`` is still a
``ValueError``, ``PermissionDenied`` a ``PermissionError``) so callers catching the builtin
still catch them.

``describe(exc)`` is the one line for any exception, ours or a library's; ``is_transient(exc)``
the one answer to "would trying again help?". Core knows no SQL: the storage layer teaches both
about its database library's errors through ``register`` (app/storage/errors.py), so a
connection error reads "database unreachable: ..." wherever it surfaces.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import NamedTuple


class HashdeskError(Exception):
    """Every error of ours: its message is written for a person."""


class Refusal(HashdeskError):
    """Will never succeed as asked: never retried, shown with its reason."""


class Unavailable(HashdeskError):
    """Might succeed later (something is down or busy): retried with backoff."""


class Foreign(NamedTuple):
    """What a registered classifier says about a library's exception."""

    line: str  # the one line a person reads
    transient: bool  # would trying again help?


Classifier = Callable[[BaseException], Foreign | None]

_classifiers: list[Classifier] = []

# OS errors that mean "the network or the server is not there now", as opposed to a file that
# does not exist or a disk that is full.
_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENETUNREACH", "ENETDOWN", "EHOSTUNREACH", "EHOSTDOWN", "ENETRESET")
    if hasattr(errno, name)
)

MAX_LINE = 200  # a library's message is cut here: ours are written short, theirs may carry SQL


def register(classifier: Classifier) -> None:
    """Teach ``describe`` and ``is_transient`` about a library's exceptions (idempotent)."""
    if classifier not in _classifiers:
        _classifiers.append(classifier)


def _foreign(exc: BaseException) -> Foreign | None:
    for classify in _classifiers:
        found = classify(exc)
        if found is not None:
            return found
    return None


def first_line(text: str, limit: int = MAX_LINE) -> str:
    """The first non-empty line of ``text``, at most ``limit`` characters."""
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def describe(exc: BaseException) -> str:
    """The one line a person reads for ``exc``.

    Ours: their message (written for a person), on one line. A library's error that storage
    registered: its short form ("database unreachable: ..."). An OS or FFmpeg error: its
    ``strerror`` ("No such file or directory", without the path and errno noise), or its
    message. Anything else (a bug): the type and the first line of its message, so
    "KeyError: 'x'" still says what.
    """
    if isinstance(exc, HashdeskError):
        text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        return text or type(exc).__name__
    found = _foreign(exc)
    if found is not None:
        return first_line(found.line)
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror.strip():
        return first_line(strerror)
    text = first_line(str(exc))
    if isinstance(exc, OSError) and text:  # Pillow's "broken data stream ...": a sentence
        return text
    return first_line(f"{type(exc).__name__}: {text}") if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Would trying the same thing again later help? Yes for ``Unavailable`` and for the
    connection failures storage registered (and a dropped network); no for a ``Refusal``,
    and no for anything unknown: a bug does not fix itself by waiting."""
    if isinstance(exc, HashdeskError):
        return isinstance(exc, Unavailable)
    found = _foreign(exc)
    if found is not None:
        return found.transient
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS
