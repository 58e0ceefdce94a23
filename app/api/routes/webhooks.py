"""`POST /webhooks/clerk`: Clerk's events, svix-signed. Public (`security: []`): the signature is the sender's proof.

Answers, in this order: `404` while no `CLERK_WEBHOOK_SECRET` is set (the endpoint is off, and says so:
not a 5xx, which Clerk and monitors would read as an outage); `413` past `MAX_PAYLOAD_BYTES`; `400`
`invalid_webhook` with a reason when the delivery is not a verified Clerk event (nothing is changed);
`200` otherwise, with what the delivery did (`processed`, `duplicate`, `stale`, `ignored`). An event type the
app does not handle is acknowledged and ignored, since Clerk retries every answer but 2xx; a handled one is
idempotent, because Clerk may deliver it more than once and in any order.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import ServicesDep, SessionDep, json_body_openapi
from app.api.schemas import ErrorBody, WebhookReceipt
from app.errors import ApiError, current_request_id
from app.faults import Fault
from app.sync import SyncRules, apply_delivery
from app.webhooks import (
    MAX_PAYLOAD_BYTES,
    SIGNATURE_HEADERS,
    ClerkEvent,
    Delivery,
    WebhookRefused,
    WebhookVerifier,
)

__all__ = ["router"]

log = logging.getLogger("app.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Not a verified Clerk event (`invalid_webhook`: missing signature headers, a timestamp "
        "out of tolerance, a bad signature, or a malformed envelope); nothing was changed",
    },
    404: {"model": ErrorBody, "description": "Webhooks are off: no `CLERK_WEBHOOK_SECRET` is configured"},
    413: {"model": ErrorBody, "description": "The payload is larger than any Clerk event"},
}
_SIGNATURE_PARAMETERS = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": description}
    for name, description in zip(
        SIGNATURE_HEADERS,
        (
            "svix's message id (`msg_...`), the same on every retry",
            "unix seconds when svix signed the delivery; within 5 minutes of the server's clock",
            "space-separated `v1,<base64 HMAC-SHA256>` signatures; one match is enough",
        ),
        strict=True,
    )
]


async def _read_limited(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `MAX_PAYLOAD_BYTES` (never buffered whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
        raise ApiError(413, "payload_too_large", limit=MAX_PAYLOAD_BYTES)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD_BYTES:
            raise ApiError(413, "payload_too_large", limit=MAX_PAYLOAD_BYTES)
    return bytes(body)


def _refused(reason: str, message_id: str) -> ApiError:
    log.info("webhook refused reason=%s svix_id=%r request_id=%s", reason, message_id[:100], current_request_id())
    return ApiError(400, "invalid_webhook", reason=reason)


async def clerk_delivery(request: Request, services: ServicesDep) -> Delivery:
    """The verified delivery; 404 while webhooks are off, 413 for an oversized body, 400 for anything unverified."""
    secret = services.settings.clerk_webhook_secret
    if secret is None:
        log.info("webhook refused reason=webhooks_not_configured request_id=%s", current_request_id())
        raise ApiError(404, "not_found", reason="webhooks_not_configured")
    body = await _read_limited(request)
    try:
        verifier = WebhookVerifier(secret, check_signature=not services.has(Fault.WEBHOOK_SIGNATURE_UNCHECKED))
        return verifier.verify(body, request.headers)
    except WebhookRefused as refused:
        raise _refused(refused.reason, request.headers.get("svix-id", "")) from None


ClerkDelivery = Annotated[Delivery, Depends(clerk_delivery)]


@router.post(
    "/clerk",
    response_model=WebhookReceipt,
    responses=_RESPONSES,
    openapi_extra={"security": [], "parameters": _SIGNATURE_PARAMETERS, **json_body_openapi(ClerkEvent)},
)
def clerk_webhook(delivery: ClerkDelivery, session: SessionDep, services: ServicesDep) -> WebhookReceipt:
    """Public, svix-signed: Clerk's events, applied once per delivery and in any order (see `app.sync`): users,
    organisations and memberships created, updated and deleted. Any other event type is acknowledged and ignored.
    `status` says what the delivery did: `processed`, `duplicate` (applied before), `stale` (older than what the
    app holds, or about something deleted at Clerk) or `ignored`."""
    rules = SyncRules(
        once_per_delivery=not services.has(Fault.WEBHOOK_NOT_IDEMPOTENT),
        keep_early_memberships=not services.has(Fault.MEMBERSHIP_BEFORE_ORG_DROPPED),
        newest_wins=not services.has(Fault.STALE_UPDATE_APPLIED),
    )
    try:
        synced = apply_delivery(
            session,
            delivery,
            rules,
            delete_user=services.delete_user,
            accept_deleted_users=services.has(Fault.DELETED_USER_ACCEPTED),
        )
    except WebhookRefused as refused:
        raise _refused(refused.reason, delivery.message_id) from None
    session.commit()
    log.info(
        "webhook %s type=%r svix_id=%r request_id=%s",
        synced.value,
        delivery.event.type[:100],
        delivery.message_id[:100],
        current_request_id(),
    )
    return WebhookReceipt(status=synced.value)
