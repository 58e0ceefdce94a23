"""What handlers of single records share: a record found or refused, and a record deleted.

A record the caller cannot see is always refused the same way (`Services.missing`), so that every handler
answers alike for "missing" and "another organisation's".
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from fastapi import Response
from sqlalchemy.orm import Session

from app.models import OrgOwned
from app.repository import OrgScopedRepository
from app.services import Services

__all__ = ["deleted", "found"]

T = TypeVar("T")
R = TypeVar("R", bound=OrgOwned)


def found(services: Services, model: type[Any], record_id: uuid.UUID, record: T | None, *, key: str = "id") -> T:
    """`record` as looked up by `record_id` (its `key`); the refusal for a record the caller cannot see if None."""
    if record is None:
        raise services.missing(model, record_id, key=key)
    return record


def deleted(session: Session, repository: OrgScopedRepository[R], record: R) -> Response:
    """Delete a record obtained from `repository`, commit, and answer 204."""
    repository.delete(record)
    session.commit()
    return Response(status_code=204)
