"""O5 proven in-process on a small project tracker unlike the reference app: integer team and person ids, a who-am-I
of its own (`GET /v2/whoami`, `{"person": {"n"}, "team": {"n", "label"}, "perms"}`), its own role names (`lead`,
`coordinator`, `contributor`, `observer`), the team in the invite's path (`POST /v2/teams/{team}/invitations` with
`{"address", "as"}`), redeeming by `{"code"}`, 160-bit hex codes mailed over SMTP as a `join/<hex>` link, an
expiry hook of its own (`X-Tracker-Invite-Lifetime-Ms`), and the ways such an app gets invites wrong."""

from __future__ import annotations

import itertools
import json
import random
import re
import secrets
import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from harness.checks.findings import FindingKind
from harness.checks.invites import CONCURRENT_ACCEPTS, invite_flow
from harness.checks.judged import Judged
from harness.clerk.issuer import ActiveOrg, Issuer
from harness.config.model import load_config
from harness.engine.world import ClerkCredentials, Org, Principal, World
from harness.errors import ConfigError
from harness.target.mailbox import Mailbox, serving
from tests.harness.clerk_fake import FakeClerkTarget

FLAWS = (
    "reusable",
    "any_address",
    "never_expires",
    "revoke_ignored",
    "any_team",
    "observers_invite",
    "short_codes",
    "no_mail",
    "crashes_on_reuse",
    "coordinators_invite_leads",
    "coordinators_invite_nobody",
)
LEAD, COORDINATOR, CONTRIBUTOR, OBSERVER = "lead", "coordinator", "contributor", "observer"
LIFETIME = "X-Tracker-Invite-Lifetime-Ms"
WEEK = 7 * 24 * 3600.0
_INVITE = re.compile(r"/v2/teams/(\d+)/invitations")
_REVOKE = re.compile(r"/v2/invitations/(\d+)")


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    """An issuer of this module's own (the plugin's would start the reference app)."""
    return Issuer(
        issuer_url="https://iam-harness-12.clerk.accounts.dev", authorized_party="http://app.test", rng=random.Random(5)
    )


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A fresh SMTP server and mail directory for each test: the check's addresses repeat with its seed."""
    with serving() as box:
        yield box


@dataclass
class Invitation:
    """An invitation row: its number, the team, the address and role it is for, its code and its state."""

    n: int
    team: int
    address: str
    grant: str
    code: str
    expires: float  # time.monotonic() past which it accepts nothing
    used_by: str | None = None
    revoked: bool = False


