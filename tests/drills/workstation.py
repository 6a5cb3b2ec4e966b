"""Drill: a workstation without Qt, as the review window drives it: claim, journal the decision
(fsync'd), apply the journal to the shared database. The drill SIGKILLs it mid-way.

python -m tests.drills.workstation URL JOURNAL USER_ID LEASE_SECONDS
"""

from __future__ import annotations

import sys

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Verdict
from app.storage.db import open_database
from app.storage.exposure import ExposureService
from app.storage.journal import DecisionJournal, JournalSync
from app.storage.review import ReviewService


def main(url: str, journal_file: str, user_id: int, lease: int) -> None:
    db = open_database(url, upgrade=False)
    review = ReviewService(db, lease_seconds=lease, second_review_share=0.0)
    journal = DecisionJournal(journal_file)
    sync = JournalSync(journal, review, ExposureService(db))
    n = 0
    while True:
        # Like the window: a couple of items claimed ahead, the decision journalled first.
        item = review.claim_next(user_id)
        ahead = review.claim_next(user_id)
        if item is None:
            break
        journal.record_decision(DecisionRequest(item.id, user_id, Verdict.REJECT))
        n += 1
        print(f"journalled {n}", flush=True)
        if n % 3:  # the writer lags behind the moderator now and then
            sync.sync()
        if ahead is not None:
            review.release(user_id, [ahead.id])
    sync.sync()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
