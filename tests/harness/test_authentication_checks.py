"""C1's checks in-process, against a fake Clerk-guarded API: clean on a strict verifier, each finding raised by
the verification bug it exists for."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import jwt
import pytest

from harness.checks.findings import FindingKind
from harness.checks.lifecycle import refusals_provision_nothing
from harness.checks.login_tokens import LoginToken, login_tokens_resist_forgery
from harness.checks.sessions import foreign_org_session_refused, forgeries_refused, valid_shapes_accepted
from harness.clerk.attacks import CATALOGUE, parse_jwt
from harness.clerk.issuer import ActiveOrg, Issuer
from harness.engine.world import Canary, ClerkCredentials, Org, Principal, StaticCredentials, World
from tests.harness.clerk_fake import fake_clerk_target

ISSUER_URL = "https://iam-harness-12.clerk.accounts.dev"
NO_LISTENER: tuple[str, list[str]] = ("http://127.0.0.1:9", [])  # nothing was fetched from where a token points
STRONG = "x" * 48


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(issuer_url=ISSUER_URL, authorized_party="http://clerk-app.test", rng=random.Random(4))


def _victim(issuer: Issuer) -> ClerkCredentials:
    return ClerkCredentials(issuer, "user_2victim000000000000000000", ActiveOrg("org_2victim0000000000000000000", "v"))


def test_strict_verifier_accepts_every_valid_shape_and_refuses_every_forgery(tmp_path: Path, issuer: Issuer) -> None:
    target = fake_clerk_target(tmp_path, issuer)
    valid = valid_shapes_accepted(target, issuer, _victim(issuer), "/api/me", target.transport())
    assert valid.ok, valid.summary()
    forged = forgeries_refused(
        target, issuer, _victim(issuer), "/api/me", ("http://127.0.0.1:9", []), target.transport()
    )
    assert forged.ok, forged.summary()
    assert sum(1 for line in forged.evidence if ": API 401, page 303" in line) == len(CATALOGUE)


def test_each_forgery_is_sent_again_with_another_organisations_sub(tmp_path: Path, issuer: Issuer) -> None:
    other = ClerkCredentials(issuer, "user_2other0000000000000000000", ActiveOrg("org_2other00000000000000000000", "o"))
    strict = fake_clerk_target(tmp_path, issuer)
    forged = forgeries_refused(
        strict, issuer, _victim(issuer), "/api/me", ("http://127.0.0.1:9", []), strict.transport(), other
    )
    assert forged.ok, forged.summary()
    swapped = [line for line in forged.evidence if ", sub swapped: API 401, page 303" in line]
    assert len(swapped) == len(CATALOGUE)
    lax = fake_clerk_target(tmp_path, issuer, frozenset({"alg_none"}))
    forged = forgeries_refused(
        lax, issuer, _victim(issuer), "/api/me", ("http://127.0.0.1:9", []), lax.transport(), other
    )
    accepted = {f.principal for f in forged.findings if f.kind is FindingKind.FORGERY_ACCEPTED}
    assert {"forgery alg_none", "forgery alg_none, sub swapped"} <= accepted
    token = next(line for line in forged.evidence if line.startswith("accepted forgery (alg_none, sub swapped): "))
    parsed = parse_jwt(token.split(": ", 1)[1])
    assert parsed is not None and parsed[1]["sub"] == other.sub  # the forgery named the other principal


def test_an_unsigned_token_accepted_is_a_forgery_finding_with_its_repro(tmp_path: Path, issuer: Issuer) -> None:
    target = fake_clerk_target(tmp_path, issuer, frozenset({"alg_none"}))
    forged = forgeries_refused(
        target, issuer, _victim(issuer), "/api/me", ("http://127.0.0.1:9", []), target.transport()
    )
    accepted = [f for f in forged.findings if f.kind is FindingKind.FORGERY_ACCEPTED]
    assert {f.principal for f in accepted} >= {"forgery alg_none", "forgery alg_NONE"}
    assert all(f.checks == ("C1",) and f.repro.startswith("curl ") for f in accepted)
    assert "$IAM_TOKEN_FORGERY_ALG_NONE" in accepted[0].repro  # the token travels as a variable, not inline
    assert any(line.startswith("accepted forgery (alg_none): ") for line in forged.evidence)


def test_a_key_url_fetched_is_a_finding(tmp_path: Path, issuer: Issuer) -> None:
    target = fake_clerk_target(tmp_path, issuer)
    forged = forgeries_refused(
        target, issuer, _victim(issuer), "/api/me", ("http://127.0.0.1:9", ["/jwks"]), target.transport()
    )
    assert [f.kind for f in forged.findings if f.kind is FindingKind.KEY_URL_FETCHED] == [FindingKind.KEY_URL_FETCHED]


def _ledger(request: httpx.Request) -> httpx.Response:
    """A ledger whose login tokens are HS256: north's signed with the weak secret 'secret', south's strongly."""
    token = request.headers.get("Authorization", "").removeprefix("Token ")
    for secret in ("secret", STRONG):
        try:
            jwt.decode(token, secret, algorithms=["HS256"])
            return httpx.Response(200, json={"ok": True})
        except jwt.PyJWTError:
            continue
    return httpx.Response(401)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the weak secret is planted
def test_a_weak_login_secret_is_found_offline_and_online() -> None:
    weak = jwt.encode({"sub": "north-auditor", "exp": 2_000_000_000}, "secret", algorithm="HS256")
    strong = jwt.encode({"sub": "south-auditor", "exp": 2_000_000_000}, STRONG, algorithm="HS256")
    world = World(orgs={})
    logins = []
    for key, token in (("north", weak), ("south", strong)):
        principal = Principal(
            f"{key} auditor", key, "auditor", StaticCredentials((("Authorization", f"Token {token}"),))
        )
        org = Org(key=key, principals=[principal])
        org.canaries.append(Canary(key, "ledgers", f"canary{key}", "1", f"/v2/ledgers/{key}", {}))
        world.orgs[key] = org
        jose, claims = parse_jwt(token) or ({}, {})
        logins.append(LoginToken(principal, "Authorization", "Token ", token, jose, claims))
    judged = login_tokens_resist_forgery("http://ledger.test", world, logins, httpx.MockTransport(_ledger))
    kinds = {f.kind for f in judged.findings}
    assert FindingKind.WEAK_TOKEN_SECRET in kinds and FindingKind.FORGERY_ACCEPTED in kinds
    weak_finding = next(f for f in judged.findings if f.kind is FindingKind.WEAK_TOKEN_SECRET)
    assert "'secret'" in weak_finding.detail and weak_finding.principal == "north auditor"


def _world_of_two(issuer: Issuer) -> World:
    world = World(orgs={})
    for n in (1, 2):
        org = ActiveOrg(f"org_2org{n}00000000000000000000000", f"org-{n}", "admin")
        owner = Principal(
            f"org{n} admin", f"org{n}", "Admin", ClerkCredentials(issuer, f"user_2owner{n}0000000000000000000", org)
        )
        world.orgs[f"org{n}"] = Org(key=f"org{n}", principals=[owner], id=org.id)
    return world


def test_a_session_naming_an_organisation_its_user_is_not_in(tmp_path: Path, issuer: Issuer) -> None:
    """The fake lets any valid token in (it knows no memberships): exactly the flaw this check exists for."""
    target = fake_clerk_target(tmp_path, issuer)
    world = _world_of_two(issuer)
    victim = world.org("org1").owner.credentials
    assert isinstance(victim, ClerkCredentials)
    judged = foreign_org_session_refused(target, world, issuer, victim, "/api/me", target.transport())
    assert [f.kind for f in judged.findings] == [FindingKind.FOREIGN_ORG_SESSION]
    alone = World(orgs={"org1": world.org("org1")})
    assert foreign_org_session_refused(target, alone, issuer, victim, "/api/me", target.transport()).inapplicable


def test_refused_forgeries_naming_a_new_user_provision_nothing(tmp_path: Path, issuer: Issuer) -> None:
    strict = fake_clerk_target(tmp_path, issuer)
    judged = refusals_provision_nothing(
        strict, issuer, "/api/me", "http://127.0.0.1:9", random.Random(1), strict.transport()
    )
    assert judged.ok and any("not checked" in line for line in judged.evidence)  # no database to read here
    lax = fake_clerk_target(tmp_path, issuer, frozenset({"alg_none"}))
    judged = refusals_provision_nothing(lax, issuer, "/api/me", NO_LISTENER[0], random.Random(1), lax.transport())
    assert FindingKind.FORGERY_ACCEPTED in {f.kind for f in judged.findings}


def test_a_target_that_never_answers_refuses_nothing(tmp_path: Path, issuer: Issuer) -> None:
    """No answer is no refusal: every forgery unanswered is a finding, not "all attacks refused"."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    target = fake_clerk_target(tmp_path, issuer)
    judged = forgeries_refused(target, issuer, _victim(issuer), "/api/me", NO_LISTENER, httpx.MockTransport(down))
    assert not judged.ok and {f.kind for f in judged.findings} == {FindingKind.UNANSWERED}
