"""C3: an organisation is never left without someone to manage it.

On an organisation of its own (a new Clerk organisation's first user, its admin by M2), through `[members]`:

1. the control: the admin adds a member, changes the member's roles (`set_roles`) and removes it (`remove`), each
   seen through the member's own who-am-I; if either does nothing, the refusals below would prove nothing;
2. the admin, its organisation's only member manager, removes itself: refused, and still the admin;
3. the admin takes its own admin role away (`set_roles` to no role): refused, and still the admin.

A step that leaves the admin without its role or out of the organisation is `Lockout`. A 5xx is `ServerError`; no
answer, or a 401 (the admin's own session refused), proves nothing and is never a refusal.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.config.model import IdentityConfig, MembersConfig
from harness.config.operations import OperationRef
from harness.config.placeholders import fill_template
from harness.engine.exchange import Caller, Exchange, lookup
from harness.engine.planting import add_member, id_text, role_values
from harness.target.running import Target

__all__ = ["last_manager_stays"]


@dataclass
class _Org:
    """The check's own organisation, its admin, and how it asks who somebody is there."""

    target: Target
    issuer: Issuer
    identity: IdentityConfig
    members: MembersConfig
    admin_role: str
    org: ActiveOrg
    run: Mapping[str, str]
    transport: httpx.BaseTransport | None
    judged: Judged

    def headers(self, sub: str, role: str = "member") -> dict[str, str]:
        """Fresh session headers of `sub` with the organisation active."""
        return self.issuer.mint(sub, org=ActiveOrg(self.org.id, self.org.slug, role)).headers

    def me(self, sub: str) -> tuple[Exchange, str | None, list[str] | None]:
        """Who-am-I of `sub` here: the answer, the user id it names and its roles (None unless a list)."""
        with Caller(self.target.base_url, self.headers(sub), name=sub, transport=self.transport) as caller:
            seen = caller.call("GET", self.identity.me)
        if not seen.ok:
            return seen, None, None
        roles = lookup(seen.json(), self.identity.roles)
        return (
            seen,
            id_text(lookup(seen.json(), self.identity.user_id)),
            ([str(r) for r in roles] if isinstance(roles, list) else None),
        )

    def change(self, admin: str, operation: OperationRef, member_id: str, roles: list[str] | None) -> Exchange:
        """The admin removes the member (`roles` None) or sets its roles."""
        values = {**self.run, "id": quote(member_id, safe="")}
        path = str(fill_template(operation.path, values))
        body = None
        if roles is not None and self.members.roles_body is not None:
            body = fill_template(self.members.roles_body, {**values, **role_values(roles)})
        with Caller(
            self.target.base_url, self.headers(admin, "admin"), name="admin", transport=self.transport
        ) as caller:
            return caller.call(operation.method, path, body)


def last_manager_stays(
    target: Target,
    issuer: Issuer,
    rng: random.Random,
    run: Mapping[str, str],
    transport: httpx.BaseTransport | None,
) -> Judged:
    """The sole admin of a new organisation can neither remove itself nor give up its role (each tried in an
    organisation of its own, so that one lockout does not hide the other); see the module."""
    judged = Judged(("C3",))
    config = target.config
    members, identity, admin_role = config.members, config.identity, config.admin_role
    if members is None or identity is None or admin_role is None:
        return judged.cannot_apply("no [members], [identity] and [roles] admin: nothing says how members are managed")
    if members.remove is None or members.set_roles is None:
        return judged.cannot_apply("[members] names no remove and set_roles: members are never taken out")
    steps: tuple[tuple[OperationRef, list[str] | None, str], ...] = (
        (members.remove, None, "removes itself"),
        (members.set_roles, [], "takes its own role away"),
    )
    for n, (operation, roles, what) in enumerate(steps):
        org = _Org(
            target,
            issuer,
            identity,
            members,
            admin_role,
            ActiveOrg(clerk_id("org", rng), f"c3-{rng.getrandbits(24):06x}"),
            run,
            transport,
            judged,
        )
        admin = clerk_id("user", rng)
        first, admin_id, held = org.me(admin)
        if judged.unanswered(first, f"GET {identity.me}", "admin"):
            return judged
        if admin_id is None or held is None or admin_role not in held:
            detail = f"the first user of a new organisation is not its {admin_role}: {first.line()}"
            return judged.not_exercised(f"GET {identity.me}", "admin", detail, first)
        if n == 0 and not _control(org, admin, clerk_id("user", rng)):
            return judged
        _step_down(org, admin, admin_id, operation, roles, what)
    return judged


