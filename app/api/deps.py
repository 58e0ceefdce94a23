"""Dependencies of the API, as `Annotated` aliases: the session, the caller, and the permission checks.

Refusals come in a fixed order, whatever else is wrong with the request: not signed in (401), then
lacking the permission (403), then the record not in the caller's organisation (404), then a malformed
body (422). That is why bodies are read raw here, after authentication, and validated by the handler
once the record is found: FastAPI would otherwise answer a malformed body before anyone signed in.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.auth.identity import Identity
from app.auth.policy import Principal
from app.auth.token import InvalidToken, SessionClaims
from app.errors import ApiError, current_request_id
from app.faults import Fault
from app.services import Services

__all__ = [
    "ORG_HEADER",
    "PROVISIONING_FAILURE_HEADER",
    "PROVISIONING_FAILURE_POINT",
    "ClaimsDep",
    "ContactsDeleter",
    "ContactsReader",
    "ContactsWriter",
    "CurrentPrincipal",
    "DealsDeleter",
    "DealsReader",
    "DealsWriter",
    "IdentityDep",
    "MembersManager",
    "MembersReader",
    "NotesDeleter",
    "NotesReader",
    "NotesWriter",
    "RawBody",
    "Require",
    "RolesReader",
    "Services",
    "ServicesDep",
    "SessionDep",
    "json_body_openapi",
    "parse_body",
    "parse_body_with_org",
]

log = logging.getLogger("app.policy")
M = TypeVar("M", bound=BaseModel)

# Every body the schema allows fits, in JSON's longest spelling of it: 12 bytes a character (a surrogate pair as
# `\\ud83d\\ude00`, what Python's json.dumps writes), 10,000-character notes and a name and an address beside.
MAX_BODY_BYTES = 256 * 1024
ORG_HEADER = "X-Org-Id"
# The test-mode hook of check I1: a first login sent with this header fails between its organisation insert and
# its role grant, as if the database went away (ignored unless APP_MODE=test).
PROVISIONING_FAILURE_HEADER = "X-Test-Provisioning-Fails"
PROVISIONING_FAILURE_POINT = "after-organisation"


async def get_services(request: Request) -> Services:
    """The app's shared services."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[Session]:
    """One database session per request; whatever is not committed is rolled back. Opening one touches nothing;
    closing it is I/O (the rollback, the connection back to its pool), so it happens on a worker thread."""
    session = services.database.open_session()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


SessionDep = Annotated[Session, Depends(get_session)]

bearer = HTTPBearer(
    scheme_name="ClerkSession",
    bearerFormat="JWT",
    description="A Clerk session token: `Authorization: Bearer <jwt>`.",
    auto_error=False,
)


