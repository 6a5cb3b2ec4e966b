"""The decision categories, read from a TOML file (resources/taxonomy.toml by default)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import Refusal
from app.core.model.domain import Category


class TaxonomyError(Refusal, ValueError):
    pass


@dataclass(frozen=True)
class Taxonomy:
    categories: tuple[Category, ...]

    def by_shortcut(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.shortcut == key), None)

    def by_key(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.key == key), None)


def load_taxonomy(path: str | Path) -> Taxonomy:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"cannot read taxonomy file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"taxonomy file {path} is not valid TOML: {exc}") from exc
    entries = data.get("category")
    if not isinstance(entries, list) or not entries:
        raise TaxonomyError(f"taxonomy file {path} has no [[category]] entries")
    cats: list[Category] = []
    seen_keys: set[str] = set()
    seen_shortcuts: set[str] = set()
    for i, entry in enumerate(entries, 1):
        key = str(entry.get("key", "")).strip()
        label = str(entry.get("label", "")).strip()
        shortcut = str(entry.get("shortcut", "")).strip()
        if not key or not label:
            raise TaxonomyError(f"taxonomy file {path}: category {i} needs a key and a label")
        if shortcut not in {str(n) for n in range(1, 10)}:
            raise TaxonomyError(
                f"taxonomy file {path}: category {key!r} has shortcut {shortcut!r}; "
                "use one of the keys 1 to 9"
            )
        if key in seen_keys or shortcut in seen_shortcuts:
            raise TaxonomyError(f"taxonomy file {path}: category {key!r} repeats a key or shortcut")
        seen_keys.add(key)
        seen_shortcuts.add(shortcut)
        cats.append(Category(key=key, label=label, shortcut=shortcut))
    return Taxonomy(tuple(cats))
