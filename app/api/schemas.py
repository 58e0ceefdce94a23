"""The API's request and response bodies.

Request strings are bounded and may not contain NUL (PostgreSQL text cannot hold it): bad input is a
422 here, never a database error later.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.invites import InviteStatus

__all__ = [
    "ERROR_RESPONSES",
    "BulkDelete",
    "BulkDeleteLenient",
    "BulkDeleted",
    "ContactCreate",
    "ContactOut",
    "ContactPatch",
    "DealCreate",
    "DealOut",
    "DealPatch",
    "ErrorBody",
    "Health",
    "InviteAccept",
    "InviteAccepted",
    "InviteCreate",
    "InviteOut",
    "InvitedOrganisation",
    "Me",
    "MemberCreate",
    "MemberOut",
    "MemberRoles",
    "NoteCreate",
    "NoteOut",
    "NotePatch",
    "OrganisationOut",
    "RoleOut",
    "UserOut",
    "ValidationErrorBody",
    "WebhookReceipt",
    "error_responses",
]

# An address as JSON Schema's `email` format has it (RFC 5322's dot-atom local part, a host name's labels): what
# the schema lets through is what the app accepts.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")


# What `_no_nul` refuses, said in the schema too (JSON Schema's pattern; the check itself stays in code, where a
# fault switch can drop it): PostgreSQL text cannot hold NUL.
NO_NUL = {"pattern": "^[^\\u0000]*$"}


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an email address (name@domain)")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
    Field(json_schema_extra=NO_NUL),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320),
    AfterValidator(_no_nul),
    Field(json_schema_extra=NO_NUL),
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email"}),
]
Notes = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_nul), Field(json_schema_extra=NO_NUL)]
ExternalId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(_no_nul)
]
Title = Name
Body = Annotated[
    str, StringConstraints(min_length=1, max_length=10_000), AfterValidator(_no_nul), Field(json_schema_extra=NO_NUL)
]


# Whole currency units; bounded so that a body can never overflow PostgreSQL's bigint.
def _whole(value: Any) -> Any:
    """JSON Schema's integer: a number with no fractional part, `580.0` included; never a string or a boolean."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Amount = Annotated[int, Field(ge=0, le=1_000_000_000_000, strict=True), BeforeValidator(_whole)]
MAX_BULK_IDS = 500
# The schema lists the role catalogue's names as this field's enum (`app.main`, read when the schema is first asked
# for): a role is data, so the model itself checks only the shape, and the handler looks the name up.
ROLE_NAME_MARK = "x-role-name"
RoleName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_no_nul),
    Field(json_schema_extra=NO_NUL),
    Field(json_schema_extra={ROLE_NAME_MARK: True}),
]
RoleList = Annotated[list[RoleName], Field(max_length=20)]
# An invite's address is kept and compared in lower case, as the session token's `email` claim is read.
InviteEmail = Annotated[Email, AfterValidator(str.lower)]
# A token is 43 characters; anything else up to this bound is looked up like any token, and is simply not found.
InviteToken = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(_no_nul), Field(json_schema_extra=NO_NUL)
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every refusal: `error` is a stable code; some carry a `reason` or more detail."""

    model_config = ConfigDict(extra="allow")

    error: str
    reason: str | None = None


class ValidationErrorBody(BaseModel):
    """A 422: where the request is malformed, and how."""

    error: str
    detail: list[dict[str, Any]] = []


ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in, or the session token was refused"},
    403: {"model": ErrorBody, "description": "Signed in, but without the permission this operation needs"},
    404: {"model": ErrorBody, "description": "No such record in the caller's organisation"},
    422: {"model": ValidationErrorBody, "description": "Malformed id or body"},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented refusals of an operation, for `responses=`."""
    return {status: ERROR_RESPONSES[status] for status in statuses}


class Health(BaseModel):
    """The service answers."""

    status: str


class WebhookReceipt(BaseModel):
    """A verified webhook delivery, acknowledged with what it did: `processed`, `duplicate` (this svix id was
    applied before), `stale` (older than what the app holds, or about something deleted at Clerk) or `ignored`."""

    status: Literal["processed", "duplicate", "stale", "ignored"]


class UserOut(BaseModel):
    """The caller as the app knows them."""

    id: uuid.UUID
    external_id: str


class OrganisationOut(BaseModel):
    """The caller's active organisation."""

    id: uuid.UUID
    external_id: str | None
    name: str


