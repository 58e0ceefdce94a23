"""A known member's request in one database round trip: identity, membership, grants and the row-level security
context, from one call of `app_known_member` (migration 0008, which says how it works).

For a first login, a non-member, a tombstoned user or an organisation not yet known, the function finds no row:
the transaction is rolled back, untouched, and the request takes the step-by-step way (`resolve_identity`,
`load_principal`), which provisions or refuses exactly as it always did. Both ways follow the same rules: the
oldest organisation holding a Clerk id (only one can, unless the `webhook_not_idempotent` schema is deployed),
the oldest membership when no organisation is claimed, roles from the governance tables and never from the token.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import tenancy
from app.auth.identity import Identity, OrgRef
from app.auth.policy import Principal
from app.auth.token import SessionClaims
from app.governance import principal_from
from app.models import CLERK

__all__ = ["KNOWN_MEMBER", "known_member"]

KNOWN_MEMBER = text("SELECT * FROM app_known_member(:provider, :subject, :org)")


def known_member(session: Session, claims: SessionClaims) -> Principal | None:
    """The caller as a member of their active organisation, with the session bound to it; None (and the
    transaction rolled back) when they are not a known, live member of it."""
    params = {"provider": CLERK, "subject": claims.subject, "org": claims.org.external_id if claims.org else None}
    rows = session.execute(KNOWN_MEMBER, params).all()
    if not rows:
        session.rollback()
        return None
    first = rows[0]
    tenancy.bound_by_statement(session, first.org_id)
    organisation = OrgRef(id=first.org_id, external_id=first.org_external_id, name=first.org_name)
    identity = Identity(user_id=first.user_id, external_id=claims.subject, organisation=organisation)
    return principal_from(identity, [(row.role, row.permission) for row in rows])
