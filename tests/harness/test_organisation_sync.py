"""I2 proven in-process on a small Slack-like workspace app unlike the reference app: integer workspace and member
ids, a who-am-I of its own (`GET /v1/self`, `{"member": {"num"}, "workspace": {"num", "title"}, "grants"}`), its
own role names (`owner`, `regular`), Clerk's webhooks at `/hooks/clerk`, and the ways such an app gets Clerk's
organisation sync wrong."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from svix.webhooks import Webhook, WebhookVerificationError

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.sync import Storm, organisation_sync
from harness.clerk.issuer import Issuer
from harness.clerk.webhooks import new_secret
from harness.config.model import load_config
from tests.harness.clerk_fake import FakeClerkTarget

FLAWS = (
    "no_dedupe_plain_insert",
    "drops_early_memberships",
    "stale_wins",
    "unsigned_accepted",
    "refuses_duplicates",
    "crashes_on_replay",
    "crashes_for_outsiders",
)
GRANTS = {"org:admin": "owner", "org:member": "regular"}  # Clerk's organisation role -> the app's
SMALL = Storm(organisations=12, deliveries=160, bursts=3, copies=6, senders=4)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    """An issuer of this module's own (the plugin's would start the reference app)."""
    return Issuer(
        issuer_url="https://iam-harness-12.clerk.accounts.dev", authorized_party="http://app.test", rng=random.Random(5)
    )


@dataclass
class Workspace:
    """A workspace row: the app's number, the Clerk organisation it mirrors, and Clerk's last word applied."""

    num: int
    clerk_org: str
    title: str
    clerk_stamp: int | None  # Clerk's `updated_at` (ms) last applied; None: made by a first login
    archived: bool = False  # the tombstone of a deleted Clerk organisation


@dataclass
class Member:
    """A member row: one person (by Clerk `sub`) in one workspace, with the app's role."""

    num: int
    workspace: int
    sub: str
    grant: str | None
    clerk_stamp: int | None
    clerk_membership: str | None = None


