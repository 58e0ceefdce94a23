"""`/api/members`: the members of the caller's organisation and the roles they hold there."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from app.api.deps import MembersManager, MembersReader, RawBody, ServicesDep, SessionDep, json_body_openapi, parse_body
from app.api.records import deleted, found
from app.api.schemas import ErrorBody, MemberCreate, MemberOut, MemberRoles, error_responses
from app.auth.identity import UserDeleted
from app.auth.policy import Principal
from app.errors import ApiError
from app.governance import granted_by, replace_roles, role_ids, roles_of
from app.models import Membership
from app.repository import MemberRow
from app.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/members", tags=["members"])

_LISTED = error_responses(401, 403)
_GUARDED = error_responses(401, 403, 422)
_BY_ID = error_responses(401, 403, 404, 422)
_LAST: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The organisation's last holder of `members:manage` would lose it"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "Already a member"}}


def _within_caller(session: Session, services: Services, principal: Principal, *roles: Iterable[str]) -> None:
    """Refuse (403 `role_above_your_own`) handing out or taking away a role that grants what the caller lacks: a
    Manager neither makes an Admin nor changes or removes one."""
    if not services.grantable(principal, granted_by(session, [name for names in roles for name in names])):
        raise ApiError(403, "forbidden", reason="role_above_your_own")


def _with_roles(session: Session, rows: list[MemberRow]) -> list[MemberOut]:
    by_org: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in rows:
        by_org.setdefault(row.membership.org_id, []).append(row.membership.user_id)
    roles = {
        (org, user): names for org, users in by_org.items() for user, names in roles_of(session, org, users).items()
    }
    return [
        MemberOut(
            user_id=row.membership.user_id,
            external_id=row.external_id,
            roles=roles.get((row.membership.org_id, row.membership.user_id), []),
        )
        for row in rows
    ]


@router.get("", responses=_LISTED)
def list_members(principal: MembersReader, session: SessionDep, services: ServicesDep) -> list[MemberOut]:
    """Every member of the caller's organisation with their roles there (needs `members:read`)."""
    return _with_roles(session, services.members(session, principal).members())


@router.get("/{user_id}", responses=_BY_ID)
def read_member(user_id: uuid.UUID, principal: MembersReader, session: SessionDep, services: ServicesDep) -> MemberOut:
    """One member of the caller's organisation with their roles there (needs `members:read`); 404 for anyone else."""
    rows = services.members(session, principal).members(user_id)
    if not rows:
        raise services.missing(Membership, user_id, key="user_id")
    return _with_roles(session, rows[:1])[0]


@router.post(
    "",
    status_code=201,
    responses={**_GUARDED, **_CONFLICT},
    openapi_extra=json_body_openapi(MemberCreate),
)
def add_member(principal: MembersManager, session: SessionDep, services: ServicesDep, raw: RawBody) -> MemberOut:
    """Add a user, by Clerk user id, to the caller's organisation with the given roles (needs `members:manage`);
    a user deleted at Clerk cannot be added (422 `user_deleted`)."""
    body = parse_body(MemberCreate, raw)
    wanted = role_ids(session, body.roles)
    _within_caller(session, services, principal, wanted)
    try:
        user_id = services.ensure_member_user(session, body.external_id)
    except UserDeleted:
        raise ApiError(422, "invalid_request", reason="user_deleted") from None
    membership = services.members(session, principal).join(user_id)
    if membership is None:
        raise ApiError(409, "already_member")
    replace_roles(session, membership.org_id, user_id, wanted)
    session.commit()
    return MemberOut(user_id=user_id, external_id=body.external_id, roles=sorted(wanted))


@router.put("/{user_id}/roles", responses={**_BY_ID, **_LAST}, openapi_extra=json_body_openapi(MemberRoles))
def set_member_roles(
    user_id: uuid.UUID, principal: MembersManager, session: SessionDep, services: ServicesDep, raw: RawBody
) -> MemberOut:
    """Replace the roles a member holds in the caller's organisation (needs `members:manage`); the last member
    holding `members:manage` cannot give it up (409 `last_member_manager`)."""
    members = services.members(session, principal)
    membership = found(services, Membership, user_id, members.find(user_id), key="user_id")
    body = parse_body(MemberRoles, raw)
    wanted = role_ids(session, body.roles)
    held = _held(session, membership)
    _within_caller(session, services, principal, wanted, held)
    if not services.leaves_a_manager(session, membership, granted_by(session, held), granted_by(session, wanted)):
        raise ApiError(409, "conflict", reason="last_member_manager")
    replace_roles(session, membership.org_id, user_id, wanted)
    session.commit()
    return MemberOut(user_id=user_id, external_id=members.external_id(user_id), roles=sorted(wanted))


@router.delete("/{user_id}", status_code=204, response_class=Response, responses={**_BY_ID, **_LAST})
def remove_member(
    user_id: uuid.UUID, principal: MembersManager, session: SessionDep, services: ServicesDep
) -> Response:
    """Remove a member (and the roles they held) from the caller's organisation (needs `members:manage`); never the
    last member holding `members:manage` (409 `last_member_manager`)."""
    members = services.members(session, principal)
    membership = found(services, Membership, user_id, members.find(user_id), key="user_id")
    held = _held(session, membership)
    _within_caller(session, services, principal, held)
    if not services.leaves_a_manager(session, membership, granted_by(session, held), ()):
        raise ApiError(409, "conflict", reason="last_member_manager")
    return deleted(session, members, membership)


def _held(session: Session, membership: Membership) -> list[str]:
    """The roles a member holds in the membership's organisation."""
    return roles_of(session, membership.org_id, [membership.user_id])[membership.user_id]
