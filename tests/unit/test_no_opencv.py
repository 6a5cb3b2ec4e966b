"""OpenCV stays out of the application: the bundle carries one FFmpeg, PyAV's (issue 15).

The test environment has OpenCV (tests use it as an independent decoder and drawing kit), so
nothing would fail if application code imported it again, except these checks: no module under
app/ names cv2 in any import statement (at the top or inside a function), and a fresh
interpreter that imports every application module and then runs the video and photo paths
(writing the demo clip, analysing it, region hashes of a photo) has not loaded cv2.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
#: Benchmark tooling that draws with OpenCV inside its functions (never imported by the
#: application's paths; the fresh-interpreter check below still imports it without cv2).
TOOLS_WITH_CV2 = {"app/tools/video_evasion.py"}


def _cv2_imports(source: str, label: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names = [a.name for a in node.names]  # "from app.core.video.analysis import cv2"
        else:
            continue
        found += [
            f"{label}:{node.lineno} imports {n}"
            for n in names
            if n.split(".")[0] == "cv2" or n.endswith(".cv2")
        ]
    return found


def test_no_application_module_imports_cv2():
    offenders = [
        hit
        for path in sorted(APP.rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in TOOLS_WITH_CV2
        for hit in _cv2_imports(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert offenders == []


def test_the_checker_sees_a_lazy_import():
    """The scan above must be able to fail: an import inside a function, as regions.py once
    had, is found, and so is cv2 taken from a module that imported it."""
    source = "def f():\n    import cv2\n    from app.core.video.analysis import cv2 as c\n"
    assert len(_cv2_imports(source, "sample")) == 2


_RUN = r"""
import pkgutil, importlib, sys, tempfile
from pathlib import Path

import app

names = [
    m.name
    for m in pkgutil.walk_packages(app.__path__, "app.")
    if ".migrations" not in m.name and m.name != "app.__main__"
]
for name in names:
    importlib.import_module(name)
assert "cv2" not in sys.modules, "cv2 loaded by importing the application's modules"
wanted = {
    "app.core.video.analysis",
    "app.storage.db",
    "app.compose",
    "app.ui.review_window",
    "app.cli",
}
assert wanted <= set(sys.modules), wanted - set(sys.modules)

import numpy as np
from app.tools.demo import sample_picture, write_sample_video
from app.core.hashing.regions import region_signals
from app.core.video.analysis import analyze_video

with tempfile.TemporaryDirectory() as tmp:
    clip = Path(tmp) / "clip.mp4"
    write_sample_video(clip, 3, seconds=3)
    analysis = analyze_video(clip, "0" * 64, "0" * 32, clip.stat().st_size)
    assert analysis.signals, analysis
region_signals(np.asarray(sample_picture(7, (900, 600))), dihedral=True)
assert "cv2" not in sys.modules, "cv2 loaded while writing, analysing and hashing"
print(len(names), "modules")
"""


def test_a_fresh_interpreter_runs_the_application_without_cv2():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _RUN], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "modules" in done.stdout
