"""Clerk's webhooks as Clerk delivers them: an event envelope, signed by svix with the endpoint's secret.

The harness tells a target about things that happen at Clerk (a user deleted, later organisations and
memberships) the only way Clerk does, so that a target cannot tell the harness from its identity provider.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["ClerkWebhooks", "membership_data", "new_secret", "organization_data"]


def new_secret() -> str:
    """A fresh endpoint signing secret, spelled as Clerk's dashboard shows it (`whsec_<base64>`)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def organization_data(org_id: str, name: str, updated_at: int, *, created_by: str = "") -> dict[str, Any]:
    """`organization.created|updated` data, in Clerk's shape (times in ms)."""
    return {
        "object": "organization",
        "id": org_id,
        "name": name,
        "slug": name.lower().replace(" ", "-"),
        "image_url": "",
        "created_by": created_by,
        "created_at": min(updated_at, 1),
        "updated_at": updated_at,
        "public_metadata": {},
        "private_metadata": {},
        "max_allowed_memberships": 0,
    }


def membership_data(
    membership_id: str, organization: dict[str, Any], user_id: str, role: str, updated_at: int
) -> dict[str, Any]:
    """`organizationMembership.created|updated` data, in Clerk's shape: the organisation as it stood, embedded."""
    return {
        "object": "organization_membership",
        "id": membership_id,
        "role": role,
        "permissions": [],
        "organization": organization,
        "public_user_data": {
            "user_id": user_id,
            "identifier": f"{user_id.lower()}@example.org",
            "first_name": "",
            "last_name": "",
        },
        "public_metadata": {},
        "created_at": min(updated_at, 1),
        "updated_at": updated_at,
    }


class ClerkWebhooks:
    """Delivers events to one target endpoint."""

    def __init__(
        self, base_url: str, path: str, secret: str, instance_id: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        # svix's package import costs most of a second (its API models): only a run that sends webhooks pays it.
        from svix.webhooks import Webhook

        self.url = base_url.rstrip("/") + path
        self._webhook = Webhook(secret)
        self._instance_id = instance_id
        # The run's transport to the target, when it has one; else one of this sender's own, made once (a new
        # transport costs tens of milliseconds: its TLS context), for every delivery.
        self._transport: httpx.BaseTransport = transport or httpx.HTTPTransport()

    def send(
        self, event_type: str, data: dict[str, Any], msg_id: str | None = None, at: datetime | None = None
    ) -> httpx.Response:
        """Deliver one event (svix headers, Clerk's envelope), signed as sent `at` (now); the target's answer."""
        msg_id = msg_id or "msg_" + secrets.token_hex(13)
        now = at or datetime.now(tz=UTC)
        envelope = {
            "data": data,
            "object": "event",
            "type": event_type,
            "timestamp": int(time.time() * 1000),
            "instance_id": self._instance_id,
        }
        body = json.dumps(envelope, separators=(",", ":"))
        headers = {
            "svix-id": msg_id,
            "svix-timestamp": str(int(now.timestamp())),
            "svix-signature": self._webhook.sign(msg_id, now, body),
            "content-type": "application/json",
        }
        # Not closed: closing a client closes its transport, which outlives every delivery.
        return httpx.Client(transport=self._transport, timeout=10).post(self.url, content=body, headers=headers)

    def user_deleted(self, user_id: str, at: datetime | None = None) -> httpx.Response:
        """`user.deleted`, as Clerk sends it when an account is deleted."""
        return self.send("user.deleted", {"object": "user", "id": user_id, "deleted": True}, at=at)