@dataclass
class Workspaces:
    """Workspaces mirrored from Clerk organisations by its webhooks, and their members; svix ids seen."""

    issuer: Issuer
    secret: str
    flaws: frozenset[str] = frozenset()
    workspaces: list[Workspace] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # svix ids applied
    gone: set[str] = field(default_factory=set)  # Clerk membership ids deleted at Clerk
    lock: threading.RLock = field(default_factory=threading.RLock)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(3))
    hooks: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/v1/self":
            return self._self(request)
        if request.method == "POST" and request.url.path == "/hooks/clerk":
            return self._hook(request)
        return httpx.Response(404, json={"ok": False, "error": "no_route"})

    # --- who-am-I -------------------------------------------------------------------------------------------

    def _claims(self, request: httpx.Request) -> dict[str, Any] | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims: dict[str, Any] = jwt.decode(token, self.issuer.keys[-1][1].public_key(), algorithms=["RS256"])
        except jwt.PyJWTError:
            return None
        return claims

    def _self(self, request: httpx.Request) -> httpx.Response:
        claims = self._claims(request)
        if claims is None:
            return httpx.Response(401, json={"ok": False, "error": "not_authed"})
        sub, active = str(claims["sub"]), claims.get("o") or {}
        clerk_org = str(active.get("id") or "")
        if not clerk_org:
            return httpx.Response(403, json={"ok": False, "error": "no_workspace_selected"})
        with self.lock:
            workspace = self._workspace(clerk_org)
            if workspace is None:  # a first login ahead of every webhook: the workspace, its user its owner
                workspace = self._insert(clerk_org, str(active.get("slg") or clerk_org), None)
                self.members.append(Member(next(self.numbers), workspace.num, sub, "owner", None))
            member = None if workspace.archived else self._member(workspace.num, sub)
            if member is None and "crashes_for_outsiders" in self.flaws:
                return httpx.Response(500, json={"ok": False, "error": "internal"})
            if member is None:
                return httpx.Response(403, json={"ok": False, "error": "not_in_workspace"})
            return httpx.Response(
                200,
                json={
                    "member": {"num": member.num},
                    "workspace": {"num": workspace.num, "title": workspace.title},
                    "grants": [member.grant] if member.grant else [],
                },
            )

    # --- Clerk's webhooks -----------------------------------------------------------------------------------

    def _hook(self, request: httpx.Request) -> httpx.Response:
        if "unsigned_accepted" not in self.flaws:
            try:
                Webhook(self.secret).verify(request.content, dict(request.headers))
            except WebhookVerificationError:
                return httpx.Response(400, json={"ok": False, "error": "bad_signature"})
        try:
            envelope = json.loads(request.content)
            kind, data = str(envelope["type"]), envelope["data"]
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise ValueError("no data")
        except (ValueError, KeyError, TypeError):
            return httpx.Response(400, json={"ok": False, "error": "malformed"})
        svix_id = request.headers.get("svix-id", "")
        with self.lock:
            self.hooks += 1
            if svix_id in self.seen:
                if "refuses_duplicates" in self.flaws:
                    return httpx.Response(409, json={"ok": False, "error": "already_seen"})
                if "crashes_on_replay" in self.flaws:
                    return httpx.Response(500, json={"ok": False, "error": "duplicate key value"})
                return httpx.Response(200, json={"ok": True, "did": "nothing, seen"})
            if "no_dedupe_plain_insert" not in self.flaws:
                self.seen.add(svix_id)
            return httpx.Response(200, json={"ok": True, "did": self._apply(kind, data)})

    def _apply(self, kind: str, data: dict[str, Any]) -> str:
        if kind in ("organization.created", "organization.updated"):
            self._upsert(data, creating=kind == "organization.created")
            return "workspace"
        if kind == "organization.deleted":
            return self._archive(str(data["id"]))
        if kind in ("organizationMembership.created", "organizationMembership.updated"):
            return self._join(data)
        if kind == "organizationMembership.deleted":
            self.gone.add(str(data["id"]))
            self.members = [m for m in self.members if m.clerk_membership != data["id"]]
            return "left"
        return "acknowledged"  # user.created, user.updated and the rest: the profile stays at Clerk

    def _workspace(self, clerk_org: str) -> Workspace | None:
        """The workspace of a Clerk organisation: the first row holding its id."""
        return next((w for w in self.workspaces if w.clerk_org == clerk_org), None)

    def _member(self, workspace: int, sub: str) -> Member | None:
        return next((m for m in self.members if (m.workspace, m.sub) == (workspace, sub)), None)

    def _insert(self, clerk_org: str, title: str, stamp: int | None, *, archived: bool = False) -> Workspace:
        workspace = Workspace(next(self.numbers), clerk_org, title, stamp, archived)
        self.workspaces.append(workspace)
        return workspace

    def _upsert(self, organization: dict[str, Any], *, creating: bool = False) -> Workspace:
        """A Clerk organisation's workspace, made or brought up to Clerk's newer word (never out of its archive)."""
        clerk_org, title, stamp = str(organization["id"]), str(organization["name"]), organization.get("updated_at")
        if creating and "no_dedupe_plain_insert" in self.flaws:
            return self._insert(clerk_org, title, stamp)  # a row per delivery
        rows = [w for w in self.workspaces if w.clerk_org == clerk_org]
        if not rows:
            return self._insert(clerk_org, title, stamp)
        for row in rows:
            if "stale_wins" in self.flaws:
                row.title, row.clerk_stamp, row.archived = title, stamp, False
            elif not row.archived and _newer(stamp, row.clerk_stamp):
                row.title, row.clerk_stamp = title, stamp
        return rows[0]

    def _archive(self, clerk_org: str) -> str:
        rows = [w for w in self.workspaces if w.clerk_org == clerk_org] or [
            self._insert(clerk_org, clerk_org, None, archived=True)  # deleted before it was ever heard of
        ]
        for row in rows:
            row.archived = True
        numbers = {row.num for row in rows}
        self.members = [m for m in self.members if m.workspace not in numbers]
        return "archived"

    def _join(self, data: dict[str, Any]) -> str:
        membership, organization = str(data["id"]), data["organization"]
        if membership in self.gone:
            return "stale"
        if "drops_early_memberships" in self.flaws and self._workspace(str(organization["id"])) is None:
            return "dropped"
        workspace = self._upsert(organization)
        if workspace.archived:
            return "stale"
        sub, stamp, grant = str(data["public_user_data"]["user_id"]), data.get("updated_at"), GRANTS.get(data["role"])
        member = self._member(workspace.num, sub)
        if member is None:
            self.members.append(Member(next(self.numbers), workspace.num, sub, grant, stamp, membership))
        elif "stale_wins" in self.flaws or _newer(stamp, member.clerk_stamp):
            member.grant, member.clerk_stamp, member.clerk_membership = grant, stamp, membership
        else:
            return "stale"
        return "member"

    def footprint(self, values: Collection[str]) -> Mapping[str, int]:
        """Rows holding one of `values`, by table, as the database reader counts them."""
        wanted = set(values)
        with self.lock:
            rows = {
                "workspaces": sum(1 for w in self.workspaces if {str(w.num), w.clerk_org} & wanted),
                "members": sum(
                    1 for m in self.members if {str(m.num), str(m.workspace), m.sub, m.clerk_membership} & wanted
                ),
            }
        return {table: count for table, count in rows.items() if count}


