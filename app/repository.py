"""The org-scoped base repository: every business query goes through it, scoped to the caller's organisation.

Scoping happens inside the SQL (`WHERE org_id = :caller_org`), so a record of another organisation is
indistinguishable from a record that does not exist: both read as None and the API answers 404.
Row-level security on the business tables backs this up for connections that do not bypass it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.models import CLERK, Contact, ExternalIdentity, Membership, OrgOwned

__all__ = ["ContactRepository", "MemberRepository", "MemberRow", "OrgScopedRepository"]

T = TypeVar("T", bound=OrgOwned)


class OrgScopedRepository(Generic[T]):
    """Reads and writes rows of `model` that belong to one organisation, and no other."""

    model: ClassVar[type[Any]]

    def __init__(self, session: Session, org_id: uuid.UUID, *, scoped: bool = True) -> None:
        # `scoped=False` exists only as the `no_org_scope` fault switch: the historical bug, on purpose.
        self.session = session
        self.org_id = org_id
        self._scoped = scoped

    def bind_row_security(self) -> None:
        """Tell PostgreSQL which organisation this transaction acts for (read by the row-level policies)."""
        self.session.execute(select(func.set_config("app.org_id", str(self.org_id), True)))

    def select(self) -> Select[T]:
        """`SELECT model` limited to the caller's organisation: the start of every read."""
        self.bind_row_security()
        statement: Select[T] = select(self.model)
        if self._scoped:
            statement = statement.where(self.model.org_id == self.org_id)
        return statement

    def get(self, record_id: uuid.UUID) -> T | None:
        """The record with this id in the caller's organisation; None if missing or in another organisation."""
        return self.session.scalars(self.select().where(self.model.id == record_id)).one_or_none()

    def all(self) -> Sequence[T]:
        """Every record of the caller's organisation, oldest first."""
        return self.session.scalars(self.select().order_by(self.model.created_at, self.model.id)).all()

    def add(self, record: T) -> T:
        """Store a new record in the caller's organisation (whatever org_id it came with)."""
        self.bind_row_security()
        record.org_id = self.org_id
        self.session.add(record)
        self.session.flush()
        return record

    def delete(self, record: T) -> None:
        """Delete a record obtained from this repository."""
        self.bind_row_security()
        self.session.delete(record)
        self.session.flush()


class ContactRepository(OrgScopedRepository[Contact]):
    """CRM contacts of one organisation."""

    model = Contact

    def create(self, *, name: str, email: str | None, notes: str) -> Contact:
        """A new contact in the caller's organisation."""
        return self.add(Contact(id=uuid.uuid4(), org_id=self.org_id, name=name, email=email, notes=notes))

    def update(self, contact: Contact, changes: dict[str, Any]) -> Contact:
        """Apply `changes` (name, email, notes) to a contact obtained from this repository."""
        self.bind_row_security()
        for field_name in ("name", "email", "notes"):
            if field_name in changes:
                setattr(contact, field_name, changes[field_name])
        contact.updated_at = datetime.now(UTC)
        self.session.flush()
        return contact


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

    def members(self) -> list[MemberRow]:
        """Every member of the caller's organisation with their Clerk id, oldest first."""
        statement = (
            self.select()
            .add_columns(ExternalIdentity.external_id)
            .outerjoin(
                ExternalIdentity,
                (ExternalIdentity.user_id == Membership.user_id) & (ExternalIdentity.provider == CLERK),
            )
            .order_by(Membership.created_at, Membership.id)
        )
        return [MemberRow(membership=m, external_id=e) for m, e in self.session.execute(statement)]

    def join(self, user_id: uuid.UUID) -> Membership | None:
        """Make `user_id` a member of the caller's organisation; None if they already are one."""
        self.bind_row_security()
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
                ExternalIdentity.user_id == user_id, ExternalIdentity.provider == CLERK
            )
        )
