"""Memberships of one organisation, with each member's Clerk id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.models import CLERK, ExternalIdentity, Membership
from app.repository.base import OrgScopedRepository

__all__ = ["MemberRepository", "MemberRow"]


@dataclass(frozen=True)
class MemberRow:
    """A membership with the member's Clerk id."""

    membership: Membership
    external_id: str | None


class MemberRepository(OrgScopedRepository[Membership]):
    """Memberships of one organisation."""

    model = Membership

    def find(self, user_id: uuid.UUID) -> Membership | None:
        """The membership of `user_id` in the caller's organisation; None if they are not a member."""
        return self.session.scalars(self.select().where(Membership.user_id == user_id).limit(1)).first()

    def members(self, user_id: uuid.UUID | None = None) -> list[MemberRow]:
        """The members of the caller's organisation (or just `user_id`) with their Clerk ids, oldest first."""
        statement = (
            self.select()
            .add_columns(ExternalIdentity.external_id)
            .outerjoin(
                ExternalIdentity,
                (ExternalIdentity.user_id == Membership.user_id) & (ExternalIdentity.provider == CLERK),
            )
        )
        if user_id is not None:
            statement = statement.where(Membership.user_id == user_id)
        rows = self.session.execute(self.ordered(statement))
        return [MemberRow(membership=m, external_id=e) for m, e in rows]

    def join(self, user_id: uuid.UUID) -> Membership | None:
        """Make `user_id` a member of the caller's organisation; None if they already are one."""
        inserted = self.session.scalar(
            insert(Membership)
            .values(id=uuid.uuid4(), org_id=self.org_id, user_id=user_id)
            .on_conflict_do_nothing(index_elements=[Membership.org_id, Membership.user_id])
            .returning(Membership.id)
        )
        return None if inserted is None else self.session.get(Membership, inserted)

    def external_id(self, user_id: uuid.UUID) -> str | None:
        """The Clerk id of a user."""
        return self.session.scalar(
            select(ExternalIdentity.external_id).where(
                ExternalIdentity.provider == CLERK, ExternalIdentity.user_id == user_id
            )
        )
