"""What `create_app` builds once and every request shares, and how a request reaches its organisation's data.

Every repository a handler gets comes from here, scoped to the caller's organisation. The fault switches
that change how data is reached live here too, each in one place, so the healthy path reads plainly.
Some faults bring back bugs that escape row-level security; they do it as such bugs do in real life, by
running a query on the owner's connection (`Database.owner_session`), and say so where they do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import jinja2
import jwt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import tenancy
from app.auth.identity import (
    ADMIN_ROLE,
    FIRST_USER_FALLBACK_ROLE,
    DeletedUser,
    Identity,
    OrgRef,
    Provisioning,
    UserDeleted,
    delete_user,
    ensure_user,
    is_deleted,
    resolve_identity,
)
from app.auth.known import known_member
from app.auth.policy import PolicyEngine, Principal
from app.auth.token import InvalidToken, OrgClaim, SessionClaims, TokenVerifier, plain_id
from app.config import AppMode, Settings
from app.db import Database
from app.errors import ApiError
from app.faults import Fault
from app.governance import load_principal, others_holding, role_catalogue
from app.invites import AcceptGuards
from app.models import Deal, Membership, Organisation
from app.repository import ContactRepository, DealRepository, MemberRepository, NoteRepository
from app.repository.invites import InviteRepository

__all__ = ["ListSource", "Services"]

MANAGE_MEMBERS = "members:manage"  # the permission an organisation may never be left without


@dataclass(frozen=True)
class ListSource:
    """Where a list, search or export reads from: the request's session, scoped or not."""

    session: Session
    scoped: bool


