"""OpenCV is the application's geometry kit, never its decoder: PyAV decodes and encodes video
and Pillow decodes pictures, with the one FFmpeg the bundle carries.

Checks: only the modules of :data:`ALLOWED` import cv2 (an import at the top or inside a
function, or cv2 taken from a module that imported it), and no module under app/ calls OpenCV's
readers or writers of files or streams (:data:`DECODERS`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"

#: The modules that may import cv2: the views of a picture (resizing, edges, contours, warps);
#: the video evasion set's edits (warps and blurs that make its filmed screens, tilts, 9:16
#: frames), a bench tool the product never imports.
ALLOWED = {"app/core/hashing/views.py", "app/tools/video_evasion.py"}
#: OpenCV's file and stream readers and writers: never used by the application.
DECODERS = {
    "imread",
    "imreadmulti",
    "imdecode",
    "imwrite",
    "imencode",
    "VideoCapture",
    "VideoWriter",
}


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


def _decoder_uses(source: str, label: str) -> list[str]:
    return [
        f"{label}:{node.lineno} uses {node.attr if isinstance(node, ast.Attribute) else node.id}"
        for node in ast.walk(ast.parse(source))
        if (isinstance(node, ast.Attribute) and node.attr in DECODERS)
        or (isinstance(node, ast.Name) and node.id in DECODERS)
    ]


def _app_sources() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
        for path in sorted(APP.rglob("*.py"))
    ]


def test_only_the_allowed_modules_import_cv2():
    sources = _app_sources()
    offenders = [
        hit
        for label, source in sources
        if label not in ALLOWED
        for hit in _cv2_imports(source, label)
    ]
    assert offenders == []
    users = {label for label, source in sources if _cv2_imports(source, label)}
    assert users == ALLOWED  # the list stays exact: a module that stopped needing cv2 leaves it


def test_no_application_module_decodes_or_encodes_with_opencv():
    offenders = [hit for label, source in _app_sources() for hit in _decoder_uses(source, label)]
    assert offenders == []


def test_the_checkers_see_what_they_look_for():
    """Both scans must be able to fail: a lazy import, cv2 taken from another module, and a
    decoder called through cv2 or imported by name."""
    source = (
        "def f():\n    import cv2\n    from app.core.video.analysis import cv2 as c\n"
        "    cv2.VideoCapture('x.mp4')\n    from cv2 import imread\n    imread('x.png')\n"
    )
    assert len(_cv2_imports(source, "sample")) == 4  # "from cv2 import imread" names two
    assert len(_decoder_uses(source, "sample")) == 2
