"""What a database holds, in numbers (`hashdesk db info`): plain counts read in one session,
so the command needs neither the models nor a query of its own."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.storage.db import Database
from app.storage.models import Decision, HashListEntry, Item, User


@dataclass(frozen=True)
class RecordCounts:
    users: int
    items: int
    decisions: int
    hash_list: int  # every row, retracted and disabled ones too

    def lines(self) -> list[tuple[str, int]]:
        """(label, count) in the order `db info` prints them."""
        return [
            ("users", self.users),
            ("items", self.items),
            ("decisions", self.decisions),
            ("hash list", self.hash_list),
        ]


def record_counts(db: Database) -> RecordCounts:
    """How many accounts, items, decisions and hash-list rows the database holds."""
    with db.session() as s:

        def count(model: type) -> int:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

        return RecordCounts(count(User), count(Item), count(Decision), count(HashListEntry))
