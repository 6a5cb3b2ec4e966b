"""Drill worker: one process claiming and deciding from the shared queue until it is empty."""

from __future__ import annotations

import time

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Verdict
from app.storage.db import open_database
from app.storage.review import ReviewService


def claim_and_decide(url: str, user_id: int, start_at: float) -> tuple[int, list[int], float]:
    """Returns (user id, item ids decided in claim order, seconds spent)."""
    db = open_database(url, upgrade=False)
    review = ReviewService(db, lease_seconds=600, second_review_share=0.0)
    while time.time() < start_at:  # every process starts at the same moment
        time.sleep(0.005)
    t0 = time.monotonic()
    decided: list[int] = []
    try:
        while (item := review.claim_next(user_id)) is not None:
            verdict = Verdict.REJECT if item.id % 3 else Verdict.CONFIRM
            category = "manifesto" if verdict is Verdict.CONFIRM else None
            review.decide(DecisionRequest(item.id, user_id, verdict, category, category))
            decided.append(item.id)
    finally:
        db.dispose()
    return user_id, decided, time.monotonic() - t0
