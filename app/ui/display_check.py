"""Before Qt opens a window on Linux: are the libraries of its xcb platform plugin there?

Without them Qt aborts the whole process (SIGABRT, "Could not load the Qt platform plugin
"xcb"") and a demo has already spent its time generating samples. So `hashdesk gui` and
`hashdesk demo` ask first, without loading the plugin: `ldd` on it (which follows its RUNPATH
to Qt's own libraries) lists every library that cannot be found, and
``resources/linux-packages.txt`` (the list the README shows) names the package for each. The
answer is one line naming what to install.

Importing QtCore is safe here: it needs no display and none of the libraries checked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from app.paths import resource

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_DLOPEN_ERROR = re.compile(r"(\S+\.so[.\d]*): cannot open shared object file")


def linux_packages(path: Path | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """(package, libraries it provides) from the one list, in its order."""
    rows = []
    for line in (path or resource("linux-packages.txt")).read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            rows.append((words[0], tuple(words[1:])))
    return rows


def apt_line(path: Path | None = None) -> str:
    """The README's install line, made from the list."""
    return "apt-get install " + " ".join(p for p, _ in linux_packages(path))


def xcb_plugin() -> Path | None:
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    plugin = plugins / "platforms" / "libqxcb.so"
    return plugin if plugin.exists() else None


def unresolved_libraries(library: Path) -> list[str]:
    """The shared libraries ``library`` needs that the dynamic loader cannot find."""
    ldd = shutil.which("ldd")
    if ldd is not None:
        out = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=30)
        return list(dict.fromkeys(_NOT_FOUND.findall(out.stdout)))
    import ctypes  # no ldd: loading it names the first missing library

    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        found = _DLOPEN_ERROR.search(str(exc))
        return [found.group(1)] if found else [str(exc)]
    return []


def _uses_xcb() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip()
    if platform:
        return platform == "xcb"
    wayland = os.environ.get("XDG_SESSION_TYPE") == "wayland" and os.environ.get("WAYLAND_DISPLAY")
    return not wayland  # Qt tries Wayland first in a Wayland session


def display_problem(plugin: Path | None = None) -> str | None:
    """Why Qt could not open a window here, in one line (None: nothing found wrong)."""
    if plugin is None:
        if not sys.platform.startswith("linux") or not _uses_xcb():
            return None
        plugin = xcb_plugin()
        if plugin is None:
            return None  # a Qt without the plugin: Qt's own message says more than we can
        if not os.environ.get("DISPLAY"):
            return (
                "no X display to open a window on (DISPLAY is not set): start it in a desktop "
                "session, or under `xvfb-run -a`"
            )
    missing = unresolved_libraries(plugin)
    if not missing:
        return None
    package_of = {so: pkg for pkg, sonames in linux_packages() for so in sonames}
    packages = list(dict.fromkeys(package_of[so] for so in missing if so in package_of))
    unknown = [so for so in missing if so not in package_of]
    parts = []
    if packages:
        parts.append(f"install them with: sudo apt-get install {' '.join(packages)}")
    if unknown:
        parts.append(f"not in our package list: {', '.join(unknown)} (reinstall Hashdesk)")
    return f"Qt's display libraries are missing ({', '.join(missing)}); " + "; ".join(parts)
