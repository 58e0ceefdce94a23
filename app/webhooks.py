"""Clerk's webhooks as they arrive: a svix-signed delivery, verified, then read as Clerk's event envelope.

Clerk signs each delivery with the endpoint's secret (`svix-id`, `svix-timestamp`, `svix-signature`, an
HMAC-SHA256 of `"{id}.{timestamp}.{raw body}"`); the svix library checks it, with its 5-minute tolerance
either way, so a captured delivery cannot be replayed later. The checks before it (headers present, a
timestamp within that tolerance) only give an operator a precise reason; svix decides. Nothing is parsed
before the signature holds: an unsigned body is never read as an event.

Delivery is at least once, retried on any answer but 2xx, and in no promised order, so whatever handles
an event must be idempotent and must not depend on an earlier event having arrived.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from app.auth.token import plain_id

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SIGNATURE_HEADERS",
    "TOLERANCE_SECONDS",
    "ClerkEvent",
    "DeletedObject",
    "Delivery",
    "WebhookRefused",
    "WebhookVerifier",
    "deleted_object",
]

SIGNATURE_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
TOLERANCE_SECONDS = 5 * 60  # svix's own, either way
# Clerk's largest events (a user with full metadata) are a few kilobytes; anything far past that is not Clerk.
MAX_PAYLOAD_BYTES = 256 * 1024


class WebhookRefused(Exception):
    """A delivery that is not a verified Clerk event; `reason` is a short code the sender may see."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clerk_id(value: str) -> str:
    if not plain_id(value):
        raise ValueError("must be a Clerk id")
    return value


ClerkId = Annotated[str, AfterValidator(_clerk_id)]


class ClerkEvent(BaseModel):
    """Clerk's event envelope: `{data, object: "event", type, timestamp (ms), instance_id}` (fields may be added)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    data: dict[str, Any]
    object: str | None = None
    timestamp: int | None = None
    instance_id: str | None = None


class DeletedObject(BaseModel):
    """The `data` of every `*.deleted` event: `{object, id, deleted: true}`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: ClerkId
    object: str | None = None
    deleted: bool = True


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: svix's message id (the same on every retry) and the event."""

    message_id: str
    event: ClerkEvent


class WebhookVerifier:
    """Verifies deliveries signed with one endpoint secret (`whsec_<base64>`, validated by the settings)."""

    def __init__(self, secret: str, *, check_signature: bool = True) -> None:
        self._webhook = Webhook(secret)
        self._check_signature = check_signature  # False: the `webhook_signature_unchecked` fault

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> Delivery:
        """The delivery, if svix's signature over `body` holds; raise WebhookRefused(reason) for anything else.

        `now` is the clock of the app's own tolerance pre-check (a precise reason); svix checks the wall clock.
        """
        signed = {name: headers.get(name, "").strip() for name in SIGNATURE_HEADERS}
        if self._check_signature:
            if not all(signed.values()):
                raise WebhookRefused("missing_signature_headers")
            self._check_timestamp(signed["svix-timestamp"], time.time() if now is None else now)
            try:
                self._webhook.verify(body, signed)
            except (WebhookVerificationError, ValueError):
                # ValueError too: the library decodes the body as UTF-8, and unpacks and base64-decodes the
                # signature header, without guarding either; what it cannot read is not signed.
                raise WebhookRefused("bad_signature") from None
        try:
            event = ClerkEvent.model_validate_json(body)
        except ValidationError:
            raise WebhookRefused("malformed_payload") from None
        return Delivery(message_id=signed["svix-id"], event=event)

    @staticmethod
    def _check_timestamp(raw: str, now: float) -> None:
        try:
            sent = int(raw)
        except ValueError:
            raise WebhookRefused("timestamp_out_of_tolerance") from None
        if abs(now - sent) > TOLERANCE_SECONDS:
            raise WebhookRefused("timestamp_out_of_tolerance")


def deleted_object(event: ClerkEvent) -> DeletedObject:
    """The `data` of a `*.deleted` event; raise WebhookRefused(`malformed_payload`) if it names no valid id."""
    try:
        return DeletedObject.model_validate(event.data)
    except ValidationError:
        raise WebhookRefused("malformed_payload") from None
