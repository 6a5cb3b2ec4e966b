"""The lead's service: overturn a decision (retracting or adding hashes), and what the overturn
dialog needs to know. The escalation and second-review queues are worked through the review
service (app.storage.escalations, app.storage.second_review); every check is made against the
database's current record of the lead's account (app.storage.permissions)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.core.model.decisions import LeadError, OverturnOutcome
from app.core.model.domain import DecisionMethod, UserInfo
from app.core.model.roles import Permission
from app.storage.db import Database
from app.storage.models import Decision
from app.storage.overturn import overturn_in_session
from app.storage.permissions import authorize
from app.storage.record import recorded


class LeadService:
    """The lead's operations, each one unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def overturn(
        self,
        lead: UserInfo,
        decision_uuid: str,
        reason: str,
        category: str | None = None,
        category_label: str | None = None,
        include_cluster: bool = False,
        uuid: str | None = None,
    ) -> OverturnOutcome:
        with self.db.session() as s:
            authorize(s, lead, Permission.OVERTURN)
            if uuid and recorded(s, uuid):
                raise LeadError(f"overturn {uuid} was already recorded")
            return overturn_in_session(
                s,
                lead.id,
                decision_uuid,
                reason,
                category,
                category_label,
                include_cluster,
                uuid,
            )

    def cluster_size_of(self, lead: UserInfo, decision_uuid: str) -> int:
        """How many cluster members were decided with this decision (for the overturn dialog)."""
        with self.db.session() as s:
            authorize(s, lead, Permission.OVERTURN)
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(Decision)
                    .where(
                        Decision.parent_uuid == decision_uuid,
                        Decision.method == DecisionMethod.CLUSTER,
                    )
                )
                or 0
            )
