"""Server-rendered pages: `/dashboard`, `/sign-in` and the access-denied page.

A page reads Clerk's browser cookies: `__session` (the token) and `__client_uat` (when the client last
changed; missing or `0` is signed out, later than the token's `iat` means the token is stale).
A signed-in user who may not see a page gets the access-denied page, never a redirect to sign-in:
sign-in sends a signed-in user straight back, and the two would bounce the browser forever.
A user deleted at Clerk is signed out on every page, sign-in included (as Clerk signs them out), so the
dashboard's redirect to sign-in ends there, with the sign-in form.
"""

from __future__ import annotations

import logging
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import Services, ServicesDep, SessionDep
from app.auth.identity import NotAMember
from app.auth.token import InvalidToken, SessionClaims, TokenVerifier
from app.errors import current_request_id, log_exception
from app.faults import Fault

__all__ = ["SESSION_COOKIE", "UAT_COOKIE", "page_session", "router", "template_environment"]

log = logging.getLogger("app.pages")

SESSION_COOKIE = "__session"
UAT_COOKIE = "__client_uat"
SIGN_IN = "/sign-in"
DASHBOARD = "/dashboard"
# A cached redirect or page is one of the known causes of sign-in loops: pages are never cached.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


def template_environment() -> jinja2.Environment:
    """The page templates, with HTML autoescaping on (organisation names come from tokens and users)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("app", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
    )


def page_session(request: Request, verifier: TokenVerifier) -> SessionClaims | None:
    """The verified session of a browser, or None when it is signed out, stale or invalid."""
    token = request.cookies.get(SESSION_COOKIE)
    uat = request.cookies.get(UAT_COOKIE)
    if not token or not uat or uat == "0":
        return None
    try:
        client_uat = int(uat)
        claims = verifier.verify(token)
    except (ValueError, InvalidToken):
        return None
    if client_uat > claims.issued_at:  # the client changed after this token was minted: stale
        return None
    return claims


def _render(templates: jinja2.Environment, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _denied(services: Services, reason: str) -> HTMLResponse:
    log.info("page access denied path=%s reason=%s request_id=%s", DASHBOARD, reason, current_request_id())
    return _render(
        services.templates,
        "access_denied.html",
        status=403,
        title="Access denied",
        request_id=current_request_id(),
        # The fault brings back the historical bug: "send them to sign in" on a denied page.
        redirect_to_sign_in=services.has(Fault.REDIRECT_TO_SIGN_IN_ON_DENIED),
    )


@router.get(DASHBOARD, response_model=None)
def dashboard(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    """The dashboard for a signed-in user with `dashboard:view`; the access-denied page for anyone else signed in."""
    claims = page_session(request, services.verifier)
    if claims is None:
        return RedirectResponse(SIGN_IN, status_code=303, headers=NO_STORE)
    try:
        identity = services.identity(session, claims)
    except NotAMember:
        return _denied(services, "not_a_member")
    except InvalidToken as refused:  # a user deleted at Clerk: signed out, as for any other refused session
        log.info(
            "page session refused path=%s reason=%s request_id=%s", DASHBOARD, refused.reason, current_request_id()
        )
        return RedirectResponse(SIGN_IN, status_code=303, headers=NO_STORE)
    try:
        principal = services.principal(session, identity)
    except SQLAlchemyError as exc:
        # Fail closed: roles that cannot be read grant nothing. The cause goes to the log only.
        session.rollback()
        log_exception(exc, message="roles unavailable; page denied", level=logging.ERROR, path=DASHBOARD)
        return _denied(services, "roles_unavailable")
    decision = services.policy.can_i(principal, "view", "dashboard")
    if not decision.allowed:
        return _denied(services, decision.explain())
    return _render(
        services.templates,
        "dashboard.html",
        title="Dashboard",
        organisation=identity.organisation,
        external_id=identity.external_id,
        roles=principal.roles,
        permissions=principal.permissions,
    )


@router.get(SIGN_IN, response_model=None)
def sign_in(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    """Sign-in: like Clerk's component, it sends an already signed-in browser on to the dashboard."""
    claims = page_session(request, services.verifier)
    if claims is not None and not services.is_deleted(session, claims.subject):
        return _render(services.templates, "sign_in_redirect.html", title="Signed in")
    return _render(services.templates, "sign_in.html", title="Sign in")