@dataclass
class Tracker:
    """Teams keyed by Clerk organisation id (the tracker's own ids are integers), who holds which role in which
    team, and invitations by code; each invitation mailed for real to the run's SMTP server."""

    issuer: Issuer
    mailbox: Mailbox | None
    flaws: frozenset[str] = frozenset()
    teams: dict[str, int] = field(default_factory=dict)  # Clerk org id -> team number
    labels: dict[int, str] = field(default_factory=dict)  # team number -> label
    people: dict[str, int] = field(default_factory=dict)  # Clerk sub -> person number
    grants: dict[tuple[int, str], str] = field(default_factory=dict)  # (team, sub) -> role
    invitations: dict[str, Invitation] = field(default_factory=dict)  # code -> invitation
    lock: threading.RLock = field(default_factory=threading.RLock)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    calls: int = 0
    mailed: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls += 1
        claims = self._claims(request)
        if claims is None:
            return httpx.Response(401, json={"problem": "unauthenticated"})
        path, sub = request.url.path, str(claims["sub"])
        if request.method == "GET" and path == "/v2/whoami":
            return self._whoami(claims)
        if request.method == "POST" and (invite := _INVITE.fullmatch(path)):
            return self._invite(request, claims, int(invite.group(1)))
        if request.method == "POST" and path == "/v2/invitations/redeem":
            return self._redeem(request, claims)
        if request.method == "DELETE" and (revoke := _REVOKE.fullmatch(path)):
            return self._revoke(sub, int(revoke.group(1)))
        return httpx.Response(404, json={"problem": "no such route"})

    def _claims(self, request: httpx.Request) -> dict[str, Any] | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims: dict[str, Any] = jwt.decode(token, self.issuer.keys[-1][1].public_key(), algorithms=["RS256"])
        except jwt.PyJWTError:
            return None
        return claims

    def _person(self, sub: str) -> int:
        with self.lock:
            return self.people.setdefault(sub, next(self.numbers))

    def _active(self, claims: dict[str, Any]) -> int | None:
        """The team the session has active (its Clerk organisation), if the tracker knows it."""
        active = claims.get("o")
        return self.teams.get(str(active.get("id") or "")) if isinstance(active, dict) else None

    # --- who-am-I -----------------------------------------------------------------------------------------

    def _whoami(self, claims: dict[str, Any]) -> httpx.Response:
        sub = str(claims["sub"])
        with self.lock:
            team = self._active(claims)
            role = None if team is None else self.grants.get((team, sub))
            if team is None or role is None:
                return httpx.Response(403, json={"problem": "not on this team"})
            return httpx.Response(
                200,
                json={
                    "person": {"n": self._person(sub)},
                    "team": {"n": team, "label": self.labels[team]},
                    "perms": [role],
                },
            )

    # --- invitations --------------------------------------------------------------------------------------

    def _invite(self, request: httpx.Request, claims: dict[str, Any], team: int) -> httpx.Response:
        try:
            body = json.loads(request.content)
            address, grant = str(body["address"]).strip().lower(), str(body["as"])
        except (ValueError, KeyError, TypeError):
            return httpx.Response(422, json={"problem": "address and as, please"})
        if "@" not in address or grant not in (LEAD, COORDINATOR, CONTRIBUTOR, OBSERVER):
            return httpx.Response(422, json={"problem": "bad address or role"})
        sub = str(claims["sub"])
        lifetime = request.headers.get(LIFETIME)
        with self.lock:
            if team not in self.labels:
                return httpx.Response(404, json={"problem": "no such team"})
            # the flaw: the permission is judged in the session's active team, the invite made in the path's
            judged_in = self._active(claims) if "any_team" in self.flaws else team
            role = None if judged_in is None else self.grants.get((judged_in, sub))
            if role is None:
                return httpx.Response(404, json={"problem": "no such team"})
            if role == COORDINATOR and "coordinators_invite_nobody" in self.flaws:
                return httpx.Response(403, json={"problem": "only a lead invites"})
            if role == COORDINATOR and grant in (LEAD, COORDINATOR) and "coordinators_invite_leads" not in self.flaws:
                return httpx.Response(403, json={"problem": "a coordinator invites contributors and observers"})
            if role not in (LEAD, COORDINATOR) and "observers_invite" not in self.flaws:
                return httpx.Response(403, json={"problem": "only a lead or a coordinator invites"})
            code = secrets.token_hex(4 if "short_codes" in self.flaws else 20)
            seconds = int(lifetime) / 1000 if lifetime and lifetime.isdigit() else WEEK
            invitation = Invitation(next(self.numbers), team, address, grant, code, time.monotonic() + seconds)
            self.invitations[code] = invitation
            label = self.labels[team]
        if "no_mail" not in self.flaws and self.mailbox is not None:
            self._mail(self.mailbox, invitation, label)
        return httpx.Response(
            201, json={"invitation": {"n": invitation.n, "address": address, "as": grant, "team": team}}
        )

    def _mail(self, mailbox: Mailbox, invitation: Invitation, label: str) -> None:
        message = EmailMessage()
        message["From"] = "tracker@tracker.example"
        message["To"] = invitation.address
        message["Subject"] = f"Join {label} on the tracker"
        message.set_content(
            f"You are asked to join {label} as {invitation.grant}.\n"
            f"Join here: https://tracker.example/join/{invitation.code}\n"
        )
        with smtplib.SMTP(mailbox.host, mailbox.port, timeout=5) as smtp:
            smtp.send_message(message)
        with self.lock:
            self.mailed += 1

    def _redeem(self, request: httpx.Request, claims: dict[str, Any]) -> httpx.Response:
        try:
            code = str(json.loads(request.content)["code"])
        except (ValueError, KeyError, TypeError):
            return httpx.Response(422, json={"problem": "code, please"})
        sub, email = str(claims["sub"]), claims.get("email")
        with self.lock:  # looked up, judged and consumed in one step: of racing redeems one wins
            invitation = self.invitations.get(code)
            if invitation is None:
                return httpx.Response(404, json={"problem": "no such invitation"})
            mine = isinstance(email, str) and email.strip().lower() == invitation.address
            if not mine and "any_address" not in self.flaws:
                return httpx.Response(403, json={"problem": "this invitation is for someone else"})
            if invitation.revoked and "revoke_ignored" not in self.flaws:
                return httpx.Response(410, json={"problem": "revoked"})
            if invitation.used_by is not None and "crashes_on_reuse" in self.flaws:
                return httpx.Response(500, json={"problem": "internal"})
            if invitation.used_by is not None and "reusable" not in self.flaws:
                return httpx.Response(409, json={"problem": "already redeemed"})
            if time.monotonic() >= invitation.expires and "never_expires" not in self.flaws:
                return httpx.Response(410, json={"problem": "expired"})
            if (invitation.team, sub) in self.grants:
                return httpx.Response(409, json={"problem": "already on this team"})
            invitation.used_by = sub
            self.grants[(invitation.team, sub)] = invitation.grant
            team = invitation.team
            return httpx.Response(
                200,
                json={
                    "person": {"n": self._person(sub)},
                    "team": {"n": team, "label": self.labels[team]},
                    "as": invitation.grant,
                },
            )

    def _revoke(self, sub: str, number: int) -> httpx.Response:
        with self.lock:
            invitation = next((i for i in self.invitations.values() if i.n == number), None)
            role = None if invitation is None else self.grants.get((invitation.team, sub))
            if invitation is None or role is None:
                return httpx.Response(404, json={"problem": "no such invitation"})
            if role != LEAD:
                return httpx.Response(403, json={"problem": "only a lead revokes"})
            if invitation.used_by is not None:
                return httpx.Response(409, json={"problem": "already redeemed"})
            invitation.revoked = True
            return httpx.Response(204)

    def members(self, team: int) -> list[str]:
        """The subs holding a role in `team`."""
        with self.lock:
            return [sub for (where, sub) in self.grants if where == team]


