"""Build Hashdesk's distributable for the operating system this runs on.

    python packaging/build.py            (from the repository root, in the app's environment
                                          with PyInstaller installed: pip install pyinstaller)

1. PyInstaller builds the one-folder bundle from packaging/hashdesk.spec into dist/hashdesk
   (work files in build/pyinstaller).
2. The frozen app runs its own end-to-end check (`hashdesk self-test`, offscreen); a failure
   stops the build with a non-zero exit status.
3. The distributable:
   Linux    dist/hashdesk-VERSION-linux-ARCH.tar.gz: the bundle, a .desktop file, the icon and
            install.sh
   Windows  dist/hashdesk-VERSION-windows-x64-setup.exe with Inno Setup (iscc on PATH), from
            packaging/windows/hashdesk.iss
   macOS    dist/Hashdesk.app and dist/hashdesk-VERSION-macos-ARCH.dmg (packaging/macos/make_dmg.sh)
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
SPEC = PACKAGING / "hashdesk.spec"
BUNDLE = DIST / "hashdesk"
SELF_TEST_TIMEOUT = 600

# Lines in the frozen app's stderr that mean something is missing from the bundle or the machine.
TROUBLE = re.compile(
    r"could not (load|find) the qt platform plugin|cannot load library|"
    r"cannot open shared object|qt\.qpa\.plugin|fontconfig (error|warning)|"
    r"qfontdatabase|no module named|failed to load",
    re.IGNORECASE,
)


def package_constants() -> dict[str, str]:
    tree = ast.parse((ROOT / "app" / "__init__.py").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                found[target.id] = node.value.value
    return found


def say(message: str) -> None:
    print(f"[build] {message}", flush=True)


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def tree_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def frozen_cli() -> Path:
    """The executable that prints to a console: on Windows the separate hashdesk-cli.exe."""
    if sys.platform == "win32":
        return BUNDLE / "hashdesk-cli.exe"
    if sys.platform == "darwin":
        return DIST / "Hashdesk.app" / "Contents" / "MacOS" / "hashdesk"
    return BUNDLE / "hashdesk"


def run_pyinstaller(clean: bool) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        sys.exit(
            f"PyInstaller is not installed in {sys.executable}: "
            f"{sys.executable} -m pip install pyinstaller"
        )
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST),
        "--workpath",
        str(WORK),
    ]
    if clean:
        cmd.append("--clean")
    cmd.append(str(SPEC))
    say("PyInstaller: " + " ".join(cmd[1:]))
    subprocess.run(cmd, cwd=ROOT, check=True)


def run_self_test() -> bool:
    exe = frozen_cli()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    say(f"self-test: {exe} self-test")
    try:
        proc = subprocess.run(
            [str(exe), "self-test"],
            cwd=DIST,  # not the source tree: the bundle must not find the app's sources
            env=env,
            capture_output=True,
            text=True,
            timeout=SELF_TEST_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        say(f"self-test did not finish in {SELF_TEST_TIMEOUT} s")
        return False
    sys.stdout.write(proc.stdout)
    trouble = [line for line in proc.stderr.splitlines() if TROUBLE.search(line)]
    if proc.stderr.strip():
        say("self-test stderr:")
        sys.stdout.write(proc.stderr if proc.stderr.endswith("\n") else proc.stderr + "\n")
    for line in trouble:
        say(f"warning from the frozen app: {line}")
    if proc.returncode != 0:
        say(f"self-test FAILED (exit status {proc.returncode})")
        return False
    return True


def missing_libraries() -> dict[str, list[str]]:
    """Linux: shared libraries that the bundle's binaries need and neither the bundle nor this
    machine has (ldd, with the bundle's folders first on the search path as at run time), each
    with the bundle files that need it. PyInstaller bundles what the build machine has, so a
    library missing here is one the workstation must provide (e.g. Wayland's client libraries,
    present on every Wayland desktop)."""
    if not shutil.which("ldd"):
        return {}
    internal = BUNDLE / "_internal"
    elves = [p for p in internal.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    elves.append(BUNDLE / "hashdesk")
    dirs = sorted({str(p.parent) for p in elves})
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join([str(internal), *dirs]))
    missing: dict[str, list[str]] = {}
    for elf in elves:
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            if "not found" in line:
                missing.setdefault(line.split()[0], []).append(elf.name)
    return missing


def linux_archive(version: str, app_id: str) -> Path:
    arch = platform.machine() or "x86_64"
    top = f"hashdesk-{version}"
    out = DIST / f"hashdesk-{version}-linux-{arch}.tar.gz"
    icon = ROOT / "resources" / "icons" / "hashdesk.png"

    def reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(BUNDLE, arcname=f"{top}/hashdesk", filter=reset_owner)
        tar.add(
            PACKAGING / "linux" / f"{app_id}.desktop",
            arcname=f"{top}/{app_id}.desktop",
            filter=reset_owner,
        )
        tar.add(icon, arcname=f"{top}/{app_id}.png", filter=reset_owner)
        tar.add(PACKAGING / "linux" / "install.sh", arcname=f"{top}/install.sh", filter=reset_owner)
    return out


def windows_installer(version: str, app_id: str) -> Path | None:
    iss = PACKAGING / "windows" / "hashdesk.iss"
    cmd = ["iscc", f"/DAppVersion={version}", f"/DAppId={app_id}", str(iss)]
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if iscc is None:
        say(
            "Inno Setup's iscc is not on PATH; install Inno Setup 6 (https://jrsoftware.org/isinfo.php"
        )
        say("or `choco install innosetup`) and run: " + " ".join(cmd))
        return None
    subprocess.run([iscc, *cmd[1:]], cwd=ROOT, check=True)
    return DIST / f"hashdesk-{version}-windows-x64-setup.exe"


def macos_dmg(version: str) -> Path | None:
    script = PACKAGING / "macos" / "make_dmg.sh"
    if shutil.which("hdiutil") is None:
        say(f"hdiutil not found (it is part of macOS): run {script} {version} on a Mac")
        return None
    subprocess.run(["sh", str(script), version], cwd=ROOT, check=True)
    return DIST / f"hashdesk-{version}-macos-{platform.machine()}.dmg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    parser.add_argument(
        "--skip-build", action="store_true", help="reuse dist/hashdesk: self-test and package only"
    )
    parser.add_argument("--no-package", action="store_true", help="build and self-test only")
    args = parser.parse_args(argv)

    constants = package_constants()
    version, app_id = constants["__version__"], constants["APP_ID"]
    say(f"Hashdesk {version} ({app_id}) on {platform.system()} {platform.machine()}")
    started = time.monotonic()
    if not args.skip_build:
        run_pyinstaller(args.clean)
    built = time.monotonic()
    if not frozen_cli().exists():
        say(f"no frozen executable at {frozen_cli()}")
        return 1

    if sys.platform.startswith("linux"):
        missing = missing_libraries()
        for lib, users in sorted(missing.items()):
            users = sorted(set(users))
            names = ", ".join(users[:3]) + (", ..." if len(users) > 3 else "")
            say(f"not bundled, left to the workstation: {lib} (for {names})")
        if not missing:
            say("every shared library the bundle needs resolves (ldd)")

    if not run_self_test():
        return 1

    outputs: list[Path | None] = []
    if not args.no_package:
        if sys.platform.startswith("linux"):
            outputs.append(linux_archive(version, app_id))
        elif sys.platform == "win32":
            outputs.append(windows_installer(version, app_id))
        elif sys.platform == "darwin":
            outputs.append(macos_dmg(version))

    done = time.monotonic()
    say(f"bundle: {BUNDLE} ({human_size(tree_size(BUNDLE))})")
    for out in outputs:
        if out is not None:
            say(f"distributable: {out} ({human_size(out.stat().st_size)})")
    say(
        f"took {done - started:.0f} s (PyInstaller {built - started:.0f} s, "
        f"self-test and packaging {done - built:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
