"""Pagination of list operations: `limit` and `offset` query parameters, the total in `X-Total-Count`.

A list answers a plain JSON array, as it did before it was paged, so that existing clients keep working;
the total travels in a header.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query, Response

from app.api.schemas import error_responses
from app.models import OrgOwned
from app.repository import Page

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "TOTAL_COUNT_HEADER",
    "Limit",
    "Offset",
    "listed_responses",
    "with_total",
]

TOTAL_COUNT_HEADER = "X-Total-Count"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# Bounded so that no offset a client sends can overflow PostgreSQL's OFFSET (a 422, never a 500).
MAX_OFFSET = 2**31 - 1

R = TypeVar("R", bound=OrgOwned)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"How many records to answer (1 to {MAX_LIMIT})")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many records to skip, oldest first")]


def listed_responses(noun: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a paged list of `noun`: the header on 200, and the refusals."""
    header = {"description": f"How many {noun} the whole list holds", "schema": {"type": "integer", "minimum": 0}}
    return {200: {"headers": {TOTAL_COUNT_HEADER: header}}, **error_responses(401, 403, 422)}


def with_total(response: Response, page: Page[R]) -> Sequence[R]:
    """The records of `page`, with the whole list's total in the `X-Total-Count` header of `response`."""
    response.headers[TOTAL_COUNT_HEADER] = str(page.total)
    return page.items
