"""The services a window needs, passed explicitly (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.core.config import Settings, data_dir, redact_url
from app.core.contentstore import ContentStore
from app.core.hash_index import HashIndex
from app.core.taxonomy import Taxonomy
from app.storage.db import Database
from app.storage.journal import DecisionJournal, journal_path
from app.storage.notify import HashListWatcher
from app.storage.review import ReviewService
from app.storage.users import UserService


@dataclass
class AppContext:
    settings: Settings
    db: Database
    store: ContentStore
    taxonomy: Taxonomy
    review: ReviewService = field(init=False)
    users: UserService = field(init=False)
    key_overrides: dict[str, str] = field(default_factory=dict)
    # Where this workstation's decision journal lives (default: the user data directory).
    journal_dir: Path | None = None
    journal: DecisionJournal = field(init=False)
    # The hash list in memory, kept current by the watcher (LISTEN/NOTIFY or a watermark poll).
    hash_index: HashIndex = field(init=False)
    watcher: HashListWatcher = field(init=False)

    def __post_init__(self) -> None:
        self.review = ReviewService(self.db, lease_seconds=self.settings.lease_seconds)
        self.users = UserService(self.db)
        # Keyed by the URL without its password: a changed password keeps the same journal.
        where = redact_url(self.db.engine.url.render_as_string(hide_password=True))
        self.journal = DecisionJournal(journal_path(where, self.journal_dir or data_dir()))
        self.hash_index = HashIndex()
        self.watcher = HashListWatcher(self.db, self.hash_index, policy=self.settings.match)
