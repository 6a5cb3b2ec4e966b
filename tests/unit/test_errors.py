"""One error root: every exception class of ours derives from HashdeskError, on the Refusal or
the Unavailable branch, and describe() gives the one line a person reads for any error."""

from __future__ import annotations

import ast
import errno
import importlib
from pathlib import Path

from sqlalchemy.exc import IntegrityError, OperationalError

import app.storage.errors  # noqa: F401  (registers the SQL errors, as app.storage.db does)
from app.core.errors import HashdeskError, Refusal, Unavailable, describe, is_transient
from app.core.model.decisions import LeadError
from app.core.model.roles import PermissionDenied
from app.core.settings.config import ConfigError
from app.storage.db import DatabaseError, DatabaseRefused, DatabaseUnreachable

APP = Path(__file__).resolve().parents[2] / "app"
ROOTS = {HashdeskError, Refusal, Unavailable, DatabaseError}  # bases, never raised themselves


def _modules_with_classes() -> list[str]:
    names = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.ClassDef) for node in ast.walk(tree)):
            rel = path.relative_to(APP.parent).with_suffix("")
            names.append(".".join(rel.parts).removesuffix(".__init__"))
    return names


def _our_exception_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in _modules_with_classes():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[f"{name}.{attr}"] = obj
    return found


def test_every_exception_class_of_ours_derives_from_the_root():
    classes = _our_exception_classes()
    # Guard against passing vacuously: the walk sees the classes it must see, in every layer.
    assert len(classes) >= 25
    for known in (
        "app.core.settings.config.ConfigError",
        "app.core.video.probe._TimedOut",
        "app.storage.db.DatabaseUnreachable",
        "app.cli.CliError",
        "app.tools.selftest.StepFailed",
    ):
        assert known in classes
    assert [name for name, cls in classes.items() if not issubclass(cls, HashdeskError)] == []
    # Every class that is raised sits on exactly one branch: retried, or shown and never retried.
    assert [
        name
        for name, cls in classes.items()
        if cls not in ROOTS and issubclass(cls, Refusal) == issubclass(cls, Unavailable)
    ] == []


def test_classes_keep_the_builtin_callers_catch():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, Refusal)
    assert issubclass(PermissionDenied, PermissionError) and issubclass(PermissionDenied, Refusal)
    assert issubclass(LeadError, RuntimeError) and issubclass(LeadError, Refusal)
    assert issubclass(DatabaseUnreachable, DatabaseError) and issubclass(
        DatabaseUnreachable, Unavailable
    )
    assert issubclass(DatabaseRefused, DatabaseError) and issubclass(DatabaseRefused, Refusal)


def _operational() -> OperationalError:
    orig = ConnectionRefusedError("connection refused\n\tIs the server running on that host?")
    return OperationalError("INSERT INTO decisions ...", {}, orig)


def test_describe_gives_one_line_for_any_error():
    assert describe(LeadError("item 7 was overturned meanwhile")) == (
        "item 7 was overturned meanwhile"
    )
    assert describe(ConfigError("HASHDESK_BLUR=x is not a number\n(see README)")) == (
        "HASHDESK_BLUR=x is not a number (see README)"
    )
    assert describe(_operational()) == "database unreachable: connection refused"
    integrity = IntegrityError("INSERT ...", {}, Exception("duplicate key value\nDETAIL: ..."))
    assert describe(integrity) == "database error: duplicate key value"
    assert describe(FileNotFoundError(errno.ENOENT, "No such file or directory", "/x")) == (
        "No such file or directory"
    )
    assert describe(KeyError("verdict")) == "KeyError: 'verdict'"
    assert describe(RuntimeError()) == "RuntimeError"
    assert len(describe(ValueError("x" * 5000))) <= 200


def test_is_transient_tells_retry_from_refusal():
    assert is_transient(_operational())
    assert is_transient(DatabaseUnreachable("cannot connect"))
    assert is_transient(ConnectionResetError())
    assert is_transient(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert not is_transient(PermissionDenied("moderators may not overturn"))  # an OSError too
    assert not is_transient(LeadError("no"))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("dup")))
    assert not is_transient(FileNotFoundError(errno.ENOENT, "No such file"))
    assert not is_transient(RuntimeError("a bug does not fix itself by waiting"))
