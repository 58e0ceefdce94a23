"""C1 over a session's life: a refusal provisions nothing, a deleted user's valid session is refused, and a
role the token claims but the target never granted is not honoured."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.sessions import page, send_forgery
from harness.clerk.attacks import CATALOGUE, Forge
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.clerk.webhooks import ClerkWebhooks, new_secret
from harness.database import traces
from harness.engine.exchange import Caller
from harness.engine.world import ClerkCredentials, World, fill_template
from harness.target.running import Target

__all__ = ["CLERK_ADMIN", "deleted_user_refused", "refusals_provision_nothing", "role_claim_ignored"]

# Clerk's own organisation admin: its role key, and the system permissions its sessions carry.
CLERK_ADMIN = ActiveOrg("", "", "admin", ("org:sys_memberships:manage", "org:sys_profile:manage"))


def refusals_provision_nothing(
    target: Target, issuer: Issuer, api: str, listener: str, rng: random.Random, transport: httpx.BaseTransport | None
) -> Judged:
    """The catalogue once more, each forgery naming a user and an organisation nobody has used; none may leave a
    trace of them in the database."""
    judged = Judged(("C1",))
    sub, org_id = clerk_id("user", rng), clerk_id("org", rng)
    org = ActiveOrg(org_id, f"untouched-{org_id[-6:].lower()}", "admin")
    forge = Forge(issuer, sub, org, int(time.time()), listener)
    for entry in CATALOGUE:
        forged = entry.build(forge)
        name = f"forgery {entry.name}"
        seen, opened = send_forgery(target, api, forged, name, forge.now, transport)
        for got in (seen, opened):
            if judged.unanswered(got, f"GET {api}", name):
                continue
            if got is not None and got.ok:
                detail = f"accepted forgery ({entry.name}) naming a new user: {got.status}"
                judged.find(FindingKind.FORGERY_ACCEPTED, f"GET {got.url}", name, detail, got)
    if not judged.ok:
        return judged
    if target.database_url is None:
        judged.add("refusals provision nothing: not checked (the harness may not read the target's database)")
        return judged
    found = traces.mentions(target.database_url, [sub, org_id])
    judged.add(f"refusals provision nothing: {sub} and {org_id} in no table after {len(CATALOGUE)} forgeries")
    if found:
        detail = f"refused forgeries left {sub} or {org_id} in {', '.join(found)}"
        judged.find(FindingKind.FORGERY_PROVISIONED, f"GET {api}", "forgeries", detail)
    return judged


def deleted_user_refused(
    target: Target, issuer: Issuer, api: str, rng: random.Random, transport: httpx.BaseTransport | None
) -> Judged:
    """A user signs in, Clerk deletes the account (webhook `user.deleted`): the session token, still within its
    lifetime, is refused on the API and opens no page. Before that, deliveries signed with another secret or too
    long ago are refused and delete nobody."""
    judged = Judged(("C1",))
    webhooks = target.config.webhooks
    if webhooks is None:
        return judged.cannot_apply("the config has no [webhooks]: the target learns of no deletion")
    if target.webhook_secret is None:
        detail = f"deleted user: [webhooks] is configured but ${webhooks.secret_env} holds no signing secret"
        judged.find(FindingKind.NOT_EXERCISED, f"POST {webhooks.clerk}", "Clerk", detail)
        return judged
    sub = clerk_id("user", rng)
    org = ActiveOrg(clerk_id("org", rng), f"deleted-{sub[-6:].lower()}", "admin")
    delivery = f"POST {webhooks.clerk}"
    sender = ClerkWebhooks(target.base_url, webhooks.clerk, target.webhook_secret, issuer.kid, transport=transport)
    forgers: dict[str, Callable[[], httpx.Response]] = {
        "signed with another secret": lambda: ClerkWebhooks(
            target.base_url, webhooks.clerk, new_secret(), issuer.kid, transport=transport
        ).user_deleted(sub),
        "signed 10 minutes ago": lambda: sender.user_deleted(sub, at=datetime.now(tz=UTC) - timedelta(minutes=10)),
    }
    with Caller(target.base_url, name="user to delete", transport=transport) as caller:
        first = caller.call("GET", api, headers=issuer.mint(sub, org=org).headers)
        if first.status != 200:
            detail = f"deleted user: the user's first login answered {first.status}, so nothing to delete"
            judged.find(FindingKind.NOT_EXERCISED, f"GET {api}", caller.name, detail, first)
            return judged
        for label, forged_delivery in forgers.items():
            answer = forged_delivery().status_code
            after = caller.call("GET", api, headers=issuer.mint(sub, org=org).headers)
            judged.add(f"forged user.deleted ({label}): {answer}; the user's next request {after.status}")
            if not 400 <= answer < 500 or after.status != 200:
                detail = f"a user.deleted {label} was not refused: {answer}, then the user's request {after.status}"
                judged.find(FindingKind.FORGED_WEBHOOK_ACCEPTED, delivery, "Clerk (forged)", detail, after)
        delivered = sender.user_deleted(sub)
        if not delivered.is_success:
            detail = f"deleted user: the target answered {delivered.status_code} to a signed user.deleted"
            judged.find(FindingKind.NOT_EXERCISED, delivery, "Clerk", detail)
            return judged
        token = issuer.mint(sub, org=org)
        seen = caller.call("GET", api, headers=token.headers)
        opened = page(caller, target, token, token.claims["iat"])
    shown = opened.status if opened is not None else 0
    judged.add(
        f"deleted user: user.deleted {delivered.status_code}; their valid token: API {seen.status}, page {shown}"
    )
    if not judged.unanswered(seen, f"GET {api}", "deleted user") and seen.status != 401:
        detail = f"a deleted user's valid session token answered {seen.status} on the API"
        judged.find(FindingKind.DELETED_USER_ACCEPTED, f"GET {api}", "deleted user", detail, seen)
    if opened is not None and opened.ok:
        detail = f"a deleted user's valid session opened the page ({opened.status})"
        judged.find(FindingKind.DELETED_USER_ACCEPTED, f"GET {opened.url}", "deleted user", detail, opened)
    return judged


def role_claim_ignored(
    target: Target, world: World, issuer: Issuer, rng: random.Random, transport: httpx.BaseTransport | None
) -> Judged:
    """A read-only member whose validly signed session claims the admin role (v2 `o.rol`, v1 `org_role`) is
    still refused a write: roles come from the target's own records, never from the token alone."""
    judged = Judged(("C1",))
    org = world.orgs.get("org1")
    read_only = target.config.roles.read_only
    member = next((p for p in org.principals if p.role in read_only), None) if org is not None else None
    if org is None or member is None or not target.config.canaries:
        return judged.cannot_apply("no read-only member, or no record to create")
    creds = member.credentials
    if not isinstance(creds, ClerkCredentials) or creds.org is None:
        return judged.cannot_apply("the read-only member's session is not a Clerk one naming an organisation")
    resource = target.config.canaries[0]
    values = {**{c.resource: c.id for c in org.canaries}, "marker": f"roleclaim{rng.getrandbits(48):012x}"}
    path, body = fill_template(resource.create.path, values), fill_template(resource.body, values)
    claimed = ActiveOrg(creds.org.id, creds.org.slug, CLERK_ADMIN.role, CLERK_ADMIN.permissions)
    method = resource.create.method
    with Caller(target.base_url, name=member.name, transport=transport) as caller:
        # The control: the same request succeeds for the owner, so a refusal below is about the role alone.
        owner = caller.call(method, path, body, headers=org.owner.credentials.headers())
        honest = caller.call(method, path, body, headers=creds.headers())
        if not owner.ok or honest.ok:
            # The control failed: without an owner who may and a member who may not, the claim proves nothing.
            detail = (
                f"role claim: not exercised ({resource.create}: the owner got {owner.status}, "
                f"{member.name} with its own role {honest.status}; see M3)"
            )
            return judged.not_exercised(str(resource.create), member.name, detail, owner if not owner.ok else honest)
        seen = {
            version: caller.call(
                method, path, body, headers=issuer.mint(creds.sub, org=claimed, version=version).headers
            )
            for version in (2, 1)
        }
    judged.add(
        f"role claim: {member.name} ({member.role}) on {resource.create}: owner {owner.status}, "
        f"own session {honest.status}, claiming admin v2 {seen[2].status}, v1 {seen[1].status}"
    )
    for version, got in seen.items():
        if judged.unanswered(got, str(resource.create), member.name):
            continue
        if got.ok:
            detail = (
                f"{member.name}'s session claiming the admin role (v{version}) was let {resource.create}: {got.status}"
            )
            judged.find(FindingKind.ROLE_CLAIM_TRUSTED, str(resource.create), member.name, detail, got)
    return judged
