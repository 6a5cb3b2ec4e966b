"""mypy passes on app/core and app/storage with the settings in pyproject.toml ([tool.mypy])."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_passes_on_core_and_storage(tmp_path, monkeypatch):
    mypy_api = pytest.importorskip(
        "mypy.api", reason="mypy is not installed (it comes with the test extra: .[test])"
    )
    monkeypatch.chdir(ROOT)  # the config's paths and the module names are relative to the root
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            # A fresh cache: a stale one from another checkout or mypy version cannot hide errors.
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "app/core",
            "app/storage",
        ]
    )
    assert status == 0, f"mypy exited with {status}:\n{stdout}{stderr}"
