"""Dependencies of the API, as `Annotated` aliases: the session, the caller, and the permission checks.

Refusals come in a fixed order, whatever else is wrong with the request: not signed in (401), then
lacking the permission (403), then the record not in the caller's organisation (404), then a malformed
body (422). That is why bodies are read raw here, after authentication, and validated by the handler
once the record is found: FastAPI would otherwise answer a malformed body before anyone signed in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import jinja2
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.auth.identity import ADMIN_ROLE, FIRST_USER_FALLBACK_ROLE, Identity, resolve_identity
from app.auth.policy import PolicyEngine, Principal
from app.auth.token import InvalidToken, SessionClaims, TokenVerifier
from app.config import Settings
from app.db import Database
from app.errors import ApiError, current_request_id
from app.faults import Fault
from app.governance import load_principal
from app.repository import ContactRepository, MemberRepository

__all__ = [
    "ClaimsDep",
    "ContactsDeleter",
    "ContactsReader",
    "ContactsWriter",
    "CurrentPrincipal",
    "IdentityDep",
    "MembersManager",
    "MembersReader",
    "RawBody",
    "Require",
    "RolesReader",
    "Services",
    "ServicesDep",
    "SessionDep",
    "json_body_openapi",
    "parse_body",
]

log = logging.getLogger("app.policy")
M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Services:
    """What `create_app` builds once and every request shares."""

    settings: Settings
    database: Database
    verifier: TokenVerifier
    policy: PolicyEngine
    templates: jinja2.Environment

    def has(self, fault: Fault) -> bool:
        """Whether a fault switch is on."""
        return self.settings.has(fault)

    def contacts(self, session: Session, principal: Principal) -> ContactRepository:
        """The caller's organisation's contacts."""
        return ContactRepository(session, principal.org_id, scoped=not self.has(Fault.NO_ORG_SCOPE))

    def members(self, session: Session, principal: Principal) -> MemberRepository:
        """The caller's organisation's memberships."""
        return MemberRepository(session, principal.org_id, scoped=not self.has(Fault.NO_ORG_SCOPE))

    def identity(self, session: Session, claims: SessionClaims) -> Identity:
        """Resolve (or provision) the caller; raises NotAMember."""
        first_role = FIRST_USER_FALLBACK_ROLE if self.has(Fault.FIRST_USER_NOT_ADMIN) else ADMIN_ROLE
        return resolve_identity(session, claims, first_user_role=first_role)

    def principal(self, session: Session, identity: Identity) -> Principal:
        """The caller's roles and grants; raises a database error when they cannot be read."""
        return load_principal(session, identity, bind_clerk_id=self.has(Fault.USER_ROLE_QUERY_USES_CLERK_ID))


def get_services(request: Request) -> Services:
    """The app's shared services."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """One database session per request; whatever is not committed is rolled back."""
    with services.database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

bearer = HTTPBearer(
    scheme_name="ClerkSession",
    bearerFormat="JWT",
    description="A Clerk session token: `Authorization: Bearer <jwt>`.",
    auto_error=False,
)


def get_claims(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> SessionClaims:
    """Layer 1: the verified session token, or 401."""
    if credentials is None:
        reason = "malformed_authorization" if request.headers.get("Authorization") else "missing_token"
        raise InvalidToken(reason)
    return services.verifier.verify(credentials.credentials)


ClaimsDep = Annotated[SessionClaims, Depends(get_claims)]


def get_identity(claims: ClaimsDep, session: SessionDep, services: ServicesDep) -> Identity:
    """Layer 2: the caller's user and active organisation (provisioned on a first login), or 403."""
    return services.identity(session, claims)


IdentityDep = Annotated[Identity, Depends(get_identity)]


def get_principal(identity: IdentityDep, session: SessionDep, services: ServicesDep) -> Principal:
    """The caller with the roles they hold in their active organisation."""
    return services.principal(session, identity)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


class Require:
    """Layer 3 as a dependency: the caller, if the policy lets them do `action` on `resource`; else 403."""

    def __init__(self, resource: str, action: str) -> None:
        self.resource = resource
        self.action = action

    def __call__(self, principal: CurrentPrincipal, services: ServicesDep) -> Principal:
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


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The `requestBody` an operation reading `model` from a raw body declares in the schema."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(mode="validation")}},
        }
    }
