"""The services a window needs, passed explicitly (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.config import Settings
from app.core.contentstore import ContentStore
from app.core.taxonomy import Taxonomy
from app.storage.db import Database
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

    def __post_init__(self) -> None:
        self.review = ReviewService(self.db, lease_seconds=self.settings.lease_seconds)
        self.users = UserService(self.db)
