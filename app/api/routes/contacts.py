"""`/api/contacts`: the CRM contacts of the caller's organisation, always through the org-scoped repository."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.api.deps import (
    ContactsDeleter,
    ContactsReader,
    ContactsWriter,
    RawBody,
    ServicesDep,
    SessionDep,
    json_body_openapi,
    parse_body,
)
from app.api.schemas import ContactCreate, ContactOut, ContactPatch, error_responses
from app.errors import ApiError
from app.models import Contact

__all__ = ["router"]

router = APIRouter(prefix="/api/contacts", tags=["contacts"])

_LISTED = error_responses(401, 403)
_GUARDED = error_responses(401, 403, 422)
_BY_ID = error_responses(401, 403, 404, 422)


def _out(contact: Contact) -> ContactOut:
    return ContactOut.model_validate(contact, from_attributes=True)


@router.get("", responses=_LISTED)
def list_contacts(principal: ContactsReader, session: SessionDep, services: ServicesDep) -> list[ContactOut]:
    """Every contact of the caller's organisation, oldest first (needs `contacts:read`)."""
    return [_out(contact) for contact in services.contacts(session, principal).all()]


@router.post("", status_code=201, responses=_GUARDED, openapi_extra=json_body_openapi(ContactCreate))
def create_contact(principal: ContactsWriter, session: SessionDep, services: ServicesDep, raw: RawBody) -> ContactOut:
    """Create a contact in the caller's organisation (needs `contacts:write`)."""
    body = parse_body(ContactCreate, raw)
    contact = services.contacts(session, principal).create(name=body.name, email=body.email, notes=body.notes)
    session.commit()
    return _out(contact)


@router.get("/{contact_id}", responses=_BY_ID)
def read_contact(
    contact_id: uuid.UUID, principal: ContactsReader, session: SessionDep, services: ServicesDep
) -> ContactOut:
    """One contact of the caller's organisation (needs `contacts:read`); 404 for any other."""
    contact = services.contacts(session, principal).get(contact_id)
    if contact is None:
        raise ApiError.not_found()
    return _out(contact)


@router.patch("/{contact_id}", responses=_BY_ID, openapi_extra=json_body_openapi(ContactPatch))
def update_contact(
    contact_id: uuid.UUID, principal: ContactsWriter, session: SessionDep, services: ServicesDep, raw: RawBody
) -> ContactOut:
    """Change the given fields of a contact of the caller's organisation (needs `contacts:write`)."""
    contacts = services.contacts(session, principal)
    contact = contacts.get(contact_id)
    if contact is None:
        raise ApiError.not_found()
    body = parse_body(ContactPatch, raw)
    contacts.update(contact, body.model_dump(include=body.model_fields_set))
    session.commit()
    return _out(contact)


@router.delete("/{contact_id}", status_code=204, response_class=Response, responses=_BY_ID)
def delete_contact(
    contact_id: uuid.UUID, principal: ContactsDeleter, session: SessionDep, services: ServicesDep
) -> Response:
    """Delete a contact of the caller's organisation (needs `contacts:delete`)."""
    contacts = services.contacts(session, principal)
    contact = contacts.get(contact_id)
    if contact is None:
        raise ApiError.not_found()
    contacts.delete(contact)
    session.commit()
    return Response(status_code=204)
