"""The queue vocabulary and the one lease default."""

from __future__ import annotations

import inspect
import re

from app.core.model.domain import IngestOutcome
from app.core.model.queues import DEFAULT_LEASE_SECONDS, Queue, SecondReviewState
from app.core.settings import settings_file
from app.core.settings.config import Settings, load_settings


def test_the_lease_default_is_stated_once(tmp_path, monkeypatch):
    from app.storage.review import ReviewService

    monkeypatch.delenv("HASHDESK_LEASE_SECONDS", raising=False)
    assert Settings("sqlite://", tmp_path).lease_seconds == DEFAULT_LEASE_SECONDS
    assert load_settings({}).lease_seconds == DEFAULT_LEASE_SECONDS
    default = inspect.signature(ReviewService).parameters["lease_seconds"].default
    assert default == DEFAULT_LEASE_SECONDS
    # The settings file's documented example shows the default too.
    shown = re.search(r"^\s*lease_seconds = (\d+)", settings_file.__doc__ or "", re.M)
    assert shown is not None and int(shown.group(1)) == DEFAULT_LEASE_SECONDS


def test_the_vocabularies_are_str_enums_of_their_stored_words():
    assert [q.value for q in Queue] == ["review", "escalations", "second_review"]
    assert [s.value for s in SecondReviewState] == ["pending", "claimed", "done"]
    assert {o.value for o in IngestOutcome} == {
        "new",
        "copy",
        "auto_matched",
        "unreadable",
        "missing",
        "skipped",
    }
    assert all(isinstance(m, str) for m in (*Queue, *SecondReviewState, *IngestOutcome))
