"""`/api/invites`: member managers invite an address into their organisation; the invitee accepts by token.

The token is in the invite mail and nowhere else: no answer carries it, and the table keeps only its digest. The
mail is sent once the invite is committed, so a mail server that fails loses no invite; the answer then says the
mail was not sent (502), and the invite can be revoked and sent again.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.deps import (
    ClaimsDep,
    IdentityDep,
    MembersManager,
    RawBody,
    ServicesDep,
    SessionDep,
    json_body_openapi,
    parse_body,
)
from app.api.schemas import (
    ErrorBody,
    InviteAccept,
    InviteAccepted,
    InviteCreate,
    InvitedOrganisation,
    InviteOut,
    error_responses,
)
from app.errors import ApiError, log_exception
from app.governance import role_catalogue, role_ids
from app.invites import accept_invite, new_token, status_of, token_digest
from app.mail import InviteMail, MailNotSent, compose, invite_link, send
from app.models import Invite
from app.repository import Revoked

__all__ = ["router"]

log = logging.getLogger("app.invites")

router = APIRouter(prefix="/api/invites", tags=["invites"])


def _documented(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": description}}


_CREATED = {
    **error_responses(401, 403, 404, 422),
    **_documented(502, "The invite was saved, but its mail could not be sent (`mail_not_sent`)"),
}
_LISTED = error_responses(401, 403)
_BY_ID = {
    **error_responses(401, 403, 404, 422),
    **_documented(409, "The invite was accepted already (`invite_already_used`)"),
}
# The test-mode hook of check O5: an invite created with this header expires after that many seconds (ignored
# unless APP_MODE=test), so that a harness can show an expired invite refused.
INVITE_TTL_HEADER = "X-Test-Invite-Ttl-Seconds"
_ACCEPTED = {
    **error_responses(401, 403, 404, 422),
    **_documented(409, "The invite was used already, or the caller is a member already"),
    **_documented(410, "The invite was revoked, or has expired"),
}


def _out(invite: Invite, role: str) -> InviteOut:
    return InviteOut(
        id=invite.id, email=invite.email, role=role, expires_at=invite.expires_at, status=status_of(invite)
    )


@router.post("", status_code=201, responses=_CREATED, openapi_extra=json_body_openapi(InviteCreate))
def create_invite(
    request: Request, principal: MembersManager, session: SessionDep, services: ServicesDep, raw: RawBody
) -> InviteOut:
    """Invite an address into the caller's organisation with a role, and mail it the link (needs `members:manage`).

    The role may grant nothing the caller lacks there (403 `role_above_inviter`); an `org_id` other than the
    caller's active organisation is 404, as any record of another organisation is.
    """
    body = parse_body(InviteCreate, raw)
    org = services.invite_org(session, principal, body.org_id)
    role_id = role_ids(session, [body.role])[body.role]
    granted = next(role.permissions for role in role_catalogue(session) if role.name == body.role)
    if not services.role_within_inviter(principal, granted):
        raise ApiError(403, "forbidden", reason="role_above_inviter")
    token = new_token()
    invite = services.invites(session, principal).create(
        email=body.email,
        role_id=role_id,
        invited_by=principal.user_id,
        token_digest=token_digest(token),
        ttl_seconds=services.invite_ttl(request.headers.get(INVITE_TTL_HEADER)),
        org_id=org.id,
    )
    session.commit()
    settings = services.settings
    mail = InviteMail(
        to=invite.email,
        organisation=org.name,
        role=body.role,
        link=invite_link(settings.app_base_url, token),
        expires=f"{invite.expires_at:%Y-%m-%d %H:%M} UTC",
    )
    try:
        send(compose(mail, sender=settings.mail_from), host=settings.smtp_host, port=settings.smtp_port)
    except MailNotSent as exc:
        log_exception(exc, message="invite mail not sent", level=logging.WARNING, invite_id=invite.id, org=org.id)
        raise ApiError(502, "mail_not_sent", reason="mail_server_unavailable", invite_id=str(invite.id)) from None
    log.info("invite sent invite_id=%s org=%s by=%s", invite.id, org.id, principal.user_id)
    return _out(invite, body.role)


@router.get("", responses=_LISTED)
def list_invites(principal: MembersManager, session: SessionDep, services: ServicesDep) -> list[InviteOut]:
    """Every invite into the caller's organisation, whatever its state, oldest first (needs `members:manage`)."""
    return [_out(row.invite, row.role) for row in services.invites(session, principal).invites()]


@router.delete("/{invite_id}", status_code=204, response_class=Response, responses=_BY_ID)
def revoke_invite(
    invite_id: uuid.UUID, principal: MembersManager, session: SessionDep, services: ServicesDep
) -> Response:
    """Revoke an invite of the caller's organisation, so that its link accepts nothing (needs `members:manage`);
    revoking a revoked one is a no-op, an accepted one 409 `invite_already_used`."""
    outcome = services.invites(session, principal).revoke(invite_id)
    if outcome is Revoked.MISSING:
        raise services.missing(Invite, invite_id)
    if outcome is Revoked.USED:
        raise ApiError(409, "conflict", reason="invite_already_used")
    session.commit()
    return Response(status_code=204)


@router.post("/accept", responses=_ACCEPTED, openapi_extra={**json_body_openapi(InviteAccept), "x-iam-self": True})
def accept(
    claims: ClaimsDep, identity: IdentityDep, session: SessionDep, services: ServicesDep, raw: RawBody
) -> InviteAccepted:
    """Accept an invite by its token, as any signed-in user whose session's verified `email` is the invited address:
    the caller becomes a member of the invite's organisation with its role, and the invite is spent."""
    body = parse_body(InviteAccept, raw)
    accepted = accept_invite(
        session, body.token, user_id=identity.user_id, email=claims.email, guards=services.accept_guards()
    )
    log.info("invite accepted org=%s user=%s role=%s", accepted.org_id, identity.user_id, accepted.role)
    return InviteAccepted(
        organisation=InvitedOrganisation(id=accepted.org_id, name=accepted.org_name), role=accepted.role
    )
