"""Content-addressed store for media files and previews, keyed by SHA-256 hex.

A local folder by default; a shared network folder in a team deployment. Writes go through a
temporary file and an atomic rename, so a crash never leaves a half-written object under its key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


class ContentStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a content key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def has(self, key: str) -> bool:
        return self.path_for(key).exists()

    def put_bytes(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        target = self.path_for(key)
        if not target.exists():
            self._write_atomic(target, lambda f: f.write(data))
        return key

    def put_file(self, source: str | Path, sha256: str) -> str:
        """Copy ``source`` into the store under its (already computed) SHA-256."""
        target = self.path_for(sha256)
        if not target.exists():
            with open(source, "rb") as src:
                self._write_atomic(target, lambda f: shutil.copyfileobj(src, f, 1 << 20))
        return sha256

    def get_bytes(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()

    def _write_atomic(self, target: Path, write) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
