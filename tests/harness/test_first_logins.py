"""I1 proven in-process on a small sign-up API unlike the reference app: integer account and tenant ids, its own
who-am-I shape, an `owner` role, its own failure hook, and the ways such an API gets provisioning wrong."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.provisioning import first_logins
from harness.clerk.issuer import Issuer
from harness.config.model import load_config
from tests.harness.clerk_fake import FakeClerkTarget

FLAWS = (
    "check_then_insert",
    "commits_as_it_goes",
    "losers_refused",
    "hook_ignored",
    "hook_refused",
    "grant_per_request",
)
CHAOS = "X-Chaos"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    """An issuer of this module's own (the plugin's would start the reference app)."""
    return Issuer(
        issuer_url="https://iam-harness-12.clerk.accounts.dev", authorized_party="http://app.test", rng=random.Random(5)
    )


@dataclass
class SignUps:
    """Accounts keyed by Clerk `sub`, each with a tenant it owns; grants of the `owner` role."""

    issuer: Issuer
    flaws: frozenset[str] = frozenset()
    accounts: list[tuple[int, str]] = field(default_factory=list)  # (account number, sub)
    tenants: list[tuple[int, int]] = field(default_factory=list)  # (tenant number, owner account)
    grants: list[tuple[int, int, str]] = field(default_factory=list)  # (account, tenant, role)
    lock: threading.RLock = field(default_factory=threading.RLock)
    footprints: int = 0

    def sub_of(self, request: httpx.Request) -> str | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.issuer.keys[-1][1].public_key(), algorithms=["RS256"])
        except jwt.PyJWTError:
            return None
        return str(claims["sub"])

    def handle(self, request: httpx.Request) -> httpx.Response:
        sub = self.sub_of(request)
        if sub is None or request.url.path != "/v1/whoami":
            return httpx.Response(401 if sub is None else 404)
        chaos = request.headers.get(CHAOS) == "tear" and "hook_ignored" not in self.flaws
        if chaos and "hook_refused" in self.flaws:
            return httpx.Response(400, json={"error": "unknown header"})  # refused before anything was written
        if "check_then_insert" in self.flaws:
            known = self._find(sub)
            time.sleep(0.005)  # the gap between the look-up and the insert
            return self._answer(sub, known if known is not None else self._provision(sub, chaos))
        if "losers_refused" in self.flaws:
            if not self.lock.acquire(blocking=False):
                return httpx.Response(409, json={"error": "try again"})
            try:
                time.sleep(0.005)
                return self._answer(sub, self._find(sub) or self._create(sub, chaos))
            finally:
                self.lock.release()
        with self.lock:
            return self._answer(sub, self._find(sub) or self._create(sub, chaos))

    def _find(self, sub: str) -> int | None:
        return next((number for number, owner in self.accounts if owner == sub), None)

    def _provision(self, sub: str, chaos: bool) -> int | None:
        with self.lock:
            return self._create(sub, chaos)

    def _create(self, sub: str, chaos: bool) -> int | None:
        """One account, its tenant and the owner grant; with `chaos`, torn after the tenant (rolled back unless
        the app commits as it goes)."""
        account, tenant = 100 + len(self.accounts), 500 + len(self.tenants)
        if chaos and "commits_as_it_goes" not in self.flaws:
            return None  # rolled back: nothing was written
        self.accounts.append((account, sub))
        self.tenants.append((tenant, account))
        if chaos:
            return None  # the account and tenant stay; the grant never comes
        self.grants.append((account, tenant, "owner"))
        return account

    def _answer(self, sub: str, account: int | None) -> httpx.Response:
        if account is None:
            return httpx.Response(500, json={"error": "storage went away"})
        tenant = next((number for number, owner in self.tenants if owner == account), None)
        if tenant is None:
            return httpx.Response(500, json={"error": "no tenant"})
        with self.lock:
            if "grant_per_request" in self.flaws:
                self.grants.append((account, tenant, "owner"))
            roles = [role for who, where, role in self.grants if (who, where) == (account, tenant)]
        if not roles:
            return httpx.Response(403, json={"error": "not a member of your own tenant"})
        return httpx.Response(200, json={"account": {"number": account}, "tenant": {"number": tenant}, "grants": roles})

    def footprint(self, values: Collection[str]) -> Mapping[str, int]:
        """Rows holding one of `values`, by table, as the database reader counts them."""
        self.footprints += 1
        rows = {
            "accounts": sum(1 for number, sub in self.accounts if {str(number), sub} & set(values)),
            "tenants": sum(1 for number, owner in self.tenants if {str(number), str(owner)} & set(values)),
            "grants": sum(1 for who, where, _ in self.grants if {str(who), str(where)} & set(values)),
        }
        return {table: count for table, count in rows.items() if count}


CONFIG = """
[target]
schema = "/v1/openapi.json"
health = "/v1/health"