def _newer(stamp: Any, held: int | None) -> bool:
    """Whether Clerk's `stamp` is newer than the one a row holds (a row no webhook wrote is older than any)."""
    return held is None or (isinstance(stamp, int) and stamp > held)


CONFIG = """
[target]
schema = "/v1/openapi.json"
health = "/v1/ping"

[identity]
me = "/v1/self"
user_id = "member.num"
org_id = "workspace.num"
org_name = "workspace.title"
roles = "grants"
personal_org_name = "My workspace"

[roles]
admin = "owner"
other = ["regular"]

[members]
add = "POST /v1/workspace/invites"
body = { clerk_user = "{sub}", grant = "{role}" }

[webhooks]
clerk = "/hooks/clerk"
roles = { "org:admin" = "owner", "org:member" = "regular" }
secret_env = "WORKSPACES_CLERK_SIGNING_SECRET"

[[canaries]]
key = "messages"
param = "message_num"
create = "POST /v1/messages"
body = { text = "{marker}" }
id = "num"
read = "GET /v1/messages/{id}"
"""


def _target(tmp_path: Path, issuer: Issuer, secret: str | None, config: str = CONFIG) -> FakeClerkTarget:
    path = tmp_path / "workspaces.toml"
    path.write_text(config, encoding="utf-8")
    return FakeClerkTarget(issuer, load_config(path), base_url="http://workspaces.test", webhook_secret=secret)


def _judge(
    tmp_path: Path, issuer: Issuer, flaws: frozenset[str] = frozenset(), *, database: bool = True
) -> tuple[Judged, Workspaces]:
    secret = new_secret()
    app = Workspaces(issuer, secret, flaws)
    judged = organisation_sync(
        _target(tmp_path, issuer, secret),
        issuer,
        random.Random(7),
        httpx.MockTransport(app.handle),
        app.footprint if database else None,
        storm=SMALL,
    )
    return judged, app


def test_a_sound_sync_is_clean_and_says_what_it_sent(tmp_path: Path, issuer: Issuer) -> None:
    started = time.monotonic()
    judged, app = _judge(tmp_path, issuer)
    assert time.monotonic() - started < 3
    assert judged.ok, judged.findings
    assert judged.checks == ("I2",) and judged.inapplicable is None
    clerk_orgs = [w.clerk_org for w in app.workspaces]
    assert len(clerk_orgs) == len(set(clerk_orgs)) == 1 + 12 + 2  # the baseline's, the story's, raced, early
    text = "\n".join(judged.evidence)
    assert (
        "[200, 200, 200]; its creator signs in: 200, roles ['owner']; rows holding its Clerk id: workspaces 1" in text
    )
    assert "178 deliveries: 136 events of 12 organisations and 36 memberships, 24 sent again with their svix id" in text
    assert "3 replayed 6 times at once" in text and "answers: 181 x 200" in text
    assert "'signed with another secret': [400, 400], 'signed 10 minutes ago': [400, 400]" in text
    assert "the stranger they name signs in: 403" in text
    assert judged.evidence[-1] == (
        "end state: 13 live organisations of 14; 33 members signed in, named 13 organisations of the target, one "
        "per Clerk organisation; 6 kept out (removed, or of a deleted organisation); by rows, 14 of 14 organisations "
        "as one delivered once (workspaces 1): as Clerk has it"
    )


@pytest.mark.parametrize(
    ("flaw", "kinds"),
    [
        ("drops_early_memberships", {FindingKind.SYNC_DIVERGED}),
        ("stale_wins", {FindingKind.SYNC_DIVERGED}),
        # the forged rename is taken too, so the end state names the organisation as Clerk never did
        ("unsigned_accepted", {FindingKind.FORGED_WEBHOOK_ACCEPTED, FindingKind.SYNC_DIVERGED}),
        ("refuses_duplicates", {FindingKind.SYNC_DIVERGED}),
        ("crashes_on_replay", {FindingKind.SERVER_ERROR}),
        # a removed member answered with a 500 is not kept out: a server error, never a pass
        ("crashes_for_outsiders", {FindingKind.SERVER_ERROR}),
    ],
)
def test_each_way_of_getting_the_sync_wrong_is_found(
    tmp_path: Path, issuer: Issuer, flaw: str, kinds: set[FindingKind]
) -> None:
    judged, _ = _judge(tmp_path, issuer, frozenset({flaw}))
    assert {f.kind for f in judged.findings} == kinds, judged.findings
    assert all(f.checks == ("I2",) for f in judged.findings)


