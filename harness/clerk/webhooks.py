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

__all__ = ["ClerkWebhooks", "new_secret"]


def new_secret() -> str:
    """A fresh endpoint signing secret, spelled as Clerk's dashboard shows it (`whsec_<base64>`)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


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
        self._transport = transport  # the run's transport to the target, when it has one

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
        with httpx.Client(transport=self._transport, timeout=10) as client:
            return client.post(self.url, content=body, headers=headers)

    def user_deleted(self, user_id: str, at: datetime | None = None) -> httpx.Response:
        """`user.deleted`, as Clerk sends it when an account is deleted."""
        return self.send("user.deleted", {"object": "user", "id": user_id, "deleted": True}, at=at)