CONFIG = """
[target]
schema = "/v2/openapi.json"
health = "/v2/ping"

[identity]
me = "/v2/whoami"
user_id = "person.n"
org_id = "team.n"
org_name = "team.label"
roles = "perms"
personal_org_name = "My board"

[roles]
admin = "lead"
other = ["contributor", "coordinator"]
read_only = ["observer"]

[members]
add = "POST /v2/teams/current/people"
body = { clerk_user = "{sub}", as = "{role}" }

[invites]
create = "POST /v2/teams/{org}/invitations"
body = { address = "{email}", as = "{role}" }
id = "invitation.n"
revoke = "DELETE /v2/invitations/{id}"
accept = "POST /v2/invitations/redeem"
accept_body = { code = "{token}" }
token = "join/([0-9a-f]+)"
inviter = "coordinator"
expiring = { X-Tracker-Invite-Lifetime-Ms = "200" }
expiring_seconds = 0.2
mail_seconds = 1

[[canaries]]
key = "tickets"
param = "ticket_n"
create = "POST /v2/tickets"
body = { summary = "{marker}" }
id = "n"
read = "GET /v2/tickets/{id}"
"""


def _world(issuer: Issuer, tracker: Tracker) -> World:
    """Two teams, each with its lead; team 1 also has an observer (read-only) and a coordinator (invites people)."""
    world = World(orgs={})
    for n in (1, 2):
        clerk_org = f"org_2tracker{n}".ljust(31, "0")
        tracker.teams[clerk_org], tracker.labels[n] = n, f"Team {n}"
        lead = ClerkCredentials(issuer, f"user_2lead{n}".ljust(32, "0"), ActiveOrg(clerk_org, f"team-{n}", "admin"))
        tracker.grants[(n, lead.sub)] = LEAD
        principals = [Principal(f"team{n} lead", f"team{n}", LEAD, lead)]
        if n == 1:
            observer = ClerkCredentials(
                issuer, "user_2observe1".ljust(32, "0"), ActiveOrg(clerk_org, "team-1", "member")
            )
            tracker.grants[(n, observer.sub)] = OBSERVER
            principals.append(Principal("team1 observer", "team1", OBSERVER, observer))
            coordinator = ClerkCredentials(
                issuer, "user_2coordinate1".ljust(32, "0"), ActiveOrg(clerk_org, "team-1", "member")
            )
            tracker.grants[(n, coordinator.sub)] = COORDINATOR
            principals.append(Principal("team1 coordinator", "team1", COORDINATOR, coordinator))
        world.orgs[f"team{n}"] = Org(key=f"team{n}", principals=principals, id=str(n))
    return world


def _target(tmp_path: Path, issuer: Issuer, mailbox: Mailbox | None, config: str = CONFIG) -> FakeClerkTarget:
    path = tmp_path / "tracker.toml"
    path.write_text(config, encoding="utf-8")
    target = FakeClerkTarget(issuer, load_config(path), base_url="http://tracker.test")
    target.mailbox = mailbox
    return target