def _control(org: _Org, admin: str, sub: str) -> bool:
    """The admin adds `sub` as an admin too, sets its roles to an ordinary role (or none) and removes it; each must
    take effect, or nothing below means anything (False, with the finding)."""
    judged, members = org.judged, org.members
    assert members.remove is not None and members.set_roles is not None
    ordinary = next(iter((*org.target.config.roles.other, *org.target.config.roles.read_only)), None)
    with Caller(org.target.base_url, org.headers(admin, "admin"), name="admin", transport=org.transport) as caller:
        added = add_member(caller, members, sub, org.admin_role, org.run)
    if judged.unanswered(added, str(members.add), "admin") or not added.ok:
        return not judged.not_exercised(str(members.add), "admin", f"could not add a member: {added.line()}", added)
    _, member_id, _ = org.me(sub)
    changed = org.change(admin, members.set_roles, member_id or "", [ordinary] if ordinary else [])
    _, _, after = org.me(sub)
    removed = org.change(admin, members.remove, member_id or "", None)
    gone, _, _ = org.me(sub)
    org.judged.add(
        f"control: the admin adds a member as {org.admin_role} ({added.status}), sets its roles to "
        f"{[ordinary] if ordinary else []} ({changed.status}, then {after}), removes it ({removed.status}, then "
        f"who-am-I {gone.status})"
    )
    if member_id is None or not changed.ok or after != ([ordinary] if ordinary else []):
        detail = f"setting a member's roles did not take: {changed.line()}, its roles after {after}"
        return not judged.not_exercised(str(members.set_roles), "admin", detail, changed)
    if not removed.ok or gone.ok:
        detail = f"removing a member did not take: {removed.line()}, its who-am-I after {gone.line()}"
        return not judged.not_exercised(str(members.remove), "admin", detail, removed)
    return True


def _step_down(
    org: _Org, admin: str, admin_id: str, operation: OperationRef, roles: list[str] | None, what: str
) -> None:
    """The sole admin removes itself or sets its own roles: it must stay the admin, whatever the answer said."""
    seen = org.change(admin, operation, admin_id, roles)
    after, _, kept = org.me(admin)
    org.judged.add(
        f"the organisation's only {org.admin_role} {what}: {seen.status}; then who-am-I {after.status}, roles {kept}"
    )
    if org.judged.unanswered(seen, str(operation), "admin"):
        return
    if kept is not None and org.admin_role in kept:
        if seen.status >= 500:
            org.judged.find(
                FindingKind.SERVER_ERROR, str(operation), "admin", f"the only admin {what}: {seen.line()}", seen
            )
        elif seen.ok:
            detail = f"the only admin {what}: {seen.status}, though it stayed {org.admin_role}"
            org.judged.add(detail)
        return
    if after.status >= 500:
        detail = f"the only admin {what}: {seen.line()}, then who-am-I {after.line()}"
        org.judged.find(FindingKind.SERVER_ERROR, f"GET {org.identity.me}", "admin", detail, after)
        return
    if seen.status == 401 or after.status in (0, 401):
        detail = f"the only admin {what}: {seen.line()}, then who-am-I {after.line()}: nothing says what happened"
        org.judged.not_exercised(str(operation), "admin", detail, seen)
        return
    detail = (
        f"the organisation's only {org.admin_role} {what} ({seen.status}): who-am-I then {after.status}, roles "
        f"{kept}; nobody is left to manage its members"
    )
    org.judged.find(FindingKind.LOCKOUT, str(operation), "admin", detail, seen)
