"""What the controller of a parallel run hands its workers: the running target, the issuer's key, the world.

Workers of one run must act on one target, signed by one key, in one world; these functions turn the
three into JSON-safe data (pytest-xdist's `workerinput`) and back.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

import httpx

from harness.clerk.issuer import ActiveOrg, Issuer
from harness.config.model import TargetConfig
from harness.engine.world import (
    Canary,
    ClerkCredentials,
    Credentials,
    LoginCredentials,
    NoCredentials,
    Org,
    Principal,
    StaticCredentials,
    World,
)
from harness.target.running import SharedTarget, Target

__all__ = ["dump_issuer", "dump_target", "dump_world", "load_issuer", "load_target", "load_world"]


def dump_issuer(issuer: Issuer) -> dict[str, str]:
    """The issuer as data."""
    return {"pem": issuer.private_pem, "kid": issuer.kid, "iss": issuer.issuer_url, "azp": issuer.authorized_party}


def load_issuer(data: dict[str, str], seed: int) -> Issuer:
    """An issuer signing with the shared key."""
    return Issuer(
        issuer_url=data["iss"], authorized_party=data["azp"], rng=random.Random(seed), private_pem=data["pem"],
        kid=data["kid"],
    )  # fmt: skip


def dump_target(target: Target) -> dict[str, Any]:
    """The running target as data."""
    log_path = getattr(target, "log_path", None)
    return {
        "base_url": target.base_url,
        "database_url": target.database_url,
        "description": target.description,
        "log_path": str(log_path) if log_path else None,
        "jwks_url": target.jwks_url,
        "webhook_secret": target.webhook_secret,
        "mailbox": None
        if target.mailbox is None
        else {"host": target.mailbox.host, "port": target.mailbox.port, "directory": str(target.mailbox.directory)},
    }


def load_target(data: dict[str, Any], config: TargetConfig) -> SharedTarget:
    """The controller's target, as a worker sees it."""
    return SharedTarget(config, data)


def _dump_credentials(credentials: Credentials) -> dict[str, Any]:
    if isinstance(credentials, LoginCredentials):  # before StaticCredentials, which it extends
        return {"kind": "login", "state": credentials.state()}
    if isinstance(credentials, ClerkCredentials):
        return {"kind": "clerk", "sub": credentials.sub, "org": asdict(credentials.org) if credentials.org else None}
    if isinstance(credentials, StaticCredentials):
        return {"kind": "static", "headers": credentials.static_headers, "cookies": credentials.static_cookies}
    return {"kind": "none"}


def _load_credentials(data: dict[str, Any], issuer: Issuer, transport: httpx.BaseTransport | None) -> Credentials:
    if data["kind"] == "clerk":
        org = data["org"]
        active = ActiveOrg(org["id"], org["slug"], org["role"], tuple(org["permissions"])) if org else None
        return ClerkCredentials(issuer, data["sub"], active)
    if data["kind"] == "login":
        return LoginCredentials.restore(data["state"], transport)
    if data["kind"] == "static":
        headers = tuple((k, v) for k, v in data["headers"])
        return StaticCredentials(headers, tuple((k, v) for k, v in data["cookies"]))
    return NoCredentials()


def dump_world(world: World) -> dict[str, Any]:
    """The world as data."""
    return {
        "problems": world.problems,
        "refused_logins": world.refused_logins,
        "secrets": sorted(world.secrets),
        "orgs": [
            {
                "key": org.key,
                "id": org.id,
                "principals": [
                    {
                        "name": p.name,
                        "org": p.org,
                        "role": p.role,
                        "user_id": p.user_id,
                        "credentials": _dump_credentials(p.credentials),
                    }
                    for p in org.principals
                ],
                "canaries": [asdict(c) for c in org.canaries],
                "scratch": [asdict(c) for c in org.scratch],
            }
            for org in world.orgs.values()
        ],
    }


def load_world(data: dict[str, Any], issuer: Issuer, transport: httpx.BaseTransport | None) -> World:
    """The controller's world, as a worker sees it; its logins renew through `transport` (the run's guard)."""
    world = World(
        orgs={},
        problems=list(data["problems"]),
        refused_logins=list(data.get("refused_logins", ())),
        secrets=set(data.get("secrets", ())),
    )
    for raw in data["orgs"]:
        org = Org(key=raw["key"], id=raw["id"])
        org.principals = [
            Principal(
                p["name"], p["org"], p["role"], _load_credentials(p["credentials"], issuer, transport), p["user_id"]
            )
            for p in raw["principals"]
        ]
        org.canaries = [_canary(c) for c in raw["canaries"]]
        org.scratch = [_canary(c) for c in raw["scratch"]]
        world.orgs[org.key] = org
    return world


def _canary(data: dict[str, Any]) -> Canary:
    return Canary(**{**data, "handles": tuple(data.get("handles", ()))})