def test_a_plain_insert_per_delivery_shows_as_a_second_row(tmp_path: Path, issuer: Issuer) -> None:
    judged, app = _judge(tmp_path, issuer, frozenset({"no_dedupe_plain_insert"}))
    assert FindingKind.SYNC_DUPLICATE in {f.kind for f in judged.findings}, judged.findings
    duplicate = next(f for f in judged.findings if f.kind is FindingKind.SYNC_DUPLICATE)
    assert duplicate.operation == "rows of the database"
    assert "hold more rows than one delivered once (workspaces 1)" in duplicate.detail
    assert len(app.workspaces) > len({w.clerk_org for w in app.workspaces})


def test_a_plain_insert_hidden_behind_the_first_row_needs_the_database(tmp_path: Path, issuer: Issuer) -> None:
    """Without the database the plain insert is not seen: every look-up takes a Clerk organisation's first row, which
    the later updates and memberships keep as Clerk has it, so through the API alone the app answers as a sound one
    does; the extra rows are there all the same."""
    judged, app = _judge(tmp_path, issuer, frozenset({"no_dedupe_plain_insert"}), database=False)
    assert judged.ok, judged.findings
    assert not any("rows" in line for line in judged.evidence)
    assert len(app.workspaces) > len({w.clerk_org for w in app.workspaces})


def test_without_the_database_a_sound_sync_is_still_clean(tmp_path: Path, issuer: Issuer) -> None:
    judged, _ = _judge(tmp_path, issuer, database=False)
    assert judged.ok, judged.findings
    assert not any("rows" in line for line in judged.evidence)
    assert judged.evidence[-1].endswith("6 kept out (removed, or of a deleted organisation): as Clerk has it")


def test_forged_and_stale_signatures_are_named(tmp_path: Path, issuer: Issuer) -> None:
    judged, _ = _judge(tmp_path, issuer, frozenset({"unsigned_accepted"}))
    details = [f.detail for f in judged.findings if f.kind is FindingKind.FORGED_WEBHOOK_ACCEPTED]
    assert any("signed with another secret were not refused" in d for d in details), details
    assert any("signed 10 minutes ago were not refused" in d for d in details), details
    assert any("came only in forged deliveries signed in" in d for d in details), details


def test_a_replay_refused_is_named_as_a_delivery_not_taken(tmp_path: Path, issuer: Issuer) -> None:
    judged, _ = _judge(tmp_path, issuer, frozenset({"refuses_duplicates"}))
    assert len(judged.findings) == 1, judged.findings
    assert "valid deliveries were not taken (Clerk retries them)" in judged.findings[0].detail
    assert "-> 409" in judged.findings[0].detail


def test_without_a_signing_secret_it_is_never_a_pass(tmp_path: Path, issuer: Issuer) -> None:
    app = Workspaces(issuer, new_secret())
    target = _target(tmp_path, issuer, None)
    judged = organisation_sync(
        target, issuer, random.Random(7), httpx.MockTransport(app.handle), app.footprint, storm=SMALL
    )
    assert [f.kind for f in judged.findings] == [FindingKind.NOT_EXERCISED]
    assert "$WORKSPACES_CLERK_SIGNING_SECRET holds no signing secret" in judged.findings[0].detail
    assert app.hooks == 0 and not app.workspaces


def test_without_webhooks_it_decides_nothing(tmp_path: Path, issuer: Issuer) -> None:
    """A target whose principals are declared (API keys), with no webhooks: there is nothing to sync."""
    start, end = CONFIG.index("[identity]"), CONFIG.index("[[canaries]]")
    declared = (
        '[roles]\nadmin = "owner"\n\n[[principals]]\nname = "a"\norg = "x"\nrole = "owner"\nheaders = { K = "1" }\n\n'
    )
    secret = new_secret()
    app = Workspaces(issuer, secret)
    target = _target(tmp_path, issuer, secret, CONFIG[:start] + declared + CONFIG[end:])
    judged = organisation_sync(
        target, issuer, random.Random(7), httpx.MockTransport(app.handle), app.footprint, storm=SMALL
    )
    assert judged.ok and judged.inapplicable is not None and "[webhooks]" in judged.inapplicable
    assert app.hooks == 0 and not app.workspaces
