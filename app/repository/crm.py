"""The CRM's repositories: contacts, deals, and the notes on a deal, each scoped to one organisation."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, Text, any_, bindparam, cast, delete, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session

from app.models import Contact, Deal, Note
from app.repository.base import OrgScopedRepository, Page

__all__ = ["CONTACT_FIELDS", "DEAL_FIELDS", "ContactRepository", "DealRepository", "NoteRepository"]

CONTACT_FIELDS = ("name", "email", "notes")
DEAL_FIELDS = ("title", "amount", "contact_id")


class ContactRepository(OrgScopedRepository[Contact]):
    """CRM contacts of one organisation."""

    model = Contact

    def create(self, *, name: str, email: str | None, notes: str, org_id: uuid.UUID | None = None) -> Contact:
        """A new contact in the caller's organisation."""
        return self.add(Contact(id=uuid.uuid4(), name=name, email=email, notes=notes), org_id=org_id)

    def update(self, contact: Contact, changes: dict[str, Any]) -> Contact:
        """Apply `changes` (name, email, notes) to a contact obtained from this repository."""
        return self.save(contact, changes, CONTACT_FIELDS)

    def matching(self, text: str) -> Select[Contact]:
        """The caller's contacts whose name, email or notes contain `text` (any case; `%` and `_` are literal)."""
        return self.select().where(
            or_(
                Contact.name.icontains(text, autoescape=True),
                Contact.email.icontains(text, autoescape=True),
                Contact.notes.icontains(text, autoescape=True),
            )
        )

    def search(self, text: str, *, limit: int, offset: int) -> Page[Contact]:
        """One page of the caller's contacts matching `text`, oldest first."""
        return self.page(self.matching(text), limit=limit, offset=offset)

    def delete_many(self, ids: Sequence[str]) -> int:
        """Delete those of `ids` that are contacts of the caller's organisation; how many were deleted.

        The ids travel as text and PostgreSQL casts them: an id of another organisation, a missing one and
        a duplicate all count the same (zero), so the answer tells nothing about other organisations.
        """
        wanted = cast(bindparam("ids", value=list(ids), type_=ARRAY(Text)), ARRAY(UUID(as_uuid=True)))
        statement = delete(Contact).where(Contact.id == any_(wanted))
        if self._scoped:
            statement = statement.where(Contact.org_id == self.org_id)
        deleted = self.session.execute(statement.returning(Contact.id)).all()
        return len(deleted)

    def names(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of those of `ids` that are the caller's contacts."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = self.session.execute(self.scope(select(Contact.id, Contact.name)).where(Contact.id.in_(wanted)))
        return {contact_id: name for contact_id, name in rows}


class DealRepository(OrgScopedRepository[Deal]):
    """Deals of one organisation."""

    model = Deal

    def create(self, *, title: str, amount: int, contact_id: uuid.UUID | None, org_id: uuid.UUID | None = None) -> Deal:
        """A new deal in the caller's organisation (the caller checks `contact_id` first)."""
        return self.add(Deal(id=uuid.uuid4(), title=title, amount=amount, contact_id=contact_id), org_id=org_id)

    def update(self, deal: Deal, changes: dict[str, Any]) -> Deal:
        """Apply `changes` (title, amount, contact_id) to a deal obtained from this repository."""
        return self.save(deal, changes, DEAL_FIELDS)


class NoteRepository(OrgScopedRepository[Note]):
    """Notes on one deal of one organisation."""

    model = Note

    def __init__(self, session: Session, org_id: uuid.UUID, deal: Deal, *, scoped: bool = True) -> None:
        super().__init__(session, org_id, scoped=scoped)
        self.deal = deal

    def select(self) -> Select[Note]:
        """The notes of this deal in the caller's organisation."""
        return super().select().where(Note.deal_id == self.deal.id)

    def create(self, *, body: str) -> Note:
        """A new note on this deal; its organisation is the deal's (the key to the deal is the pair)."""
        note = Note(id=uuid.uuid4(), org_id=self.deal.org_id, deal_id=self.deal.id, body=body)
        self.session.add(note)
        self.session.flush()
        return note

    def update(self, note: Note, changes: dict[str, Any]) -> Note:
        """Apply `changes` (body) to a note obtained from this repository."""
        return self.save(note, changes, ("body",))
