"""`/api/deals/{deal_id}/notes`: notes on one deal of the caller's organisation.

The deal is looked up first, in the caller's organisation: a deal they cannot see has no notes they can
see (404). A note is found only under its own deal: another deal's note, in this organisation or another,
is 404 too.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from app.api.deps import (
    NotesDeleter,
    NotesReader,
    NotesWriter,
    RawBody,
    ServicesDep,
    SessionDep,
    json_body_openapi,
    parse_body,
)
from app.api.records import deleted, found
from app.api.schemas import NoteCreate, NoteOut, NotePatch, error_responses
from app.auth.policy import Principal
from app.models import Deal, Note
from app.repository import NoteRepository
from app.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/deals/{deal_id}/notes", tags=["notes"])

_LISTED = error_responses(401, 403, 404, 422)
_BY_ID = error_responses(401, 403, 404, 422)


def _out(note: Note) -> NoteOut:
    return NoteOut.model_validate(note, from_attributes=True)


def _notes(services: Services, session: Session, principal: Principal, deal_id: uuid.UUID) -> NoteRepository:
    """The notes of one of the caller's deals; 404 when the deal is not theirs to see."""
    deal = found(services, Deal, deal_id, services.deals(session, principal).get(deal_id))
    return services.notes(session, principal, deal)


def _note(notes: NoteRepository, services: Services, note_id: uuid.UUID) -> Note:
    return found(services, Note, note_id, notes.get(note_id))


@router.get("", responses=_LISTED)
def list_notes(deal_id: uuid.UUID, principal: NotesReader, session: SessionDep, services: ServicesDep) -> list[NoteOut]:
    """Every note on a deal of the caller's organisation, oldest first (needs `notes:read`)."""
    return [_out(note) for note in _notes(services, session, principal, deal_id).all()]


@router.post("", status_code=201, responses=_BY_ID, openapi_extra=json_body_openapi(NoteCreate))
def create_note(
    deal_id: uuid.UUID, principal: NotesWriter, session: SessionDep, services: ServicesDep, raw: RawBody
) -> NoteOut:
    """Write a note on a deal of the caller's organisation (needs `notes:write`)."""
    notes = _notes(services, session, principal, deal_id)
    body = parse_body(NoteCreate, raw)
    note = notes.create(body=body.body)
    session.commit()
    return _out(note)


@router.get("/{note_id}", responses=_BY_ID)
def read_note(
    deal_id: uuid.UUID, note_id: uuid.UUID, principal: NotesReader, session: SessionDep, services: ServicesDep
) -> NoteOut:
    """One note on a deal of the caller's organisation (needs `notes:read`); 404 for any other."""
    return _out(_note(_notes(services, session, principal, deal_id), services, note_id))


@router.patch("/{note_id}", responses=_BY_ID, openapi_extra=json_body_openapi(NotePatch))
def update_note(
    deal_id: uuid.UUID,
    note_id: uuid.UUID,
    principal: NotesWriter,
    session: SessionDep,
    services: ServicesDep,
    raw: RawBody,
) -> NoteOut:
    """Change the text of a note on a deal of the caller's organisation (needs `notes:write`)."""
    notes = _notes(services, session, principal, deal_id)
    note = _note(notes, services, note_id)
    body = parse_body(NotePatch, raw)
    notes.update(note, {"body": body.body})
    session.commit()
    return _out(note)


@router.delete("/{note_id}", status_code=204, response_class=Response, responses=_BY_ID)
def delete_note(
    deal_id: uuid.UUID, note_id: uuid.UUID, principal: NotesDeleter, session: SessionDep, services: ServicesDep
) -> Response:
    """Delete a note on a deal of the caller's organisation (needs `notes:delete`)."""
    notes = _notes(services, session, principal, deal_id)
    return deleted(session, notes, _note(notes, services, note_id))
