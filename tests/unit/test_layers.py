"""The arrows go one way: ui -> core, storage; storage -> core. core knows no Qt and no SQL;
storage knows no Qt. Checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _imports(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path.relative_to(folder).as_posix()] = names
    return found


def _offenders(folder: str, banned: tuple[str, ...]) -> list[str]:
    return [
        f"{mod} imports {name}"
        for mod, names in _imports(APP / folder).items()
        for name in names
        if name.split(".")[0] in banned or name.startswith(banned)
    ]


def test_core_imports_neither_qt_nor_sql_nor_upper_layers():
    assert _offenders("core", ("PySide6", "sqlalchemy", "alembic", "app.storage", "app.ui")) == []


def test_nothing_in_the_product_imports_the_tools():
    # app/tools (bench, demo, self-test, evasion sets, the clip writer) sits beside the product:
    # only the CLI reaches it. core, storage, ui and the composition root never do.
    product = {**_imports(APP / "core"), **_imports(APP / "storage"), **_imports(APP / "ui")}
    product["compose.py"] = _imports(APP)["compose.py"]
    assert [
        f"{m} imports {n}" for m, ns in product.items() for n in ns if n.startswith("app.tools")
    ] == []
    assert any(n.startswith("app.tools") for n in _imports(APP)["cli.py"])  # guard


def test_matching_imports_no_decoding():
    # The index and the rules work on hashes: no PyAV, no picture or video decoding, no ingest.
    banned = ("av", "PIL", "cv2", "app.core.video", "app.core.ingest", "app.core.hashing.imaging")
    assert _offenders("core/matching", banned) == []
    assert "numpy" in _imports(APP / "core" / "matching")["hash_index.py"]  # guard


def test_the_vocabulary_imports_nothing_heavier():
    # core/model is plain data: no numpy, no decoding, and none of the other rooms of core.
    banned = (
        "numpy",
        "av",
        "PIL",
        "app.core.hashing",
        "app.core.video",
        "app.core.matching",
        "app.core.ingest",
        "app.core.exchange",
    )
    assert _offenders("core/model", banned) == []
    assert "app.core.model.domain" in _imports(APP / "core" / "model")["decisions.py"]  # guard


def test_storage_imports_no_qt_and_no_ui():
    assert _offenders("storage", ("PySide6", "app.ui")) == []


def test_the_check_sees_imports():
    # Guard against the check passing vacuously.
    assert "sqlalchemy" in _imports(APP / "storage")["models.py"]
    assert any(n.startswith("PySide6") for n in _imports(APP / "ui")["preview.py"])


def test_the_composition_root_builds_without_qt():
    # app.compose wires the database, the services and the store for the CLI, the GUI, the
    # self-test and the benchmark: it must not need a display, nor reach into the windows.
    names = _imports(APP)["compose.py"]
    assert "app.storage.review" in names  # guard: the check sees its imports
    assert [n for n in names if n.startswith(("PySide6", "app.ui", "app.cli"))] == []


def test_windows_receive_their_services():
    # Only the composition root builds services; windows use the ones in the AppContext.
    built = [
        f"{mod} builds {svc}"
        for mod, path in (("ui/" + p.name, p) for p in (APP / "ui").glob("*.py"))
        for svc in (
            "ReviewService(",
            "LeadService(",
            "HistoryService(",
            "StatsService(",
            "UserService(",
            "HashListService(",
        )
        if svc in path.read_text(encoding="utf-8")
    ]
    assert built == []