class Me(BaseModel):
    """Who the caller is, where, and what they may do there."""

    user: UserOut
    organisation: OrganisationOut
    roles: list[str]
    permissions: list[str]


class RoleOut(BaseModel):
    """A governance role and the permissions it grants."""

    name: str
    permissions: list[str]


class MemberOut(BaseModel):
    """A member of the caller's organisation."""

    user_id: uuid.UUID
    external_id: str | None
    roles: list[str]


class MemberCreate(_Input):
    """Add a user (by Clerk user id) to the caller's organisation, with these roles (possibly none)."""

    external_id: ExternalId
    roles: RoleList = []


class MemberRoles(_Input):
    """The complete set of roles a member should hold."""

    roles: RoleList


class ContactOut(BaseModel):
    """A CRM contact."""

    id: uuid.UUID
    name: str
    email: str | None
    notes: str
    created_at: datetime
    updated_at: datetime


class ContactCreate(_Input):
    """A new contact."""

    name: Name
    email: Email | None = None
    notes: Notes = ""


def _omissible() -> Any:
    """A field a patch may leave out and may not send as null: the schema says so too (no null, no default)."""
    return Field(default=None, json_schema_extra=_no_default)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _not_null(model: BaseModel, *names: str) -> None:
    for field_name in names:
        if field_name in model.model_fields_set and getattr(model, field_name) is None:
            raise ValueError(f"{field_name} may not be null")


class ContactPatch(_Input):
    """Changes to a contact: only the fields given change; `name` and `notes` may not be null (`email` may: it is
    cleared)."""

    name: Name | SkipJsonSchema[None] = _omissible()
    email: Email | None = None
    notes: Notes | SkipJsonSchema[None] = _omissible()

    @model_validator(mode="after")
    def _name_and_notes_not_null(self) -> ContactPatch:
        _not_null(self, "name", "notes")
        return self


class BulkDelete(_Input):
    """The contacts to delete, by id; ids the caller cannot see are skipped like missing ones."""

    ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_BULK_IDS)]


class BulkDeleteLenient(_Input):
    """`BulkDelete` without id validation: only the `sql_error_leaks` fault reads bodies so."""

    ids: Annotated[list[str], Field(min_length=1, max_length=MAX_BULK_IDS)]


class BulkDeleted(BaseModel):
    """How many contacts were deleted."""

    deleted: int


class DealOut(BaseModel):
    """A deal, with the name of its contact (when it has one)."""

    id: uuid.UUID
    title: str
    amount: int
    contact_id: uuid.UUID | None
    contact_name: str | None
    created_at: datetime
    updated_at: datetime


class DealCreate(_Input):
    """A new deal; `contact_id`, when given, must be a contact of the caller's organisation."""

    title: Title
    amount: Amount = 0
    contact_id: uuid.UUID | None = None


class DealPatch(_Input):
    """Changes to a deal: only the fields given change; `title` and `amount` may not be null; `contact_id: null`
    unlinks the contact."""

    title: Title | SkipJsonSchema[None] = _omissible()
    amount: Amount | SkipJsonSchema[None] = _omissible()
    contact_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _title_and_amount_not_null(self) -> DealPatch:
        _not_null(self, "title", "amount")
        return self


class NoteOut(BaseModel):
    """A note on a deal."""

    id: uuid.UUID
    deal_id: uuid.UUID
    body: str
    created_at: datetime
    updated_at: datetime


class NoteCreate(_Input):
    """A new note."""

    body: Body


class NotePatch(_Input):
    """A note's new text."""

    body: Body


class InviteCreate(_Input):
    """Invite an address into the caller's organisation with one role, by name; `org_id`, if given, must be the
    caller's active organisation."""

    email: InviteEmail
    role: Annotated[RoleName, Field(examples=["Member"])]
    org_id: uuid.UUID | None = None


class InviteOut(BaseModel):
    """An invite, as its organisation's member managers see it (never its token)."""

    id: uuid.UUID
    email: str
    role: str
    expires_at: datetime
    status: InviteStatus


class InviteAccept(_Input):
    """The token of an invite link (`/invites/accept?token=...`)."""

    token: InviteToken


class InvitedOrganisation(BaseModel):
    """The organisation an accepted invite made the caller a member of."""

    id: uuid.UUID
    name: str


class InviteAccepted(BaseModel):
    """An accepted invite: where the caller is now a member, and with which role."""

    organisation: InvitedOrganisation
    role: str