async def get_claims(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> SessionClaims:
    """Layer 1: the verified session token, or 401. Checking a signature is a few dozen microseconds of CPU,
    less than a trip to a worker thread; keys are fetched (when a JWKS names an unknown kid) on one."""
    if credentials is None:
        reason = "malformed_authorization" if request.headers.get("Authorization") else "missing_token"
        raise InvalidToken(reason)
    token = credentials.credentials
    if services.has(Fault.PROVISION_BEFORE_VERIFY):
        await run_in_threadpool(services.provision_unverified, session, token)
    if services.verifier.may_fetch(token):
        return await run_in_threadpool(services.verifier.verify, token)
    return services.verifier.verify(token)


ClaimsDep = Annotated[SessionClaims, Depends(get_claims)]


def get_identity(request: Request, claims: ClaimsDep, session: SessionDep, services: ServicesDep) -> Identity:
    """Layer 2: the caller's user and active organisation (provisioned on a first login), or 403."""
    failing = request.headers.get(PROVISIONING_FAILURE_HEADER) == PROVISIONING_FAILURE_POINT
    return services.identity(session, claims, fail_requested=failing)


IdentityDep = Annotated[Identity, Depends(get_identity)]


def get_principal(request: Request, claims: ClaimsDep, session: SessionDep, services: ServicesDep) -> Principal:
    """Layers 2 and 3's inputs: the caller (provisioned on a first login) with the roles they hold in their active
    organisation, which the session is bound to; or 403.

    The active organisation comes from the verified token and the membership row alone: a header or a
    query parameter naming another organisation changes nothing (unless the fault switch brings that bug back).
    """
    failing = request.headers.get(PROVISIONING_FAILURE_HEADER) == PROVISIONING_FAILURE_POINT
    principal = services.signed_in(session, claims, fail_requested=failing)
    principal = services.trust_role_claim(session, principal, claims)
    if services.has(Fault.ORG_HEADER_SWITCHES_ORG):
        requested = request.headers.get(ORG_HEADER) or request.query_params.get("org_id")
        principal = services.switch_org(session, principal, requested)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


class Require:
    """Layer 3 as a dependency: the caller, if the policy lets them do `action` on `resource`; else 403."""

    def __init__(self, resource: str, action: str) -> None:
        self.resource = resource
        self.action = action

    async def __call__(self, principal: CurrentPrincipal, services: ServicesDep) -> Principal:
        decision = services.policy.can_i(principal, self.action, self.resource)
        log.info(
            "decision user=%s org=%s %s rule=%s request_id=%s",
            principal.user_id,
            principal.org_id,
            decision.explain(),
            decision.rule,
            current_request_id(),
        )
        if not decision.allowed:
            raise ApiError(403, "forbidden", reason="missing_permission", permission=decision.permission)
        return principal


RolesReader = Annotated[Principal, Depends(Require("roles", "read"))]
MembersReader = Annotated[Principal, Depends(Require("members", "read"))]
MembersManager = Annotated[Principal, Depends(Require("members", "manage"))]
ContactsReader = Annotated[Principal, Depends(Require("contacts", "read"))]
ContactsWriter = Annotated[Principal, Depends(Require("contacts", "write"))]
ContactsDeleter = Annotated[Principal, Depends(Require("contacts", "delete"))]
DealsReader = Annotated[Principal, Depends(Require("deals", "read"))]
DealsWriter = Annotated[Principal, Depends(Require("deals", "write"))]
DealsDeleter = Annotated[Principal, Depends(Require("deals", "delete"))]
NotesReader = Annotated[Principal, Depends(Require("notes", "read"))]
NotesWriter = Annotated[Principal, Depends(Require("notes", "write"))]
NotesDeleter = Annotated[Principal, Depends(Require("notes", "delete"))]


async def read_body(request: Request) -> bytes:
    """The raw request body (read only after the caller was authenticated and authorised)."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", limit=MAX_BODY_BYTES)
    return body


RawBody = Annotated[bytes, Depends(read_body)]


def parse_body(model: type[M], raw: bytes) -> M:
    """Validate a JSON body against `model`; a malformed one raises the usual 422."""
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error.get("loc", ()))} for error in exc.errors(include_input=False)]
        raise RequestValidationError(errors) from None


def parse_body_with_org(model: type[M], raw: bytes, *, honour_org_id: bool) -> tuple[M, uuid.UUID | None]:
    """`parse_body`, except that with `honour_org_id` (the `mass_assign_org_id` fault) an `org_id` is taken out
    of the body first and handed back, for the repository to store the record under."""
    if not honour_org_id:
        return parse_body(model, raw), None
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        return parse_body(model, raw), None
    if not isinstance(data, dict) or "org_id" not in data:
        return parse_body(model, raw), None
    claimed = data.pop("org_id")
    try:
        org_id = uuid.UUID(str(claimed))
    except ValueError:
        org_id = None
    return parse_body(model, json.dumps(data).encode()), org_id


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The `requestBody` an operation reading `model` from a raw body declares in the schema."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(mode="validation")}},
        },
        "responses": {
            "413": {
                "description": f"The body is larger than {MAX_BODY_BYTES} bytes",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            }
        },
    }
