"""O5: an invite by email lets in the invited address, once, before it expires, and is sent only by those who may.

The target mails its invites to the run's SMTP server (`Target.mailbox`); the harness reads the link out of the
delivered message with `[invites] token` and accepts it as the invitee would: a new Clerk user whose session
token carries the address (`[invites] email_claim`). Membership is judged by who-am-I with the organisation
active, never by the accept's answer alone. In turn:

1. org1's admin invites an address: the mail arrives, its token is long enough to be unguessable (128 bits);
2. another address accepts it first: refused, and not a member;
3. the invited address accepts it: a member of org1 with the invited role;
4. a second user with the same address accepts it again: refused, and not a member;
5. a fresh invite accepted 16 times at once by 16 users of its address: exactly one is let in;
6. an invite made to expire (`[invites] expiring`, a test-mode hook) and accepted after: refused;
7. an invite revoked (`[invites] revoke`) and accepted after: refused;
8. org1's read-only member invites: refused, and no mail;
9. org1's admin invites into org2 (`{org}` naming org2): nobody joins org2 by it;
10. org1's `[invites] inviter` (a role below the admin that may invite) invites the invited role (let in, or the
    step proves nothing), then an admin: refused, no mail, and nobody an admin by it (OWASP API5).

An answer a step is judged by that proves nothing (none, a 401, a 5xx) is a finding of its own, never a refusal.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.together import at_once
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.config.model import IdentityConfig, InvitesConfig
from harness.config.placeholders import fill_template, placeholders_in
from harness.engine.exchange import Caller, Exchange, lookup
from harness.engine.planting import id_text
from harness.engine.world import ClerkCredentials, Org, Principal, World
from harness.target.mailbox import Mailbox, read_mail
from harness.target.running import Target

__all__ = ["CONCURRENT_ACCEPTS", "MIN_TOKEN_BITS", "QUIET_SECONDS", "invite_flow"]

CONCURRENT_ACCEPTS = 16
MIN_TOKEN_BITS = 128
_POLL_SECONDS = 0.1
QUIET_SECONDS = 1.0  # how long a refused invite's mail is waited for, to see it never comes


def _bits(token: str) -> float:
    """The most entropy a token of this alphabet and length can carry."""
    if re.fullmatch(r"[0-9a-fA-F]+", token):
        return 4.0 * len(token)
    if re.fullmatch(r"[A-Za-z0-9_-]+", token):
        return 6.0 * len(token)
    return math.log2(95) * len(token)


@dataclass
class _Flow:
    target: Target
    issuer: Issuer
    config: InvitesConfig
    identity: IdentityConfig
    mailbox: Mailbox
    role: str
    run: Mapping[str, str]
    rng: random.Random
    transport: httpx.BaseTransport | None
    judged: Judged
    quiet_seconds: float  # how long a mail that must never come is waited for

    def address(self, label: str) -> str:
        return f"{label}-{self.rng.getrandbits(40):010x}@invitee.example"

    def invite(
        self,
        caller: Caller,
        inviter: Principal,
        org: Org,
        email: str,
        headers: Mapping[str, str] | None = None,
        *,
        role: str | None = None,
    ) -> Exchange:
        """`inviter` invites `email` into `org` as `role` (default: the flow's), presenting fresh credentials (a Clerk
        token lives a minute, and the flow may take longer)."""
        caller.present(inviter.credentials.headers())
        values = {**self.run, "email": email, "role": role or self.role, "org": org.id or ""}
        path = fill_template(self.config.create.path, values)
        body = fill_template(self.config.body, values)
        return caller.call(self.config.create.method, path, body, headers=dict(headers or {}))

    def mail_for(self, email: str, *, seconds: float) -> str | None:
        """The token in the newest message to `email` delivered within `seconds`, or None."""
        deadline = time.monotonic() + seconds
        while True:
            for mail in reversed(read_mail(self.mailbox.directory)):
                if email.lower() in (r.lower() for r in mail.recipients):
                    found = re.search(self.config.token, mail.text)
                    return found.group(1) if found else ""
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_SECONDS)

    def session(self, email: str) -> tuple[str, dict[str, str]]:
        """A new Clerk user whose session token carries `email`: their id and request headers."""
        sub = clerk_id("user", self.rng)
        return sub, self.issuer.mint(sub, extra={self.config.email_claim: email}).headers

    def accept(self, headers: Mapping[str, str], token: str, name: str) -> Exchange:
        values = {**self.run, "token": token}
        path = fill_template(self.config.accept.path, values)
        body = fill_template(self.config.accept_body, values)
        with Caller(self.target.base_url, name=name, transport=self.transport) as caller:
            return caller.call(self.config.accept.method, path, body, headers=dict(headers))

    def roles_in(self, org: Org, sub: str, email: str) -> tuple[int, list[str] | None]:
        """Who-am-I of `sub` with `org` active: its status, and the roles it lists (None unless a member)."""
        assert org.owner.credentials is not None
        claim = org.owner.credentials.org if isinstance(org.owner.credentials, ClerkCredentials) else None
        active = ActiveOrg(claim.id, claim.slug, self.role.lower()) if claim is not None else None
        token = self.issuer.mint(sub, org=active, extra={self.config.email_claim: email})
        with Caller(self.target.base_url, name=sub, transport=self.transport) as caller:
            seen = caller.call("GET", self.identity.me, headers=token.headers)
        named = id_text(lookup(seen.json(), self.identity.org_id)) if seen.ok else None
        roles = lookup(seen.json(), self.identity.roles) if seen.ok and named == org.id else None
        return seen.status, [str(r) for r in roles] if isinstance(roles, list) else None

    def misused(self, what: str, seen: Exchange, org: Org, sub: str, email: str) -> bool:
        """After an accept that must be refused: a finding if it answered 2xx or made `sub` a member; a server error
        or an answer that says nothing about membership (none, 401) is never taken for a refusal."""
        status, roles = self.roles_in(org, sub, email)
        if seen.ok or roles is not None:
            detail = f"{what}: the accept answered {seen.status}, and who-am-I in {org.key} {status} with roles {roles}"
            self.judged.find(FindingKind.INVITE_MISUSED, str(self.config.accept), sub, detail, seen)
            return True
        self.undecided(what, seen, status, sub)
        return False

    def taken_up(self, email: str, org: Org, name: str) -> tuple[str | None, list[str] | None]:
        """After an invite that must be refused: the token of a mail to `email` within the quiet time, if one came,
        and the roles in `org` of a user of the address who accepts it (None unless that makes them a member)."""
        token = self.mail_for(email, seconds=self.quiet_seconds)
        if not token:
            return token, None
        sub, headers = self.session(email)
        self.accept(headers, token, name)
        return token, self.roles_in(org, sub, email)[1]

    def unclear(self, made: Exchange, who: str, what: str) -> bool:
        """True, with a finding, when an invite that must be refused went unanswered or was answered 401 (the
        inviter's own session refused) or a 5xx (the target failing): neither is a refusal."""
        if self.judged.unanswered(made, str(self.config.create), who):
            return True
        if made.status == 401 or made.status >= 500:
            kind = FindingKind.SERVER_ERROR if made.status >= 500 else FindingKind.NOT_EXERCISED
            self.judged.find(kind, str(self.config.create), who, f"{what}: {made.line()}", made)
            return True
        return False

    def undecided(self, what: str, seen: Exchange, status: int, who: str) -> None:
        """A finding when an answer a step is judged by proves nothing: a 5xx, no answer, or a 401."""
        if seen.status >= 500 or status >= 500:
            detail = f"{what}: the accept answered {seen.status}, who-am-I {status}"
            self.judged.find(FindingKind.SERVER_ERROR, str(self.config.accept), who, detail, seen)
        elif not seen.answered or seen.status == 401 or status in (0, 401):
            detail = f"{what}: the accept answered {seen.status or 'nothing'}, who-am-I {status or 'nothing'}"
            self.judged.not_exercised(str(self.config.accept), who, detail, seen)


def invite_flow(
    target: Target,
    world: World,
    issuer: Issuer,
    rng: random.Random,
    run: Mapping[str, str],
    transport: httpx.BaseTransport | None,
    *,
    quiet_seconds: float = QUIET_SECONDS,
) -> Judged:
    """Invite, read the mail, accept as the invitee and as others; see the module's list. A mail that must never
    come (a refused invite's) is waited for `quiet_seconds`."""
    judged = Judged(("O5",))
    config, identity, roles = target.config.invites, target.config.identity, target.config.roles
    if config is None or identity is None:
        return judged.cannot_apply("the config has no [invites] and [identity]: nothing says how an invite is made")
    if target.mailbox is None:
        detail = "the target's mail does not reach the run's SMTP server: no invite can be read"
        return judged.not_exercised(str(config.create), "harness", detail)
    if len(world.orgs) < 2 or not isinstance(world.nth(0).owner.credentials, ClerkCredentials):
        return judged.cannot_apply("no two organisations whose owners present Clerk sessions")
    role = config.role or next(iter((*roles.other, *roles.read_only)), None)
    if role is None:
        return judged.cannot_apply("no role to invite: [invites] role, or [roles] other or read_only")
    org1, org2 = world.nth(0), world.nth(1)
    flow = _Flow(target, issuer, config, identity, target.mailbox, role, run, rng, transport, judged, quiet_seconds)
    with org1.owner.caller(target.base_url, transport) as owner:
        if not _invited(flow, owner, org1):
            return judged
        _at_once(flow, owner, org1)
        _expired(flow, owner, org1)
        _revoked(flow, owner, org1)
        _cross_org(flow, owner, org1.owner, org2)
    _member_invites(flow, org1)
    _above_inviter(flow, org1, roles.admin)
    return judged


def _invited(flow: _Flow, owner: Caller, org1: Org) -> bool:
    """org1's admin invites an address and the mail arrives; another address accepts it first (refused), then the
    invited one (a member with the role), then a second user of the invited address (refused). False when the
    invite could not be made or accepted at all: nothing else would mean anything."""
    judged, operation = flow.judged, str(flow.config.create)
    email = flow.address("invited")
    made = flow.invite(owner, org1.owner, org1, email)
    if judged.unanswered(made, operation, owner.name):
        return False
    if not made.ok:
        judged.not_exercised(operation, owner.name, f"the admin's invite answered {made.line()}", made)
        return False
    token = flow.mail_for(email, seconds=flow.config.mail_seconds)
    if not token:
        said = "no mail arrived" if token is None else "the mail holds no token matching [invites] token"
        judged.not_exercised(operation, owner.name, f"{said} for {email} within {flow.config.mail_seconds} s", made)
        return False
    bits = _bits(token)
    if bits < MIN_TOKEN_BITS:
        detail = f"the invite's token is {len(token)} characters, at most {bits:.0f} bits (at least {MIN_TOKEN_BITS})"
        judged.find(FindingKind.WEAK_INVITE_TOKEN, operation, owner.name, detail, made)
    other = flow.address("stranger")
    stranger_sub, stranger = flow.session(other)
    refused = flow.accept(stranger, token, "another address")
    flow.misused("another address accepted the invite", refused, org1, stranger_sub, other)
    sub, headers = flow.session(email)
    accepted = flow.accept(headers, token, "invitee")
    status, roles = flow.roles_in(org1, sub, email)
    judged.add(
        f"{owner.name} invites {email} as {flow.role}: {made.status}; the mail arrived with a token of "
        f"{len(token)} characters (up to {bits:.0f} bits); another address accepts it: {refused.status}; the "
        f"invited one: {accepted.status}, and who-am-I in {org1.key}: {status}, roles {roles}"
    )
    if not accepted.ok or roles != [flow.role]:
        detail = f"the invited address accepted ({accepted.status}) and is {roles} in {org1.key}, not [{flow.role!r}]"
        judged.not_exercised(str(flow.config.accept), "invitee", detail, accepted)
        return False
    again_sub, again = flow.session(email)
    twice = flow.accept(again, token, "second use")
    flow.misused("a used invite accepted again (another user of the invited address)", twice, org1, again_sub, email)
    judged.add(f"a second use of it: {twice.status}")
    return True


def _at_once(flow: _Flow, owner: Caller, org1: Org) -> None:
    """A fresh invite accepted by 16 users of its address at the same moment: exactly one gets in."""
    email = flow.address("raced")
    made = flow.invite(owner, org1.owner, org1, email)
    token = flow.mail_for(email, seconds=flow.config.mail_seconds) if made.ok else None
    if not token:
        flow.judged.not_exercised(str(flow.config.create), owner.name, f"a second invite failed: {made.line()}", made)
        return
    sessions = [flow.session(email) for _ in range(CONCURRENT_ACCEPTS)]
    accepts = [partial(flow.accept, headers, token, "racing invitee") for _, headers in sessions]
    answers = at_once(accepts, name="o5-accept")
    seen = [flow.roles_in(org1, sub, email) for sub, _ in sessions]
    members = [roles for _, roles in seen if roles is not None]
    for answer, (status, _) in zip(answers, seen, strict=True):
        if not answer.ok:
            flow.undecided("one of the accepts at once", answer, status, "racing invitee")
    statuses = sorted(seen.status for seen in answers)
    flow.judged.add(
        f"{len(sessions)} users of {email} accept one invite at once: {statuses}; members after: {len(members)}"
    )
    if sum(seen.ok for seen in answers) != 1 or len(members) != 1:
        succeeded = sum(seen.ok for seen in answers)
        detail = f"{len(sessions)} accepts of one invite at once: {succeeded} answered 2xx, {len(members)} joined"
        flow.judged.find(FindingKind.INVITE_MISUSED, str(flow.config.accept), "racing invitees", detail, answers[0])


def _expired(flow: _Flow, owner: Caller, org1: Org) -> None:
    hook = flow.config.expiring
    if not hook:
        detail = "the config names no [invites] expiring hook: whether an expired invite is refused is not known"
        flow.judged.not_exercised(str(flow.config.accept), "invitee", detail)
        return
    email = flow.address("expired")
    made = flow.invite(owner, org1.owner, org1, email, hook)
    token = flow.mail_for(email, seconds=flow.config.mail_seconds) if made.ok else None
    if not token:
        flow.judged.not_exercised(
            str(flow.config.create), owner.name, f"an expiring invite failed: {made.line()}", made
        )
        return
    seconds = flow.config.expiring_seconds
    time.sleep(max(2 * seconds, seconds + 0.5))  # past the expiry by a margin for the target's clock
    sub, headers = flow.session(email)
    seen = flow.accept(headers, token, "late invitee")
    flow.misused(f"an invite accepted after it expired ({flow.config.expiring_seconds} s)", seen, org1, sub, email)
    flow.judged.add(f"an invite made to expire in {flow.config.expiring_seconds} s, accepted after: {seen.status}")


def _revoked(flow: _Flow, owner: Caller, org1: Org) -> None:
    config = flow.config
    if config.revoke is None or config.id is None:
        flow.judged.add("the config names no [invites] revoke: revocation not checked")
        return
    email = flow.address("revoked")
    made = flow.invite(owner, org1.owner, org1, email)
    token = flow.mail_for(email, seconds=config.mail_seconds) if made.ok else None
    invite_id = id_text(lookup(made.json(), config.id))
    if not token or invite_id is None:
        flow.judged.not_exercised(str(config.create), owner.name, f"an invite to revoke failed: {made.line()}", made)
        return
    owner.present(org1.owner.credentials.headers())
    revoked = owner.call(config.revoke.method, fill_template(config.revoke.path, {**flow.run, "id": invite_id}))
    if not revoked.ok:
        flow.judged.not_exercised(str(config.revoke), owner.name, f"revoking answered {revoked.line()}", revoked)
        return
    sub, headers = flow.session(email)
    seen = flow.accept(headers, token, "revoked invitee")
    flow.misused("a revoked invite accepted", seen, org1, sub, email)
    flow.judged.add(f"an invite revoked ({revoked.status}), accepted after: {seen.status}")


def _cross_org(flow: _Flow, owner: Caller, inviter: Principal, org2: Org) -> None:
    """org1's admin invites into org2 (`{org}` naming it): nobody may join org2 by it. A target that invites into
    the caller's own organisation whatever `{org}` says, or refuses, is right."""
    config = flow.config
    if "org" not in placeholders_in([config.create.path, config.body]):
        flow.judged.add("[invites] names no {org}: an invite into another organisation is not tried")
        return
    email = flow.address("crossorg")
    made = flow.invite(owner, inviter, org2, email)
    if flow.unclear(made, owner.name, f"an invite into {org2.key}"):
        return
    token, joined = flow.taken_up(email, org2, "cross-org invitee")
    flow.judged.add(
        f"{owner.name} invites {email} into {org2.key}: {made.status}; mail: {'yes' if token else 'none'}"
        + ("" if not token else f"; the invitee accepts and is {joined} in {org2.key}")
    )
    if joined is not None:
        detail = f"{owner.name} invited into {org2.key} ({made.status}), and the invitee joined it as {joined}"
        flow.judged.find(FindingKind.CROSS_ORG_WRITE, str(config.create), owner.name, detail, made)


def _member_invites(flow: _Flow, org1: Org) -> None:
    """A read-only member invites: refused, and no mail."""
    read_only = flow.target.config.roles.read_only
    member = next((p for p in org1.principals if p.role is not None and p.role in read_only), None)
    if member is None:
        flow.judged.add(f"{org1.key} has no read-only member: an invite by one is not tried")
        return
    email = flow.address("bymember")
    with member.caller(flow.target.base_url, flow.transport) as caller:
        made = flow.invite(caller, member, org1, email)
    if flow.unclear(made, member.name, f"a {member.role}'s invite"):
        return
    token = flow.mail_for(email, seconds=flow.quiet_seconds)
    flow.judged.add(f"{member.name} ({member.role}) invites: {made.status}; mail: {'yes' if token else 'none'}")
    if made.ok or token:
        detail = f"a {member.role} invited: {made.status}, mail {'sent' if token else 'none'}"
        flow.judged.find(FindingKind.NOT_REFUSED, str(flow.config.create), member.name, detail, made)


def _above_inviter(flow: _Flow, org1: Org, admin: str | None) -> None:
    """org1's `[invites] inviter` invites the flow's role (it must be let in: else a refusal below proves nothing),
    then `admin`, a role above its own: refused, no mail, and the invitee no admin (OWASP API5)."""
    config = flow.config
    if config.inviter is None or admin is None:
        flow.judged.add("[invites] names no inviter below the admin: a role above the inviter's own is not tried")
        return
    inviter = org1.principal(config.inviter)
    if inviter is None:
        detail = f"{org1.key} has no {config.inviter} ([invites] inviter): a role above an inviter's is not tried"
        flow.judged.not_exercised(str(config.create), "harness", detail)
        return
    with inviter.caller(flow.target.base_url, flow.transport) as caller:
        within = flow.invite(caller, inviter, org1, within_email := flow.address("byinviter"))
        token = flow.mail_for(within_email, seconds=config.mail_seconds) if within.ok else None
        if not token:
            said = "no mail" if token is None else "a mail without a token"
            detail = f"a {config.inviter} inviting a {flow.role}: {within.line()}, {said}; the step proves nothing"
            flow.judged.not_exercised(str(config.create), inviter.name, detail, within)
            return
        email = flow.address("byinviter-admin")
        made = flow.invite(caller, inviter, org1, email, role=admin)
    if flow.unclear(made, inviter.name, f"a {config.inviter} invites an {admin}"):
        return
    token, joined = flow.taken_up(email, org1, "escalated invitee")
    flow.judged.add(
        f"{inviter.name} ({config.inviter}) invites a {flow.role}: {within.status}, then an {admin}: {made.status}; "
        f"mail: {'yes' if token else 'none'}" + ("" if not token else f"; the invitee accepts and is {joined}")
    )
    if joined is not None and admin in joined:
        detail = f"a {config.inviter} invited an {admin} ({made.status}), and the invitee joined as {joined}"
        flow.judged.find(FindingKind.PRIVILEGE_ESCALATION, str(config.create), inviter.name, detail, made)
    elif made.ok or token:
        mail = "sent" if token else "none"
        detail = f"a {config.inviter} invited an {admin}, a role above its own: {made.status}, mail {mail}"
        flow.judged.find(FindingKind.NOT_REFUSED, str(config.create), inviter.name, detail, made)