def _judge(
    tmp_path: Path,
    issuer: Issuer,
    mailbox: Mailbox | None,
    flaws: frozenset[str] = frozenset(),
    *,
    config: str = CONFIG,
) -> tuple[Judged, Tracker]:
    tracker = Tracker(issuer, mailbox, flaws)
    world = _world(issuer, tracker)
    target = _target(tmp_path, issuer, mailbox, config)
    judged = invite_flow(
        target, world, issuer, random.Random(7), {}, httpx.MockTransport(tracker.handle), quiet_seconds=0.2
    )
    return judged, tracker


def _line(judged: Judged, part: str) -> str:
    found = [line for line in judged.evidence if part in line]
    assert len(found) == 1, judged.evidence
    return found[0]


def test_a_sound_invite_flow_is_clean_and_says_each_step(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    judged, tracker = _judge(tmp_path, issuer, mailbox)
    assert judged.ok, judged.findings
    assert judged.checks == ("O5",) and judged.inapplicable is None
    first = _line(judged, "invites invited-")
    assert first.startswith("team1 lead invites invited-") and " as contributor: 201; " in first
    assert "a token of 40 characters (up to 160 bits); another address accepts it: 403; the invited one: 200" in first
    assert first.endswith("who-am-I in team1: 200, roles ['contributor']")
    assert "a second use of it: 409" in judged.evidence
    raced = _line(judged, "accept one invite at once")
    assert raced.startswith(f"{CONCURRENT_ACCEPTS} users of raced-")
    assert raced.endswith(f": {[200] + [409] * (CONCURRENT_ACCEPTS - 1)}; members after: 1")
    assert "an invite made to expire in 0.2 s, accepted after: 410" in judged.evidence
    assert "an invite revoked (204), accepted after: 410" in judged.evidence
    assert _line(judged, "into team2").endswith("into team2: 404; mail: none")
    assert "team1 observer (observer) invites: 403; mail: none" in judged.evidence
    above = "team1 coordinator (coordinator) invites a contributor: 201, then an lead: 403; mail: none"
    assert above in judged.evidence
    # the invited address and one racer joined team 1; nobody joined team 2; five invites were mailed
    assert len(tracker.members(1)) == 3 + 2 and tracker.members(2) == ["user_2lead2".ljust(32, "0")]
    assert tracker.mailed == 5 and len(tracker.invitations) == 5


@pytest.mark.parametrize(
    ("flaw", "kinds"),
    [
        ("reusable", {FindingKind.INVITE_MISUSED}),
        # another address redeems it first and so spends it: the invited address is then refused (409), and with
        # no member made by the invite the rest of the flow cannot run
        ("any_address", {FindingKind.INVITE_MISUSED, FindingKind.NOT_EXERCISED}),
        ("never_expires", {FindingKind.INVITE_MISUSED}),
        ("revoke_ignored", {FindingKind.INVITE_MISUSED}),
        ("any_team", {FindingKind.CROSS_ORG_WRITE}),
        ("observers_invite", {FindingKind.NOT_REFUSED}),
        ("short_codes", {FindingKind.WEAK_INVITE_TOKEN}),
        ("no_mail", {FindingKind.NOT_EXERCISED}),
        # a used invite answered with a 500 is no refusal: a server error of its own, never a pass
        ("crashes_on_reuse", {FindingKind.SERVER_ERROR}),
        ("coordinators_invite_leads", {FindingKind.PRIVILEGE_ESCALATION}),
        # an inviter that may invite nobody says nothing by refusing a lead: never a pass
        ("coordinators_invite_nobody", {FindingKind.NOT_EXERCISED}),
    ],
)
def test_each_way_of_getting_invites_wrong_is_found(
    tmp_path: Path, issuer: Issuer, mailbox: Mailbox, flaw: str, kinds: set[FindingKind]
) -> None:
    judged, _ = _judge(tmp_path, issuer, mailbox, frozenset({flaw}))
    assert {f.kind for f in judged.findings} == kinds, judged.findings
    assert all(f.checks == ("O5",) for f in judged.findings)


def test_a_reusable_invite_is_named_for_the_second_use_and_the_race(
    tmp_path: Path, issuer: Issuer, mailbox: Mailbox
) -> None:
    judged, tracker = _judge(tmp_path, issuer, mailbox, frozenset({"reusable"}))
    details = [f.detail for f in judged.findings]
    assert any(d.startswith("a used invite accepted again") for d in details), details
    assert f"{CONCURRENT_ACCEPTS} accepts of one invite at once: {CONCURRENT_ACCEPTS} answered 2xx" in " ".join(details)
    assert len(tracker.members(1)) == 3 + 2 + CONCURRENT_ACCEPTS


def test_an_invite_into_another_team_is_named_with_who_joined(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    judged, tracker = _judge(tmp_path, issuer, mailbox, frozenset({"any_team"}))
    (finding,) = judged.findings
    assert finding.principal == "team1 lead"
    assert "invited into team2 (201), and the invitee joined it as ['contributor']" in finding.detail
    assert len(tracker.members(2)) == 2


def test_a_short_code_is_named_by_its_bits(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    judged, _ = _judge(tmp_path, issuer, mailbox, frozenset({"short_codes"}))
    (finding,) = judged.findings
    assert "8 characters, at most 32 bits (at least 128)" in finding.detail


def test_an_invite_never_mailed_is_never_a_pass(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    judged, tracker = _judge(tmp_path, issuer, mailbox, frozenset({"no_mail"}))
    (finding,) = judged.findings
    assert finding.kind is FindingKind.NOT_EXERCISED and "no mail arrived for invited-" in finding.detail
    assert len(tracker.invitations) == 1 and tracker.mailed == 0


def test_without_the_runs_mailbox_it_is_never_a_pass(tmp_path: Path, issuer: Issuer) -> None:
    judged, tracker = _judge(tmp_path, issuer, None)
    assert [f.kind for f in judged.findings] == [FindingKind.NOT_EXERCISED]
    assert "does not reach the run's SMTP server" in judged.findings[0].detail
    assert tracker.calls == 0


def test_without_invites_it_decides_nothing(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    start, end = CONFIG.index("[invites]"), CONFIG.index("[[canaries]]")
    judged, tracker = _judge(tmp_path, issuer, mailbox, config=CONFIG[:start] + CONFIG[end:])
    assert judged.ok and judged.inapplicable is not None and "[invites]" in judged.inapplicable
    assert tracker.calls == 0


def test_without_an_expiry_hook_that_step_is_never_a_pass(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    config = CONFIG.replace('expiring = { X-Tracker-Invite-Lifetime-Ms = "200" }\n', "")
    judged, tracker = _judge(tmp_path, issuer, mailbox, config=config)
    assert [f.kind for f in judged.findings] == [FindingKind.NOT_EXERCISED]
    assert "names no [invites] expiring hook" in judged.findings[0].detail
    assert "an invite revoked (204), accepted after: 410" in judged.evidence  # the rest still ran
    assert "team1 observer (observer) invites: 403; mail: none" in judged.evidence
    assert tracker.mailed == 4


def test_an_inviter_who_lets_in_a_lead_is_named_with_the_role_it_gave(
    tmp_path: Path, issuer: Issuer, mailbox: Mailbox
) -> None:
    judged, tracker = _judge(tmp_path, issuer, mailbox, frozenset({"coordinators_invite_leads"}))
    (finding,) = judged.findings
    assert finding.principal == "team1 coordinator" and finding.operation == "POST /v2/teams/{org}/invitations"
    assert finding.detail == "a coordinator invited an lead (201), and the invitee joined as ['lead']"
    assert sorted(tracker.grants.values()).count(LEAD) == 3  # the two teams' leads and the escalated invitee


def test_without_an_inviter_that_step_is_said_not_tried(tmp_path: Path, issuer: Issuer, mailbox: Mailbox) -> None:
    judged, _ = _judge(tmp_path, issuer, mailbox, config=CONFIG.replace('inviter = "coordinator"\n', ""))
    assert judged.ok, judged.findings
    assert "[invites] names no inviter below the admin: a role above the inviter's own is not tried" in judged.evidence


@pytest.mark.parametrize(
    ("inviter", "said"),
    [
        ("lead", "'lead' is the admin role; the inviter holds less"),
        ("boss", "'boss' is no member role [roles] names; it names: observer, contributor, coordinator"),
    ],
)
def test_an_inviter_the_roles_do_not_name_below_the_admin_is_refused(tmp_path: Path, inviter: str, said: str) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text(CONFIG.replace('inviter = "coordinator"', f'inviter = "{inviter}"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[invites\] inviter: ") as raised:
        load_config(path)
    assert said in str(raised.value)
