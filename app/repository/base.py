"""The org-scoped base repository: every business query goes through it, scoped to the caller's organisation.

Scoping happens inside the SQL (`WHERE org_id = :caller_org`), so a record of another organisation is
indistinguishable from a record that does not exist: both read as None and the API answers 404. The
repository also binds its organisation to the session (`app.current_org`), so row-level security checks
every statement a second time, whatever the query says.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import tenancy
from app.errors import ApiError
from app.models import OrgOwned

__all__ = ["OrgScopedRepository", "Page"]

T = TypeVar("T", bound=OrgOwned)
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the number of records the whole list holds."""

    items: Sequence[T]
    total: int


class OrgScopedRepository(Generic[T]):
    """Reads and writes rows of `model` that belong to one organisation, and no other."""

    model: ClassVar[type[Any]]

    def __init__(
        self, session: Session, org_id: uuid.UUID, *, scoped: bool = True, trust_record_org: bool = False
    ) -> None:
        # `scoped=False` exists only as the `no_org_scope` fault switch, and `trust_record_org=True` only as
        # `mass_assign_org_id`: the historical bugs, on purpose.
        self.session = session
        self.org_id = org_id
        self._scoped = scoped
        self._trust_record_org = trust_record_org
        tenancy.bind_org(session, org_id)

    def scope(self, statement: S, model: type[Any] | None = None) -> S:
        """`statement` limited to rows of `model` (this repository's by default) in the caller's organisation."""
        if not self._scoped:
            return statement
        return statement.where((model or self.model).org_id == self.org_id)

    def select(self) -> Select[T]:
        """`SELECT model` limited to the caller's organisation: the start of every read."""
        return self.scope(select(self.model))

    def get(self, record_id: uuid.UUID) -> T | None:
        """The record with this id in the caller's organisation; None if missing or in another organisation."""
        return self.session.scalars(self.select().where(self.model.id == record_id)).one_or_none()

    def all(self) -> Sequence[T]:
        """Every record of the caller's organisation, oldest first."""
        return self.session.scalars(self.ordered(self.select())).all()

    def ordered(self, statement: S) -> S:
        """`statement` oldest first (ties broken by id, so that pages never overlap)."""
        return statement.order_by(self.model.created_at, self.model.id)

    def page(self, statement: Select[T], *, limit: int, offset: int) -> Page[T]:
        """One page of `statement` (a scoped select of this repository's model), oldest first, and its total: both
        from one query (`count(*) OVER ()` counts the rows before LIMIT cuts them), unless the page is past the end."""
        rows = self.session.execute(
            self.ordered(statement).add_columns(func.count().over().label("total")).limit(limit).offset(offset)
        ).all()
        if rows:
            return Page(items=[row[0] for row in rows], total=int(rows[0].total))
        if offset == 0:
            return Page(items=[], total=0)
        total = self.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
        return Page(items=[], total=int(total or 0))

    def add(self, record: T, *, org_id: uuid.UUID | None = None) -> T:
        """Store a new record in the caller's organisation (`org_id` is only honoured by the fault switch)."""
        record.org_id = org_id if (self._trust_record_org and org_id is not None) else self.org_id
        self.session.add(record)
        self._flush(record)
        return record

    def save(self, record: T, changes: dict[str, Any], fields: Sequence[str]) -> T:
        """Apply the `fields` present in `changes` to a record obtained from this repository, and store it."""
        for field_name in fields:
            if field_name in changes:
                setattr(record, field_name, changes[field_name])
        if self._trust_record_org and changes.get("org_id") is not None:
            record.org_id = changes["org_id"]
        if hasattr(record, "updated_at"):
            record.updated_at = datetime.now(UTC)
        self._flush(record)
        return record

    def delete(self, record: T) -> None:
        """Delete a record obtained from this repository."""
        self.session.delete(record)
        self.session.flush()

    def _flush(self, record: T) -> None:
        if self._trust_record_org:
            # The `mass_assign_org_id` bug: the write acts for whatever organisation the record names, so
            # row-level security checks the record against its own claim instead of the caller's.
            tenancy.bind_org_once(self.session, record.org_id)
            try:
                self.session.flush()
            except StaleDataError:
                # An update moving a record: the row it was is not the claimed organisation's to see, so nothing
                # matched. The bug answers as for a missing record, never a 500.
                raise ApiError.not_found() from None
            return
        self.session.flush()
