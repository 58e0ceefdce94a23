"""Invites of one organisation: created, listed and revoked by its member managers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert

from app import tenancy
from app.models import Invite, Role
from app.repository.base import OrgScopedRepository

__all__ = ["InviteRepository", "InviteRow", "Revoked"]


@dataclass(frozen=True)
class InviteRow:
    """An invite with the name of the role it grants."""

    invite: Invite
    role: str


class Revoked(StrEnum):
    """What revoking found: the invite revoked (or already so), or used already, or not there."""

    DONE = "done"
    USED = "used"
    MISSING = "missing"


class InviteRepository(OrgScopedRepository[Invite]):
    """Invites into the caller's organisation."""

    model = Invite

    def create(
        self,
        *,
        email: str,
        role_id: uuid.UUID,
        invited_by: uuid.UUID,
        token_digest: str,
        ttl_seconds: int,
        org_id: uuid.UUID | None = None,
    ) -> Invite:
        """A new invite into the caller's organisation, expiring `ttl_seconds` from now (by the database's clock).

        `org_id` is only honoured by the `invite_cross_org` fault switch (`trust_record_org`).
        """
        target = org_id if (self._trust_record_org and org_id is not None) else self.org_id
        if target != self.org_id:
            # The `invite_cross_org` bug: the insert acts for the organisation the body names, so row-level
            # security checks the invite against its own claim instead of the caller's membership.
            tenancy.bind_org_once(self.session, target)
        return self.session.scalars(
            insert(Invite)
            .values(
                id=uuid.uuid4(),
                org_id=target,
                email=email,
                role_id=role_id,
                token_digest=token_digest,
                invited_by=invited_by,
                expires_at=func.now() + timedelta(seconds=ttl_seconds),
            )
            .returning(Invite)
        ).one()

    def invites(self) -> list[InviteRow]:
        """Every invite into the caller's organisation, whatever its state, oldest first."""
        statement = self.select().add_columns(Role.name).join(Role, Role.id == Invite.role_id)
        return [InviteRow(invite=invite, role=role) for invite, role in self.session.execute(self.ordered(statement))]

    def revoke(self, invite_id: uuid.UUID) -> Revoked:
        """Revoke a pending invite of the caller's organisation (a revoked one stays revoked, first time kept).

        One guarded statement, so that a revocation racing an accept either lands first or finds it used.
        """
        statement = update(Invite).where(Invite.id == invite_id, Invite.accepted_at.is_(None))
        if self._scoped:
            statement = statement.where(Invite.org_id == self.org_id)
        revoked = self.session.scalar(
            statement.values(revoked_at=func.coalesce(Invite.revoked_at, func.now()))
            .returning(Invite.id)
            .execution_options(synchronize_session=False)
        )
        if revoked is not None:
            return Revoked.DONE
        return Revoked.MISSING if self.get(invite_id) is None else Revoked.USED
