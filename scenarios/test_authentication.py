"""C1: authentication is solid, one concern per scenario; the requests and the judging live in harness.checks.

For Clerk targets: valid token shapes accepted; every entry of the attack catalogue refused (on the API by
header and on pages by cookie, logged, echoing nothing, no key fetched, the JWKS not hammered); a session
naming another organisation refused; refusals provision nothing; a deleted user's valid session refused;
a role claimed by the token and not granted by the target not honoured. For targets whose own login hands
out JWTs: each principal's real token, re-signed as an attacker can, refused.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from harness.checks.lifecycle import deleted_user_refused, refusals_provision_nothing, role_claim_ignored
from harness.checks.login_tokens import login_tokens, login_tokens_resist_forgery
from harness.checks.sessions import foreign_org_session_refused, forgeries_refused, valid_shapes_accepted
from harness.clerk.issuer import Issuer
from harness.engine.guard import GuardedTransport
from harness.engine.listener import counting_listener
from harness.engine.world import ClerkCredentials, World
from harness.report.evidence import Evidence, conclude, not_applicable
from harness.target.running import Target


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that counts every request: a target fetching a `jku` or `x5u` shows here."""
    with counting_listener() as found:
        yield found


@pytest.fixture
def victim(world: World) -> ClerkCredentials:
    """org1's owner's Clerk session, whose tokens the catalogue forges."""
    owner = world.org("org1").owner if "org1" in world.orgs else None
    if owner is None or not isinstance(owner.credentials, ClerkCredentials):
        not_applicable("the principals present no Clerk sessions")
    assert isinstance(owner.credentials, ClerkCredentials)
    return owner.credentials


@pytest.fixture
def impersonated(world: World) -> ClerkCredentials | None:
    """Another organisation's owner, whose `sub` each forgery is sent with too; None without a second one."""
    other = next((org.owner for key, org in world.orgs.items() if key != "org1" and org.principals), None)
    return other.credentials if other is not None and isinstance(other.credentials, ClerkCredentials) else None


@pytest.fixture
def api(target: Target) -> str:
    """The operation a session is presented to: where the target says who the caller is."""
    if target.config.identity is None:
        not_applicable("the config has no [identity]: no operation to present a session to")
    assert target.config.identity is not None
    return target.config.identity.me


@pytest.mark.decides("C1")
def test_valid_session_shapes_are_accepted(
    target: Target, issuer: Issuer, victim: ClerkCredentials, api: str, transport: GuardedTransport, evidence: Evidence
) -> None:
    """Valid v1 and v2 Clerk session tokens, with and without the `cat` header, are accepted by header and cookie."""
    conclude(valid_shapes_accepted(target, issuer, victim, api, transport), evidence)


@pytest.mark.decides("C1")
def test_forged_sessions_are_refused(
    target: Target,
    issuer: Issuer,
    victim: ClerkCredentials,
    api: str,
    listener: tuple[str, list[str]],
    transport: GuardedTransport,
    impersonated: ClerkCredentials | None,
    evidence: Evidence,
) -> None:
    """Every forged, stale and malformed token of the catalogue is refused with 401 and opens no page, as the
    victim and with another organisation's `sub`; refusals echo nothing and are logged; no key is fetched from
    where a token points; forged kids do not hammer the JWKS."""
    conclude(forgeries_refused(target, issuer, victim, api, listener, transport, impersonated), evidence)


@pytest.mark.decides("C1")
def test_session_naming_another_org_is_refused(
    target: Target,
    world: World,
    issuer: Issuer,
    victim: ClerkCredentials,
    api: str,
    transport: GuardedTransport,
    evidence: Evidence,
) -> None:
    """A valid session naming an organisation its user is not a member of gets 401, 403 or 404."""
    conclude(foreign_org_session_refused(target, world, issuer, victim, api, transport), evidence)


@pytest.mark.decides("C1")
def test_refusals_provision_nothing(
    target: Target,
    issuer: Issuer,
    victim: ClerkCredentials,
    api: str,
    listener: tuple[str, list[str]],
    transport: GuardedTransport,
    harness_rng: random.Random,
    evidence: Evidence,
) -> None:
    """The catalogue sent with a user and an organisation nobody has used leaves no trace of either anywhere."""
    conclude(refusals_provision_nothing(target, issuer, api, listener[0], harness_rng, transport), evidence)


@pytest.mark.decides("C1")
def test_deleted_user_is_refused(
    target: Target,
    issuer: Issuer,
    victim: ClerkCredentials,
    api: str,
    transport: GuardedTransport,
    harness_rng: random.Random,
    evidence: Evidence,
) -> None:
    """A user Clerk deleted (a svix-signed `user.deleted`) is refused with their still-valid token; deliveries
    signed with another secret or ten minutes ago are refused first and delete nobody."""
    conclude(deleted_user_refused(target, issuer, api, harness_rng, transport), evidence)


@pytest.mark.decides("C1")
def test_role_claimed_by_the_token_is_not_trusted(
    target: Target,
    world: World,
    issuer: Issuer,
    victim: ClerkCredentials,
    transport: GuardedTransport,
    harness_rng: random.Random,
    evidence: Evidence,
) -> None:
    """A read-only member whose validly signed session claims the admin role is still refused a write."""
    conclude(role_claim_ignored(target, world, issuer, harness_rng, transport), evidence)


@pytest.mark.decides("C1")
def test_login_tokens_resist_forgery(
    target: Target, world: World, transport: GuardedTransport, evidence: Evidence
) -> None:
    """Each principal's own JWT, re-signed unsigned, with an empty or weak secret or a foreign key (as it is and
    with `sub` swapped for another organisation's principal), is refused where the real token reads a record."""
    logins = login_tokens(world)
    if not logins:
        not_applicable("no principal presents a JWT from the target's own login")
    conclude(login_tokens_resist_forgery(target.base_url, world, logins, transport), evidence)
