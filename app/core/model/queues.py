"""The queues a reviewer works, and how long a claim on one of their items lasts.

``Queue`` names them: the moderators' review queue, the leads' escalations, blind second
review. A ``StrEnum``, so a member equals its name as text (``Queue.REVIEW == "review"``) and
settings, action ids and windows that still hold the plain name keep working. What each queue
claims, counts, renews and releases is its strategy in app.storage.queues, one per member.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    REVIEW = "review"  # moderators: open items, deadline first
    ESCALATIONS = "escalations"  # leads: items escalated or disagreed on by a second review
    SECOND_REVIEW = "second_review"  # blind: a sample of manual decisions, never one's own


class SecondReviewState(StrEnum):
    """Where a blind second review stands (``second_reviews.status``)."""

    PENDING = "pending"  # waiting for a second moderator
    CLAIMED = "claimed"  # held by one, under a lease
    DONE = "done"  # the second verdict is in


#: How long a claim holds an item before it goes back to its queue, unless renewed. The one
#: default: the settings (file and environment) and the review service read it from here.
DEFAULT_LEASE_SECONDS = 300
