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


def _trees() -> dict[str, ast.Module]:
    return {
        p.relative_to(APP).as_posix(): ast.parse(p.read_text(encoding="utf-8"))
        for p in APP.rglob("*.py")
    }


def _called(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def test_only_the_composition_root_builds_services():
    # Storage, the tools, the CLI and the windows receive services (the AppContext's, or a
    # parameter); a default built below the root would bypass the root's settings.
    built = [
        f"{mod} builds {name}"
        for mod, tree in _trees().items()
        for node in ast.walk(tree)
        if (name := _called(node)) and name.endswith("Service")
    ]
    assert [b for b in built if not b.startswith("compose.py ")] == []
    assert len([b for b in built if b.startswith("compose.py ")]) >= 7  # guard: it sees them


def _defined(name: str) -> list[str]:
    """The modules of app/ that define ``name`` (a function, a class or a module constant)."""
    found = []
    for mod, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                found.append(mod)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    found.append(mod)
    return found


def test_one_home_per_concept():
    assert _defined("LOCAL_LIST") == ["core/matching/hash_lists.py"]
    assert _defined("utcnow") == ["core/model/domain.py"]
    assert _defined("_now") == []
    assert _defined("decision_chain_fields") == ["core/model/chain.py"]
    plurals = _defined("plural") + _defined("_plural")
    assert plurals == ["core/reports.py"]


def test_the_cli_reads_through_storage_not_the_models():
    # The commands ask storage's services and query functions for plain data.
    names = _imports(APP)["cli.py"]
    assert "app.storage.inventory" in names  # guard: function-local imports are seen
    assert [n for n in names if n.startswith(("app.storage.models", "sqlalchemy"))] == []


def test_the_web_front_doors_import_no_qt_and_no_tools():
    # app/web (the HTTP intake) sits beside the windows: over the composition root and the
    # services, without a display, and imported by nothing below it.
    assert _offenders("web", ("PySide6", "app.ui", "app.tools", "app.cli")) == []
    assert "fastapi" in _imports(APP / "web")["intake_http.py"]  # guard: it sees the imports
    below = {**_imports(APP / "core"), **_imports(APP / "storage"), "compose.py": set()}
    below["compose.py"] = _imports(APP)["compose.py"]
    assert [
        f"{m} imports {n}" for m, ns in below.items() for n in ns if n.startswith("app.web")
    ] == []
