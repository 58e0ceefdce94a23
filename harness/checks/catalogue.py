"""The catalogue of checks: each id, the question it answers (YES is good), and its kind."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "Check", "check"]


@dataclass(frozen=True)
class Check:
    """One question the report answers YES or NO."""

    id: str
    question: str
    kind: str  # "measure", "obstacle", "factor" or "investigation"


CATALOGUE: tuple[Check, ...] = (
    Check("M1", "Owner logs in -> dashboard loads, no redirect loop", "measure"),
    Check("M2", "First user in a new org automatically gets the Admin role", "measure"),
    Check("M3", "Default deny: no permission = no access, on every operation", "measure"),
    Check("M4", "A user in org1 cannot read, change or even detect org2's data", "measure"),
    Check("O1", "A first login with a Clerk-shaped user id resolves roles: no 5xx, no SQL error text", "obstacle"),
    Check("O2", "A signed-in user without access sees an error page, never a redirect to sign-in", "obstacle"),
    Check("O3", "A fresh deploy has the roles its config seeds, each with its permissions", "obstacle"),
    Check("O4", "A member with no grant is denied on every operation (no default allow)", "obstacle"),
    Check(
        "O5",
        "Invite by email works, and only for the invited address, once, before expiry, by those who may invite",
        "obstacle",
    ),
    Check(
        "O6",
        "The configured platform admin opens /admin; nobody else does; production refuses to start without it",
        "obstacle",
    ),
    Check("C1", "Authentication solid: every valid Clerk token shape accepted, every forged one refused", "factor"),
    Check(
        "C2",
        "Multi-tenancy schema complete: every business table has org_id -> org_organisation and RLS forced",
        "factor",
    ),
    Check(
        "C3",
        "No lockout: an organisation's last member manager can neither step down nor be removed",
        "factor",
    ),
    Check(
        "I1",
        "Is auto-provisioning transactional: racing first requests make one user, a failure midway leaves nothing?",
        "investigation",
    ),
    Check(
        "I2",
        "Does Clerk organisation sync avoid duplicate orgs (retries, replays, out-of-order events, a first login "
        "racing the webhook)?",
        "investigation",
    ),
    Check("I3", "Does org scoping hold on every operation without breaking the existing queries?", "investigation"),
)

_BY_ID = {c.id: c for c in CATALOGUE}


def check(check_id: str) -> Check:
    """The catalogue entry for an id; KeyError names the unknown id."""
    try:
        return _BY_ID[check_id]
    except KeyError:
        raise KeyError(f"unknown check id {check_id!r}; known: {', '.join(_BY_ID)}") from None