@dataclass(frozen=True)
class Services:
    """The app's settings, database, token verifier, policy engine and templates."""

    settings: Settings
    database: Database
    verifier: TokenVerifier
    policy: PolicyEngine
    templates: jinja2.Environment

    sessions_seen: dict[str, OrgClaim | None] = field(default_factory=dict, repr=False, compare=False)
    """The `active_org_cached_per_session` fault's memory: the organisation each session id first came with."""

    def has(self, fault: Fault) -> bool:
        """Whether a fault switch is on."""
        return self.settings.has(fault)

    @property
    def _scoped(self) -> bool:
        return not self.has(Fault.NO_ORG_SCOPE)

    # --- identity -------------------------------------------------------------------------------------

    def identity(self, session: Session, claims: SessionClaims, *, fail_requested: bool = False) -> Identity:
        """Resolve (or provision) the caller; raises NotAMember, or InvalidToken(`user_deleted`) for a user
        deleted at Clerk: their session token is still validly signed, and must open nothing. `fail_requested`:
        the request asked the test-mode hook to break its provisioning midway (honoured in test mode only)."""
        claims = self._as_seen(claims)
        how = Provisioning(
            first_user_role=FIRST_USER_FALLBACK_ROLE if self.has(Fault.FIRST_USER_NOT_ADMIN) else ADMIN_ROLE,
            trust_org_claim=self.has(Fault.ORG_CLAIM_TRUSTED_WITHOUT_MEMBERSHIP),
            accept_deleted=self._deleted_ok,
            commit_as_it_goes=self.has(Fault.PROVISION_NOT_TRANSACTIONAL),
            racy=self.has(Fault.PROVISION_RACE),
            unconstrained_orgs=self.has(Fault.WEBHOOK_NOT_IDEMPOTENT),
            fail_midway=self._fails_midway(claims, fail_requested),
        )
        try:
            return resolve_identity(session, claims, how)
        except UserDeleted:
            raise InvalidToken("user_deleted") from None

    def signed_in(self, session: Session, claims: SessionClaims, *, fail_requested: bool = False) -> Principal:
        """The caller with their roles, the session bound to their active organisation: a known member's in one
        round trip (`app.auth.known`), anyone else's resolved (or provisioned) step by step, by `identity` and
        `principal`, which raise as they do. `fail_requested` as for `identity`."""
        claims = self._as_seen(claims)
        # The step-by-step way is where the fault switches of identity and grants live: with the 22P02 bug of the
        # role query, or a provisioning failure asked for, it is the only way.
        if not self.has(Fault.USER_ROLE_QUERY_USES_CLERK_ID) and not self._fails_midway(claims, fail_requested):
            known = known_member(session, claims)
            if known is not None:
                return known
        return self.principal(session, self.identity(session, claims, fail_requested=fail_requested))

    def _as_seen(self, claims: SessionClaims) -> SessionClaims:
        """The claims as the app reads them: with `active_org_cached_per_session`, the organisation a session id
        first came with, whatever the token says now."""
        if self.has(Fault.ACTIVE_ORG_CACHED_PER_SESSION) and claims.session_id is not None:
            return replace(claims, org=self.sessions_seen.setdefault(claims.session_id, claims.org))
        return claims

    def _fails_midway(self, claims: SessionClaims, requested: bool) -> bool:
        """Whether the test-mode hook breaks this login's provisioning midway (see `Provisioning.fail_midway`)."""
        return self.settings.app_mode is AppMode.TEST and (
            requested or claims.subject in self.settings.app_provisioning_fails_for
        )

    def provision_unverified(self, session: Session, token: str) -> None:
        """The `provision_before_verify` bug: the user a token names is created before the token is verified."""
        if not self.has(Fault.PROVISION_BEFORE_VERIFY):
            return
        try:
            sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
        except jwt.InvalidTokenError:
            return
        if plain_id(sub):
            ensure_user(session, sub, accept_deleted=True)
            session.commit()

    def ensure_member_user(self, session: Session, external_id: str) -> uuid.UUID:
        """The system user an admin adds by Clerk id (created on first sight); UserDeleted for a deleted one."""
        return ensure_user(session, external_id, accept_deleted=self._deleted_ok, racy=self.has(Fault.PROVISION_RACE))

    def is_deleted(self, session: Session, external_id: str) -> bool:
        """Whether a Clerk user id was deleted at Clerk (never, with the `deleted_user_accepted` fault)."""
        return not self._deleted_ok and is_deleted(session, external_id)

    def delete_user(self, session: Session, external_id: str) -> DeletedUser:
        """Tombstone a Clerk user and take them out of every organisation (the fault keeps their memberships)."""
        return delete_user(session, external_id, keep_memberships=self._deleted_ok)

    @property
    def _deleted_ok(self) -> bool:
        # The `deleted_user_accepted` bug: `user.deleted` is recorded, and then nothing acts on it.
        return self.has(Fault.DELETED_USER_ACCEPTED)

    def invite_ttl(self, requested: str | None) -> int:
        """How long a new invite lives: INVITE_TTL_SECONDS, or in test mode the seconds the request's test hook asks
        for (`X-Test-Invite-Ttl-Seconds`, 1 to INVITE_TTL_SECONDS), so that expiry can be shown without waiting days."""
        ttl = self.settings.invite_ttl_seconds
        if self.settings.app_mode is not AppMode.TEST or requested is None:
            return ttl
        if not (requested.isascii() and requested.isdigit() and len(requested) <= 9):
            return ttl
        return min(max(int(requested), 1), ttl)

    def is_platform_admin(self, claims: SessionClaims) -> bool:
        """Whether the session's `email` claim is in ADMIN_EMAILS (anyone signed in, with `admin_emails_ignored`)."""
        if self.has(Fault.ADMIN_EMAILS_IGNORED):
            return True
        return claims.email is not None and claims.email in self.settings.admin_emails

    def organisation_count(self, session: Session) -> int:
        """How many organisations the platform holds (a global table: no organisation scope applies)."""
        return int(session.scalar(select(func.count()).select_from(Organisation)) or 0)

    def principal(self, session: Session, identity: Identity) -> Principal:
        """The caller's roles and grants, with the session bound to their organisation; may raise a database error."""
        tenancy.bind_org(session, identity.organisation.id)
        return load_principal(session, identity, bind_clerk_id=self.has(Fault.USER_ROLE_QUERY_USES_CLERK_ID))

    def trust_role_claim(self, session: Session, principal: Principal, claims: SessionClaims) -> Principal:
        """The `role_claim_trusted` bug: the organisation role the token states is believed, as if granted."""
        claimed = claims.org.role.capitalize() if claims.org and claims.org.role else None
        if not self.has(Fault.ROLE_CLAIM_TRUSTED) or claimed is None or claimed in principal.roles:
            return principal
        role = next((view for view in role_catalogue(session) if view.name == claimed), None)
        if role is None:
            return principal
        grants = dict(principal.grants)
        for permission in role.permissions:
            grants[permission] = (*grants.get(permission, ()), claimed)
        return replace(principal, roles=(*principal.roles, claimed), grants=grants)

    def switch_org(self, session: Session, principal: Principal, requested: str | None) -> Principal:
        """The `org_header_switches_org` bug: the caller acts in the organisation a header names, unchecked.

        Roles were loaded in the token's organisation; the data scope follows the header. That is how a
        tenant middleware added after authorisation breaks isolation: no membership of the named
        organisation is ever looked up.
        """
        try:
            org_id = uuid.UUID(requested or "")
        except ValueError:
            return principal
        row = session.execute(
            select(Organisation.id, Organisation.external_id, Organisation.name).where(Organisation.id == org_id)
        ).one_or_none()
        if row is None:
            return principal
        tenancy.bind_org(session, row.id)
        org = OrgRef(id=row.id, external_id=row.external_id, name=row.name)
        return replace(principal, identity=replace(principal.identity, organisation=org))

    # --- repositories ---------------------------------------------------------------------------------

    def contacts(self, session: Session, principal: Principal, *, scoped: bool | None = None) -> ContactRepository:
        """The caller's organisation's contacts."""
        return ContactRepository(
            session,
            principal.org_id,
            scoped=self._scoped if scoped is None else scoped,
            trust_record_org=self.has(Fault.MASS_ASSIGN_ORG_ID),
        )

    def deals(self, session: Session, principal: Principal, *, scoped: bool | None = None) -> DealRepository:
        """The caller's organisation's deals."""
        return DealRepository(
            session,
            principal.org_id,
            scoped=self._scoped if scoped is None else scoped,
            trust_record_org=self.has(Fault.MASS_ASSIGN_ORG_ID),
        )

    def notes(self, session: Session, principal: Principal, deal: Deal) -> NoteRepository:
        """The notes on one of the caller's deals."""
        return NoteRepository(session, principal.org_id, deal, scoped=self._scoped)

    def members(self, session: Session, principal: Principal) -> MemberRepository:
        """The caller's organisation's memberships."""
        return MemberRepository(session, principal.org_id, scoped=self._scoped)

    @contextmanager
    def list_source(self, session: Session) -> Iterator[ListSource]:
        """Where lists, searches and exports read: the request's session, scoped to the caller's organisation."""
        if not self.has(Fault.LIST_IGNORES_ORG):
            yield ListSource(session=session, scoped=self._scoped)
            return
        # The `list_ignores_org` bug: lists were moved to the reporting connection (the owner's, outside
        # the app role, so outside row-level security) and lost their organisation filter on the way.
        with self.database.owner_session() as owner:
            yield ListSource(session=owner, scoped=False)

    # --- invites --------------------------------------------------------------------------------------

    def invites(self, session: Session, principal: Principal) -> InviteRepository:
        """The caller's organisation's invites."""
        return InviteRepository(
            session, principal.org_id, scoped=self._scoped, trust_record_org=self.has(Fault.INVITE_CROSS_ORG)
        )

    def invite_org(self, session: Session, principal: Principal, requested: uuid.UUID | None) -> OrgRef:
        """The organisation an invite is for: the caller's own, which an `org_id` in the body may only repeat.

        Any other organisation is refused as any record of another organisation is (404), unless the
        `invite_cross_org` fault is on: then the one named is taken as found, with no membership looked up.
        """
        own = principal.identity.organisation
        if requested is None or requested == own.id:
            return own
        if not self.has(Fault.INVITE_CROSS_ORG):
            raise self.missing(Organisation, requested)
        row = session.execute(
            select(Organisation.id, Organisation.external_id, Organisation.name).where(Organisation.id == requested)
        ).one_or_none()
        if row is None:
            raise ApiError.not_found()
        return OrgRef(id=row.id, external_id=row.external_id, name=row.name)

    @staticmethod
    def grantable(principal: Principal, permissions: Iterable[str]) -> bool:
        """Whether `principal` may hand out (or take away) what grants `permissions`: only if it holds every one of
        them in its organisation (OWASP API5). A Manager gives a Member's role, never an Admin's."""
        return set(permissions) <= set(principal.permissions)

    def leaves_a_manager(self, session: Session, member: Membership, held: Iterable[str], kept: Iterable[str]) -> bool:
        """Whether `member`, going from roles granting `held` to roles granting `kept` (nothing, when removed),
        leaves someone in the organisation holding `members:manage`: the last holder may neither give it up nor be
        removed (no lockout). Always, with the `last_admin_removable` fault."""
        if self.has(Fault.LAST_ADMIN_REMOVABLE) or MANAGE_MEMBERS not in held or MANAGE_MEMBERS in kept:
            return True
        return others_holding(session, member.org_id, MANAGE_MEMBERS, but=member.user_id) > 0

    def role_within_inviter(self, principal: Principal, permissions: Iterable[str]) -> bool:
        """Whether a role granting `permissions` may be invited by `principal` (`grantable`); always, with the
        `invite_role_escalation` fault."""
        return self.has(Fault.INVITE_ROLE_ESCALATION) or self.grantable(principal, permissions)

    def accept_guards(self) -> AcceptGuards:
        """What accepting an invite checks: all of it, less what a fault switch drops."""
        return AcceptGuards(
            unused=not self.has(Fault.INVITE_REUSABLE),
            bound_to_email=not self.has(Fault.INVITE_NOT_BOUND_TO_EMAIL),
            unexpired=not self.has(Fault.INVITE_NEVER_EXPIRES),
        )

    # --- references and refusals ----------------------------------------------------------------------

    def contact_in_org(self, session: Session, principal: Principal, contact_id: uuid.UUID) -> bool:
        """Whether a deal of the caller may reference `contact_id`: it must be one of their organisation's contacts."""
        if self.has(Fault.CROSS_ORG_REFERENCE):
            return True  # the bug: a nested id is trusted as sent; only the foreign key checks it exists
        return self.contacts(session, principal).get(contact_id) is not None

    def contact_names(
        self, session: Session, principal: Principal, ids: Iterable[uuid.UUID], *, scoped: bool | None = None
    ) -> dict[uuid.UUID, str]:
        """The names of the contacts deals point at, as the caller may see them."""
        wanted = {contact_id for contact_id in ids if contact_id is not None}
        if not self.has(Fault.CROSS_ORG_REFERENCE):
            return self.contacts(session, principal, scoped=scoped).names(wanted)
        # The `cross_org_reference` bug, second half: the contact behind a deal is looked up by id alone,
        # through the owner's connection, so another organisation's contact shows through the deal.
        with self.database.owner_session() as owner:
            return self.contacts(owner, principal, scoped=False).names(wanted)

    def missing(self, model: type[Any], record_id: uuid.UUID, *, key: str = "id") -> ApiError:
        """The refusal for a record the caller cannot see: always 404, so that nothing about it leaks."""
        if self.has(Fault.EXISTENCE_ORACLE):
            # The `existence_oracle` bug: "not yours" (403) told apart from "missing" (404) by a lookup without
            # the organisation filter, on the owner's connection, outside row-level security.
            with self.database.owner_session() as owner:
                found = owner.scalar(select(getattr(model, key)).where(getattr(model, key) == record_id).limit(1))
            if found is not None:
                return ApiError(403, "forbidden", reason="not_in_your_organisation")
        return ApiError.not_found()
