"""Replaces PyInstaller's hook for PySide6.QtGui (hooks in packaging/hooks/ take precedence).

It collects the same, minus the Qt plugins a review workstation never loads: embedded-device
platforms (eglfs, linuxfb, vnc, Vulkan KHR display), evdev/TUIO input, the GTK 3 platform theme
(it would load the system's GTK into the bundle's copy of GLib, and pull a GTK stack into the
bundle) and SVG/TIFF/WebP/TGA/WBMP/ICNS image formats. Dropping them here, before PyInstaller
analyses binary dependencies, also keeps out the libraries only they use (QtNetwork, QtSvg,
QtEglFS, GTK, cairo, pango, ...).
"""

from pathlib import PurePath

from PyInstaller.utils.hooks.qt import get_qt_library_info

# plugin folder -> plugin names (file stem without "lib"), or "*" for the whole folder
UNUSED_PLUGINS = {
    "egldeviceintegrations": "*",
    "generic": "*",
    "platforms": {"qeglfs", "qlinuxfb", "qvnc", "qvkkhrdisplay", "qminimalegl", "qdirect2d"},
    "platformthemes": {"qgtk3"},
    "iconengines": {"qsvgicon"},
    "imageformats": {"qsvg", "qtiff", "qwebp", "qtga", "qwbmp", "qicns", "qpdf"},
}


def _unused(src: str, dest_dir: str) -> bool:
    parts = PurePath(dest_dir).parts
    if "plugins" not in parts:
        return False
    folder = "/".join(parts[parts.index("plugins") + 1 :])
    names = UNUSED_PLUGINS.get(folder)
    stem = PurePath(src).name.split(".")[0].removeprefix("lib")
    return names == "*" or (names is not None and stem in names)


hiddenimports, binaries, datas = get_qt_library_info("PySide6").collect_module("PySide6.QtGui")
binaries = [(src, dest) for src, dest in binaries if not _unused(src, dest)]
