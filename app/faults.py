"""Fault switches: each one brings back a known bug, so that every conformance check is proven able to fail.

Faults are refused unless the app runs in test mode (see `app.config`); production never carries one.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Fault", "parse_faults"]


class Fault(StrEnum):
    """The known bugs the app can bring back on purpose, named as `APP_FAULTS` spells them."""

    REDIRECT_TO_SIGN_IN_ON_DENIED = "redirect_to_sign_in_on_denied"
    """The access-denied page sends the browser to /sign-in after 400 ms: with a signed-in user, a loop."""

    SERVER_REDIRECT_LOOP = "server_redirect_loop"
    """A signed-in user's /dashboard answers 302 to /sign-in, and /sign-in 302 back to /dashboard: a server loop."""

    HANDSHAKE_LOOP = "handshake_loop"
    """Every page load of a signed-in user goes to Clerk's handshake, its answer and the redirect-count guard ignored
    (as when the app's keys are not the instance's)."""

    DASHBOARD_CRASH = "dashboard_crash"
    """/dashboard fails server-side (the 500 error page) for every signed-in user."""

    DASHBOARD_LANDMARK_MISSING = "dashboard_landmark_missing"
    """/dashboard answers 200 without its `data-testid="dashboard"` landmark."""

    ADMIN_EMAILS_IGNORED = "admin_emails_ignored"
    """The platform admin page /admin is shown to every signed-in user, whatever ADMIN_EMAILS says."""

    EXPIRED_TOKEN_LOOPS = "expired_token_loops"  # noqa: S105 (a fault name, not a secret)
    """An expired session token sends a page to /sign-in (303) instead of the handshake, and /sign-in counts it as
    signed in and sends the browser back to /dashboard by script: a loop between server and client."""

    FIRST_USER_NOT_ADMIN = "first_user_not_admin"
    """The first user of a new organisation gets Member, not Admin."""

    SKIP_ROLE_SEED = "skip_role_seed"
    """The migration seeds no roles or permissions."""

    DEFAULT_ALLOW = "default_allow"
    """The PolicyEngine allows when no rule matches."""

    NO_ORG_SCOPE = "no_org_scope"
    """The base repository stops scoping queries by organisation (row-level security still holds)."""

    NO_RLS = "no_rls"
    """The migration leaves row-level security off on the org-scoped tables: the second wall is gone."""

    LIST_IGNORES_ORG = "list_ignores_org"
    """List, search and export read every organisation's records, on the owner connection."""

    CROSS_ORG_REFERENCE = "cross_org_reference"
    """A deal's `contact_id` is not checked against the caller's organisation, and its contact is shown."""

    MASS_ASSIGN_ORG_ID = "mass_assign_org_id"
    """An `org_id` in a create or update body is honoured: records land in another organisation."""

    EXISTENCE_ORACLE = "existence_oracle"
    """Another organisation's record answers 403, a missing one 404: the difference tells what exists."""

    ORG_HEADER_SWITCHES_ORG = "org_header_switches_org"
    """An `X-Org-Id` header (or `org_id` query parameter) switches the active organisation, unchecked."""

    VIEWER_CAN_WRITE = "viewer_can_write"
    """The read-only check is lost: a Viewer may create, change and delete business records."""

    SQL_ERROR_LEAKS = "sql_error_leaks"
    """Bad input (a malformed bulk-delete id, a NUL in a search) reaches the database, and the 500 carries its error."""

    ACCEPT_ALG_NONE = "accept_alg_none"
    """The verifier accepts an unsigned token (`alg: none`, in any casing)."""

    HS256_KEY_CONFUSION = "hs256_key_confusion"
    """The verifier accepts HS256, keyed with the public key's PEM: anyone holding the public key signs."""

    SKIP_AZP_CHECK = "skip_azp_check"
    """`azp` is not checked against the authorized parties."""

    EXP_NOT_REQUIRED = "exp_not_required"
    """A token without `exp` is accepted: it never expires."""

    TRUST_JWK_HEADER = "trust_jwk_header"
    """The key in the token's own `jwk` header verifies it (CVE-2018-0114)."""

    IGNORE_PENDING_STATUS = "ignore_pending_status"
    """A `pending` session (signed in, no organisation chosen yet) is let in."""

    JWKS_REFETCH_EVERY_UNKNOWN_KID = "jwks_refetch_every_unknown_kid"
    """With `CLERK_JWKS_URL`, every token naming an unknown `kid` refetches the JWKS: forgeries hammer the issuer."""

    REFUSALS_NOT_LOGGED = "refusals_not_logged"
    """A refused token answers 401 and leaves no line in the log: an attack goes unseen."""

    PROVISION_BEFORE_VERIFY = "provision_before_verify"
    """The user is created from the token's unverified `sub` before the token is verified: every forgery,
    refused all the same, leaves a user behind."""

    WEBHOOK_SIGNATURE_UNCHECKED = "webhook_signature_unchecked"
    """The webhook endpoint reads a delivery without verifying its svix signature: anyone may post
    `user.deleted` and delete any user."""

    ROLE_CLAIM_TRUSTED = "role_claim_trusted"
    """The token's organisation role (`o.rol`, `org_role`) is believed beside the governance tables: a member
    whose session says `admin` acts as Admin."""

    ORG_CLAIM_TRUSTED_WITHOUT_MEMBERSHIP = "org_claim_trusted_without_membership"
    """A token's org claim is believed without a membership row: the user joins that organisation, as its role."""

    USER_ROLE_QUERY_USES_CLERK_ID = "user_role_query_uses_clerk_id"
    """The user-role query binds the Clerk `sub` where the user's uuid belongs (PostgreSQL raises 22P02)."""

    ACTIVE_ORG_CACHED_PER_SESSION = "active_org_cached_per_session"
    """The organisation a session (`sid`) first came with is remembered: after the user switches the active
    organisation, the same session is still served the first one's data."""

    DELETED_USER_ACCEPTED = "deleted_user_accepted"
    """`user.deleted` is recorded and then ignored: a deleted user's session is served again, and provisions them."""

    PROVISION_NOT_TRANSACTIONAL = "provision_not_transactional"
    """A first login commits as it goes (the user, then the organisation): a failure before the role grant leaves
    a user and an organisation without a member, and the user's next login is refused by their own workspace."""

    PROVISION_RACE = "provision_race"
    """A first login looks the user up, finds nothing and inserts, with no unique constraint behind it: racing
    first requests of one user make several users and Personal Workspaces, and later logins fail on them."""

    WEBHOOK_NOT_IDEMPOTENT = "webhook_not_idempotent"
    """Clerk's webhooks are applied as they come: no record of svix ids, a plain insert per `organization.created`
    (the unique constraint on a Clerk organisation id was never made), so retries and replays duplicate it."""

    MEMBERSHIP_BEFORE_ORG_DROPPED = "membership_before_org_dropped"
    """An `organizationMembership.*` event for an organisation the app does not know yet is acknowledged and
    dropped: when the membership overtakes its `organization.created`, the member is never added."""

    STALE_UPDATE_APPLIED = "stale_update_applied"
    """Every `*.updated` event is applied, whatever its `updated_at`: an older one delivered late overwrites a
    newer one, and an update arriving after `organization.deleted` revives the organisation."""

    INVITE_REUSABLE = "invite_reusable"
    """Accepting an invite does not check that it is unused: the same link lets a second matching user join, and a
    removed member back in."""

    INVITE_NOT_BOUND_TO_EMAIL = "invite_not_bound_to_email"
    """Accepting an invite does not compare its address with the session's `email` claim: whoever holds the link
    joins."""

    INVITE_NEVER_EXPIRES = "invite_never_expires"
    """Accepting an invite does not check `expires_at`: an old link still joins."""

    INVITE_ROLE_ESCALATION = "invite_role_escalation"
    """Creating an invite does not check that the role grants nothing the inviter lacks: a member manager with less
    than Admin invites an Admin (an accomplice, or a second account of their own)."""

    INVITE_CROSS_ORG = "invite_cross_org"
    """An `org_id` in an invite's body is honoured without a membership check, and the insert binds that
    organisation: an admin of one organisation invites anyone into another."""

    LAST_ADMIN_REMOVABLE = "last_admin_removable"
    """Changing a member's roles or removing a member does not check that someone is left holding
    `members:manage`: the sole Admin demotes or removes themselves, and nobody can manage the organisation again."""


def parse_faults(raw: str | Iterable[str]) -> frozenset[Fault]:
    """`"a,b"` (or an iterable of names) -> the set of faults; an unknown name raises ValueError naming it."""
    names = raw.split(",") if isinstance(raw, str) else [str(name) for name in raw]
    known = {fault.value: fault for fault in Fault}
    faults: set[Fault] = set()
    for name in (part.strip() for part in names):
        if not name:
            continue
        if name not in known:
            choices = ", ".join(sorted(known))
            raise ValueError(f"unknown fault {name!r} (known: {choices})")
        faults.add(known[name])
    return frozenset(faults)
