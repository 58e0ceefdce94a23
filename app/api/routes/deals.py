"""`/api/deals`: the deals of the caller's organisation, each optionally pointing at one of its contacts.

A deal's `contact_id` is a nested reference: it must name a contact of the caller's organisation. Another
organisation's contact and a contact that does not exist get the same 422, so a deal can neither point
across organisations nor be used to probe for ids. The answer embeds the contact's name, read through the
caller's own scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.deps import (
    DealsDeleter,
    DealsReader,
    DealsWriter,
    RawBody,
    ServicesDep,
    SessionDep,
    json_body_openapi,
    parse_body_with_org,
)
from app.api.pagination import DEFAULT_LIMIT, Limit, Offset, listed_responses, with_total
from app.api.records import deleted, found
from app.api.schemas import DealCreate, DealOut, DealPatch, error_responses
from app.auth.policy import Principal
from app.db import sqlstate_of
from app.faults import Fault
from app.models import Deal
from app.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/deals", tags=["deals"])

FOREIGN_KEY_VIOLATION = "23503"

_LISTED = listed_responses("deals")
_GUARDED = error_responses(401, 403, 422)
_BY_ID = error_responses(401, 403, 404, 422)


def _outs(
    services: Services, session: Session, principal: Principal, deals: Sequence[Deal], *, scoped: bool | None = None
) -> list[DealOut]:
    names = services.contact_names(session, principal, [d.contact_id for d in deals if d.contact_id], scoped=scoped)
    return [
        DealOut(
            id=deal.id,
            title=deal.title,
            amount=deal.amount,
            contact_id=deal.contact_id,
            contact_name=names.get(deal.contact_id) if deal.contact_id else None,
            created_at=deal.created_at,
            updated_at=deal.updated_at,
        )
        for deal in deals
    ]


def _unknown_contact() -> NoReturn:
    # One answer for "no such contact" and "another organisation's contact": they must look alike.
    raise RequestValidationError(
        [{"loc": ("body", "contact_id"), "msg": "no such contact", "type": "unknown_reference"}]
    )


def _check_contact(services: Services, session: Session, principal: Principal, contact_id: uuid.UUID | None) -> None:
    if contact_id is not None and not services.contact_in_org(session, principal, contact_id):
        _unknown_contact()


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """Write and commit; a contact that vanished after it was checked (a foreign key violation) is the usual 422."""
    try:
        yield
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if sqlstate_of(exc) == FOREIGN_KEY_VIOLATION:
            _unknown_contact()
        raise


@router.get("", responses=_LISTED)
def list_deals(
    principal: DealsReader,
    session: SessionDep,
    services: ServicesDep,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[DealOut]:
    """A page of the caller's organisation's deals, oldest first; the total in `X-Total-Count` (needs `deals:read`)."""
    with services.list_source(session) as source:
        deals = services.deals(source.session, principal, scoped=source.scoped)
        page = deals.page(deals.select(), limit=limit, offset=offset)
        return _outs(services, source.session, principal, with_total(response, page), scoped=source.scoped)


@router.post("", status_code=201, responses=_GUARDED, openapi_extra=json_body_openapi(DealCreate))
def create_deal(principal: DealsWriter, session: SessionDep, services: ServicesDep, raw: RawBody) -> DealOut:
    """Create a deal in the caller's organisation, optionally with one of its contacts (needs `deals:write`)."""
    body, org_id = parse_body_with_org(DealCreate, raw, honour_org_id=services.has(Fault.MASS_ASSIGN_ORG_ID))
    _check_contact(services, session, principal, body.contact_id)
    with _writing(session):
        deal = services.deals(session, principal).create(
            title=body.title, amount=body.amount, contact_id=body.contact_id, org_id=org_id
        )
    return _outs(services, session, principal, [deal])[0]


@router.get("/{deal_id}", responses=_BY_ID)
def read_deal(deal_id: uuid.UUID, principal: DealsReader, session: SessionDep, services: ServicesDep) -> DealOut:
    """One deal of the caller's organisation (needs `deals:read`); 404 for any other."""
    deal = found(services, Deal, deal_id, services.deals(session, principal).get(deal_id))
    return _outs(services, session, principal, [deal])[0]


@router.patch("/{deal_id}", responses=_BY_ID, openapi_extra=json_body_openapi(DealPatch))
def update_deal(
    deal_id: uuid.UUID, principal: DealsWriter, session: SessionDep, services: ServicesDep, raw: RawBody
) -> DealOut:
    """Change the given fields of a deal of the caller's organisation (needs `deals:write`)."""
    deals = services.deals(session, principal)
    deal = found(services, Deal, deal_id, deals.get(deal_id))
    body, org_id = parse_body_with_org(DealPatch, raw, honour_org_id=services.has(Fault.MASS_ASSIGN_ORG_ID))
    changes = body.model_dump(include=body.model_fields_set)
    _check_contact(services, session, principal, changes.get("contact_id"))
    with _writing(session):
        deals.update(deal, {**changes, "org_id": org_id})
    return _outs(services, session, principal, [deal])[0]


@router.delete("/{deal_id}", status_code=204, response_class=Response, responses=_BY_ID)
def delete_deal(deal_id: uuid.UUID, principal: DealsDeleter, session: SessionDep, services: ServicesDep) -> Response:
    """Delete a deal of the caller's organisation, and its notes (needs `deals:delete`)."""
    deals = services.deals(session, principal)
    return deleted(session, deals, found(services, Deal, deal_id, deals.get(deal_id)))