[identity]
me = "/v1/whoami"
user_id = "account.number"
org_id = "tenant.number"
org_name = "tenant.name"
roles = "grants"
personal_org_name = "My tenant"

[roles]
admin = "owner"

[members]
add = "POST /v1/tenants/current/people"
body = { clerk_user = "{sub}", grant = "{role}" }

[provisioning]
racers = 20
fail_midway = { X-Chaos = "tear" }

[[canaries]]
key = "notes"
param = "note_id"
create = "POST /v1/notes"
body = { text = "{marker}" }
id = "id"
read = "GET /v1/notes/{id}"
"""


def _target(tmp_path: Path, issuer: Issuer, config: str = CONFIG) -> FakeClerkTarget:
    path = tmp_path / "signups.toml"
    path.write_text(config, encoding="utf-8")
    return FakeClerkTarget(issuer, load_config(path), base_url="http://signups.test")


def _judge(tmp_path: Path, issuer: Issuer, flaws: frozenset[str] = frozenset(), *, database: bool = True) -> Judged:
    app = SignUps(issuer, flaws)
    footprint = app.footprint if database else None
    return first_logins(_target(tmp_path, issuer), issuer, random.Random(3), httpx.MockTransport(app.handle), footprint)


def test_a_sound_sign_up_is_clean_and_says_what_it_counted(tmp_path: Path, issuer: Issuer) -> None:
    app = SignUps(issuer)
    judged = first_logins(
        _target(tmp_path, issuer), issuer, random.Random(3), httpx.MockTransport(app.handle), app.footprint
    )
    assert judged.ok, judged.findings
    assert judged.checks == ("I1",)
    assert len(app.accounts) == len(app.tenants) == len(app.grants) == 3  # alone, racing, failed then clean
    text = "\n".join(judged.evidence)
    assert "rows: accounts 1, grants 1, tenants 1" in text
    assert "20 racing first requests" in text and "20 x 200; 1 user(s), 1 organisation(s)" in text
    assert "the same as a first login alone" in text
    assert "failed midway on purpose: 500, leaving no row" in text and "nothing was left half-made" in text


@pytest.mark.parametrize(
    ("flaw", "kinds"),
    [
        ("check_then_insert", {FindingKind.PROVISIONING_RACE}),
        ("losers_refused", {FindingKind.PROVISIONING_RACE}),
        ("grant_per_request", {FindingKind.PROVISIONING_RACE}),
        ("commits_as_it_goes", {FindingKind.HALF_PROVISIONED}),
        ("hook_ignored", {FindingKind.NOT_EXERCISED}),
        # a 4xx to the torn login is a refusal before anything was written, not a failure midway
        ("hook_refused", {FindingKind.NOT_EXERCISED}),
    ],
)
def test_each_way_of_getting_provisioning_wrong_is_found(
    tmp_path: Path, issuer: Issuer, flaw: str, kinds: set[FindingKind]
) -> None:
    judged = _judge(tmp_path, issuer, frozenset({flaw}))
    assert {f.kind for f in judged.findings} == kinds, judged.findings
    assert all(f.checks == ("I1",) for f in judged.findings)


def test_duplicates_are_named_by_the_answers_and_by_the_rows(tmp_path: Path, issuer: Issuer) -> None:
    details = [f.detail for f in _judge(tmp_path, issuer, frozenset({"check_then_insert"})).findings]
    assert any("racing first requests named" in d and "users" in d for d in details), details
    assert any(d.startswith("the race left accounts ") for d in details), details


def test_a_half_made_user_shows_through_the_api_alone(tmp_path: Path, issuer: Issuer) -> None:
    """Without the database, the torn login's leftovers still show: the user's next login is refused."""
    judged = _judge(tmp_path, issuer, frozenset({"commits_as_it_goes"}), database=False)
    assert [f.kind for f in judged.findings] == [FindingKind.HALF_PROVISIONED]
    assert "the next one answered 403" in judged.findings[0].detail


def test_the_rows_a_torn_login_left_are_named(tmp_path: Path, issuer: Issuer) -> None:
    judged = _judge(tmp_path, issuer, frozenset({"commits_as_it_goes"}))
    assert any("failed midway (500) left accounts 1" in f.detail for f in judged.findings), judged.findings


def test_without_a_failure_hook_the_failure_half_is_never_a_pass(tmp_path: Path, issuer: Issuer) -> None:
    config = CONFIG.replace('fail_midway = { X-Chaos = "tear" }\n', "")
    app = SignUps(issuer)
    judged = first_logins(
        _target(tmp_path, issuer, config), issuer, random.Random(3), httpx.MockTransport(app.handle), app.footprint
    )
    assert [f.kind for f in judged.findings] == [FindingKind.NOT_EXERCISED]
    assert "names no [provisioning] fail_midway hook" in judged.findings[0].detail
    assert len(app.accounts) == 2  # the race still ran


def test_an_unreadable_database_is_said_once_and_the_api_is_still_judged(tmp_path: Path, issuer: Issuer) -> None:
    app = SignUps(issuer, frozenset({"losers_refused"}))
    calls = []

    def broken(values: Collection[str]) -> Mapping[str, int]:
        calls.append(values)
        raise psycopg.OperationalError("connection refused")

    judged = first_logins(_target(tmp_path, issuer), issuer, random.Random(3), httpx.MockTransport(app.handle), broken)
    kinds = [f.kind for f in judged.findings]
    assert kinds.count(FindingKind.NOT_EXERCISED) == 1 and len(calls) == 1
    assert FindingKind.PROVISIONING_RACE in kinds
    assert "cannot be read: connection refused" in judged.findings[0].detail


def test_without_identity_it_decides_nothing(tmp_path: Path, issuer: Issuer) -> None:
    """A target whose principals are declared (API keys), with no who-am-I: nobody is provisioned on a first login."""
    start, end = CONFIG.index("[identity]"), CONFIG.index("[provisioning]")
    declared = (
        '[roles]\nadmin = "owner"\n\n[[principals]]\nname = "a"\norg = "x"\nrole = "owner"\nheaders = { K = "1" }\n\n'
    )
    app = SignUps(issuer)
    target = _target(tmp_path, issuer, CONFIG[:start] + declared + CONFIG[end:])
    judged = first_logins(target, issuer, random.Random(3), httpx.MockTransport(app.handle), app.footprint)
    assert judged.ok and judged.inapplicable is not None and "[identity]" in judged.inapplicable
    assert not app.accounts


def test_a_database_that_shows_nothing_is_never_compared(tmp_path: Path, issuer: Issuer) -> None:
    """A reader kept out by row-level security sees no row of anyone: the rows are said not to be compared, and
    nothing is claimed of them (the API half still judges)."""
    app = SignUps(issuer, frozenset({"check_then_insert"}))
    judged = first_logins(
        _target(tmp_path, issuer), issuer, random.Random(3), httpx.MockTransport(app.handle), lambda values: {}
    )
    assert "the database shows no row of a first login alone: rows are not compared" in judged.evidence
    assert not any("rows:" in line for line in judged.evidence)
    assert {f.kind for f in judged.findings} == {FindingKind.PROVISIONING_RACE}  # found by the answers alone
