"""`/api/contacts`: the CRM contacts of the caller's organisation, always through the org-scoped repository."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from app.api.deps import (
    ContactsDeleter,
    ContactsReader,
    ContactsWriter,
    RawBody,
    ServicesDep,
    SessionDep,
    json_body_openapi,
    parse_body,
    parse_body_with_org,
)
from app.api.pagination import DEFAULT_LIMIT, Limit, Offset, listed_responses, with_total
from app.api.records import deleted, found
from app.api.schemas import (
    NO_NUL,
    BulkDelete,
    BulkDeleted,
    BulkDeleteLenient,
    ContactCreate,
    ContactOut,
    ContactPatch,
    error_responses,
)
from app.faults import Fault
from app.models import Contact

__all__ = ["router"]

router = APIRouter(prefix="/api/contacts", tags=["contacts"])

CSV_COLUMNS = ("id", "name", "email", "notes", "created_at", "updated_at")
# A spreadsheet runs a cell that starts with one of these as a formula: exported text must never do that.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Search = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        description="Text to find in name, email or notes (1 to 200 characters, no NUL)",
        json_schema_extra=NO_NUL,
    ),
]

_LISTED = listed_responses("contacts")
_GUARDED = error_responses(401, 403, 422)
_BY_ID = error_responses(401, 403, 404, 422)
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "The contacts as CSV, oldest first", "content": {"text/csv": {"schema": {"type": "string"}}}},
    **error_responses(401, 403),
}


def _out(contact: Contact) -> ContactOut:
    return ContactOut.model_validate(contact, from_attributes=True)


@router.get("", responses=_LISTED)
def list_contacts(
    principal: ContactsReader,
    session: SessionDep,
    services: ServicesDep,
    response: Response,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[ContactOut]:
    """A page of the organisation's contacts, oldest first; the total in `X-Total-Count` (needs `contacts:read`)."""
    with services.list_source(session) as source:
        contacts = services.contacts(source.session, principal, scoped=source.scoped)
        page = contacts.page(contacts.select(), limit=limit, offset=offset)
        return [_out(contact) for contact in with_total(response, page)]


@router.get("/search", responses=_LISTED)
def search_contacts(
    principal: ContactsReader,
    session: SessionDep,
    services: ServicesDep,
    response: Response,
    q: Search,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> list[ContactOut]:
    """The caller's contacts whose name, email or notes contain `q`, any case (needs `contacts:read`)."""
    if "\x00" in q and not services.has(Fault.SQL_ERROR_LEAKS):
        # PostgreSQL text cannot hold NUL: refused here as bad input, never left to fail in the database.
        # (The `sql_error_leaks` fault drops this check, and the database error comes back in a 500.)
        raise RequestValidationError(
            [{"loc": ("query", "q"), "msg": "must not contain NUL characters", "type": "value_error"}]
        )
    with services.list_source(session) as source:
        page = services.contacts(source.session, principal, scoped=source.scoped).search(q, limit=limit, offset=offset)
        return [_out(contact) for contact in with_total(response, page)]


@router.get("/export.csv", response_class=Response, responses=_CSV)
def export_contacts(principal: ContactsReader, session: SessionDep, services: ServicesDep) -> Response:
    """Every contact of the caller's organisation as CSV, oldest first (needs `contacts:read`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    with services.list_source(session) as source:
        for contact in services.contacts(source.session, principal, scoped=source.scoped).all():
            writer.writerow([_cell(getattr(contact, column)) for column in CSV_COLUMNS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"', "Cache-Control": "no-store"},
    )


def _cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    # CSV injection: a leading quote makes a spreadsheet show the text instead of evaluating it.
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


@router.post("/bulk-delete", responses=_GUARDED, openapi_extra=json_body_openapi(BulkDelete))
def bulk_delete_contacts(
    principal: ContactsDeleter, session: SessionDep, services: ServicesDep, raw: RawBody
) -> BulkDeleted:
    """Delete the listed contacts of the caller's organisation; other ids are skipped (needs `contacts:delete`)."""
    if services.has(Fault.SQL_ERROR_LEAKS):
        # The bug: ids go to the database unvalidated, and a malformed one fails there (SQLSTATE 22P02).
        ids = parse_body(BulkDeleteLenient, raw).ids
    else:
        ids = [str(contact_id) for contact_id in parse_body(BulkDelete, raw).ids]
    deleted = services.contacts(session, principal).delete_many(ids)
    session.commit()
    return BulkDeleted(deleted=deleted)


@router.post("", status_code=201, responses=_GUARDED, openapi_extra=json_body_openapi(ContactCreate))
def create_contact(principal: ContactsWriter, session: SessionDep, services: ServicesDep, raw: RawBody) -> ContactOut:
    """Create a contact in the caller's organisation (needs `contacts:write`)."""
    body, org_id = parse_body_with_org(ContactCreate, raw, honour_org_id=services.has(Fault.MASS_ASSIGN_ORG_ID))
    contacts = services.contacts(session, principal)
    contact = contacts.create(name=body.name, email=body.email, notes=body.notes, org_id=org_id)
    session.commit()
    return _out(contact)


@router.get("/{contact_id}", responses=_BY_ID)
def read_contact(
    contact_id: uuid.UUID, principal: ContactsReader, session: SessionDep, services: ServicesDep
) -> ContactOut:
    """One contact of the caller's organisation (needs `contacts:read`); 404 for any other."""
    return _out(found(services, Contact, contact_id, services.contacts(session, principal).get(contact_id)))


@router.patch("/{contact_id}", responses=_BY_ID, openapi_extra=json_body_openapi(ContactPatch))
def update_contact(
    contact_id: uuid.UUID, principal: ContactsWriter, session: SessionDep, services: ServicesDep, raw: RawBody
) -> ContactOut:
    """Change the given fields of a contact of the caller's organisation (needs `contacts:write`)."""
    contacts = services.contacts(session, principal)
    contact = found(services, Contact, contact_id, contacts.get(contact_id))
    body, org_id = parse_body_with_org(ContactPatch, raw, honour_org_id=services.has(Fault.MASS_ASSIGN_ORG_ID))
    contacts.update(contact, {**body.model_dump(include=body.model_fields_set), "org_id": org_id})
    session.commit()
    return _out(contact)


@router.delete("/{contact_id}", status_code=204, response_class=Response, responses=_BY_ID)
def delete_contact(
    contact_id: uuid.UUID, principal: ContactsDeleter, session: SessionDep, services: ServicesDep
) -> Response:
    """Delete a contact of the caller's organisation (needs `contacts:delete`)."""
    contacts = services.contacts(session, principal)
    return deleted(session, contacts, found(services, Contact, contact_id, contacts.get(contact_id)))
