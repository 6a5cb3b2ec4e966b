"""A plausible few hours of team work on the demo queue, so that `hashdesk demo --lead` opens a
history and statistics with something in them. Harmless generated data only."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import update

from app.compose import AppContext
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, Role, UserInfo, Verdict, utcnow
from app.core.model.history_types import HistoryFilter
from app.storage.models import Item

MODERATORS = (("amira", "Amira K."), ("jonas", "Jonas B."), ("li", "Li W."), ("sofia", "Sofia R."))
NOTES = (
    None,
    None,
    None,
    "flag in background only",
    "news report of the attack",
    "satire account",
    "reupload of known video",
    None,
    "recruitment poster",
    None,
)


def simulate_team_history(
    ctx: AppContext,
    lead: UserInfo,
    password: str,
    share: float = 0.7,
    seed: int = 3,
) -> int:
    """Four demo moderators decide about ``share`` of the open queue over the last few hours
    (with second reviews, as many as the context's settings sample), and ``lead`` overturns
    one decision. Uses the context's services. Returns decisions made."""
    db, taxonomy, users, review = ctx.db, ctx.taxonomy, ctx.users, ctx.review
    mods = [users.get(n) or users.add(n, password, Role.MODERATOR, d) for n, d in MODERATORS]
    rng = random.Random(seed)
    with db.session() as s:  # some removal orders already overdue
        s.execute(
            update(Item).where(Item.id % 4 == 0).values(deadline=utcnow() - timedelta(hours=3))
        )
    open_now = review.counts(mods[0].id).open_items
    target = int(open_now * share)
    now = utcnow()
    t = now - timedelta(hours=4, minutes=30)
    made = 0
    while made < target:
        mod = mods[made % len(mods)]
        item = review.claim_next(mod.id)
        if item is None:
            break
        v = rng.choices([Verdict.CONFIRM, Verdict.REJECT, Verdict.ESCALATE], [45, 45, 8])[0]
        c = rng.choice(taxonomy.categories) if v is Verdict.CONFIRM else None
        t += timedelta(minutes=rng.randint(1, 7))
        review.decide(
            DecisionRequest(
                item.id,
                mod.id,
                v,
                c.key if c else None,
                c.label if c else None,
                rng.choice(NOTES),
                decided_at=min(t, now),
            )
        )
        made += 1
    for m in mods:
        while (it := review.claim_next(m.id, queue="second_review")) is not None:
            v = rng.choice([Verdict.CONFIRM, Verdict.REJECT, Verdict.REJECT])
            c = rng.choice(taxonomy.categories) if v is Verdict.CONFIRM else None
            review.decide(
                DecisionRequest(
                    it.id,
                    m.id,
                    v,
                    c.key if c else None,
                    c.label if c else None,
                    method=DecisionMethod.SECOND_REVIEW,
                )
            )
            made += 1
    mine = HistoryFilter(verdicts=(Verdict.CONFIRM,), methods=(DecisionMethod.MANUAL,))
    confirms = ctx.history.page(lead, mine).rows
    if len(confirms) > 3:
        ctx.leads.overturn(
            lead, confirms[3].uuid, "news footage of the aftermath, not glorification"
        )
        made += 1
    return made
