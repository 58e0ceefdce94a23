"""Server-rendered pages: `/dashboard`, `/sign-in`, `/admin`, and the access-denied and error pages.

Every page is guarded as Clerk's middleware guards it (`app.auth.browser`): a page load whose cookies only Clerk
can resolve is sent to the handshake, and the handshake's answer (`__clerk_handshake`) is applied and the page
reloaded. A signed-in user who may not see a page gets the access-denied page, never a redirect to sign-in:
sign-in sends a signed-in user straight back, and the two would bounce the browser forever.
A user deleted at Clerk is signed out on every page, sign-in included (as Clerk signs them out), so the
dashboard's redirect to sign-in ends there, with the sign-in form.
Anything that fails server-side while a page is made is the error page (`500`, with the request's reference):
never a redirect, which a browser would follow into a loop, and never the failure's text.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.api.deps import Services, ServicesDep, SessionDep
from app.auth.browser import (
    HANDSHAKE_COOKIE,
    HANDSHAKE_PARAM,
    MAX_HANDSHAKE_REDIRECTS,
    BrowserSession,
    handshake_location,
    is_document_request,
    read_session,
    redirect_count,
    redirect_count_cookie,
    without_clerk_params,
)
from app.auth.identity import NotAMember
from app.auth.token import InvalidToken
from app.errors import current_request_id, log_exception
from app.faults import Fault

__all__ = ["ADMIN", "DASHBOARD", "SIGN_IN", "router", "template_environment"]

log = logging.getLogger("app.pages")

SIGN_IN = "/sign-in"
DASHBOARD = "/dashboard"
ADMIN = "/admin"
# A cached redirect or page is one of the known causes of sign-in loops: pages are never cached.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

Render = Callable[[BrowserSession, Services, Session], Response]
"""A page, given the browser's session once the guard let the request through."""

router = APIRouter(include_in_schema=False)


def template_environment() -> jinja2.Environment:
    """The page templates, with HTML autoescaping on (organisation names come from tokens and users)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("app", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
    )


# --- the guard: Clerk's handshake --------------------------------------------------------------------------


def _guard(request: Request, services: Services) -> Response | BrowserSession:
    """What Clerk's middleware answers before the page: the handshake's return, the handshake, or the session."""
    if not services.has(Fault.HANDSHAKE_LOOP):  # the bug ignores the handshake's answer
        resolved = _resolve_handshake(request, services)
        if resolved is not None:
            return resolved
    browser = read_session(request.cookies, services.verifier)
    if browser.expired and services.has(Fault.EXPIRED_TOKEN_LOOPS):
        return BrowserSession(expired=True)  # the bug: signed out (to sign-in), never the handshake
    if not is_document_request(request.headers):
        return BrowserSession(claims=browser.claims)  # only a page load can follow the handshake to Clerk
    if browser.claims is not None and services.has(Fault.HANDSHAKE_LOOP):
        return _to_handshake(request, services, "session-token-refused", guarded=False)
    if browser.handshake is None:
        return browser
    return _to_handshake(request, services, browser.handshake)


def _to_handshake(
    request: Request, services: Services, reason: str, *, guarded: bool = True
) -> Response | BrowserSession:
    """307 to Clerk's handshake, counted in `__clerk_redirect_count`; at the third in a row, signed out instead."""
    count = redirect_count(request.cookies)
    if guarded and count >= MAX_HANDSHAKE_REDIRECTS:
        log.warning(
            "handshake loop stopped reason=%s path=%s count=%d request_id=%s",
            reason,
            request.url.path,
            count,
            current_request_id(),
        )
        return BrowserSession()
    log.info("page handshake reason=%s path=%s request_id=%s", reason, request.url.path, current_request_id())
    location = handshake_location(services.settings.frontend_api_host, str(request.url), reason)
    response = RedirectResponse(location, status_code=307, headers=NO_STORE)
    response.headers.append("set-cookie", redirect_count_cookie(count + 1))
    return response


def _resolve_handshake(request: Request, services: Services) -> Response | None:
    """The handshake's return: its cookies set and the page reloaded without Clerk's parameters; None when the
    request carries no handshake, or one that does not verify (ignored: the cookies decide, as without it)."""
    from_query = request.query_params.get(HANDSHAKE_PARAM)
    token = from_query or request.cookies.get(HANDSHAKE_COOKIE)
    if not token:
        return None
    try:
        directives = services.verifier.verify_handshake(token)
    except InvalidToken as refused:
        log.info(
            "handshake refused reason=%s path=%s request_id=%s", refused.reason, request.url.path, current_request_id()
        )
        return None
    response = RedirectResponse(without_clerk_params(str(request.url)), status_code=307, headers=NO_STORE)
    for directive in directives:
        response.headers.append("set-cookie", directive)
    if not from_query:  # consumed: left in place, the cookie would bring every later load back here
        response.headers.append("set-cookie", f"{HANDSHAKE_COOKIE}=; Path=/; Max-Age=0")
    log.info(
        "handshake resolved cookies=%d path=%s request_id=%s", len(directives), request.url.path, current_request_id()
    )
    return response


# --- answers -----------------------------------------------------------------------------------------------


def _render(templates: jinja2.Environment, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _to_sign_in() -> Response:
    return RedirectResponse(SIGN_IN, status_code=303, headers=NO_STORE)


def _denied(services: Services, path: str, reason: str) -> HTMLResponse:
    log.info("page access denied path=%s reason=%s request_id=%s", path, reason, current_request_id())
    return _render(
        services.templates,
        "access_denied.html",
        status=403,
        title="Access denied",
        request_id=current_request_id(),
        # The fault brings back the historical bug: "send them to sign in" on a denied page.
        redirect_to_sign_in=services.has(Fault.REDIRECT_TO_SIGN_IN_ON_DENIED),
    )


def _page(path: str, request: Request, services: Services, session: Session, render: Render) -> Response:
    """The guard, then the page; any failure on the way is the error page, logged with the request's id."""
    try:
        visit = _guard(request, services)
        return visit if isinstance(visit, Response) else render(visit, services, session)
    except Exception as exc:
        with contextlib.suppress(SQLAlchemyError):
            session.rollback()
        log_exception(exc, message="page failed", path=path)
        return _render(
            services.templates, "error.html", status=500, title="Something went wrong", request_id=current_request_id()
        )


# --- the pages ---------------------------------------------------------------------------------------------


def _dashboard(visit: BrowserSession, services: Services, session: Session) -> Response:
    claims = visit.claims
    if claims is None:
        return _to_sign_in()
    if services.has(Fault.SERVER_REDIRECT_LOOP):
        return RedirectResponse(SIGN_IN, status_code=302, headers=NO_STORE)
    if services.has(Fault.DASHBOARD_CRASH):
        raise RuntimeError("the dashboard failed (the dashboard_crash fault)")
    try:
        identity = services.identity(session, claims)
    except NotAMember:
        return _denied(services, DASHBOARD, "not_a_member")
    except InvalidToken as refused:  # a user deleted at Clerk: signed out, as for any other refused session
        log.info(
            "page session refused path=%s reason=%s request_id=%s", DASHBOARD, refused.reason, current_request_id()
        )
        return _to_sign_in()
    try:
        principal = services.principal(session, identity)
    except SQLAlchemyError as exc:
        # Fail closed: roles that cannot be read grant nothing. The cause goes to the log only.
        session.rollback()
        log_exception(exc, message="roles unavailable; page denied", level=logging.ERROR, path=DASHBOARD)
        return _denied(services, DASHBOARD, "roles_unavailable")
    decision = services.policy.can_i(principal, "view", "dashboard")
    if not decision.allowed:
        return _denied(services, DASHBOARD, decision.explain())
    return _render(
        services.templates,
        "dashboard.html",
        title="Dashboard",
        landmark=not services.has(Fault.DASHBOARD_LANDMARK_MISSING),
        organisation=identity.organisation,
        external_id=identity.external_id,
        roles=principal.roles,
        permissions=principal.permissions,
    )


def _sign_in(visit: BrowserSession, services: Services, session: Session) -> Response:
    # The `expired_token_loops` bug: an expired token counts as signed in here, while the dashboard signs it out.
    expired_counts = visit.expired and services.has(Fault.EXPIRED_TOKEN_LOOPS)
    claims = visit.claims
    if not expired_counts and (claims is None or services.is_deleted(session, claims.subject)):
        return _render(services.templates, "sign_in.html", title="Sign in")
    if services.has(Fault.SERVER_REDIRECT_LOOP):
        return RedirectResponse(DASHBOARD, status_code=302, headers=NO_STORE)
    return _render(services.templates, "sign_in_redirect.html", title="Signed in")


def _admin(visit: BrowserSession, services: Services, session: Session) -> Response:
    claims = visit.claims
    if claims is None or services.is_deleted(session, claims.subject):
        return _to_sign_in()
    if not services.is_platform_admin(claims):
        return _denied(services, ADMIN, "not_a_platform_admin")
    log.info("platform admin page user=%s request_id=%s", claims.subject, current_request_id())
    return _render(
        services.templates,
        "platform_admin.html",
        title="Platform admin",
        organisations=services.organisation_count(session),
    )


@router.get(DASHBOARD, response_model=None)
def dashboard(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    """The dashboard for a signed-in user with `dashboard:view`; the access-denied page for anyone else signed in."""
    return _page(DASHBOARD, request, services, session, _dashboard)


@router.get(SIGN_IN, response_model=None)
def sign_in(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    """Sign-in: like Clerk's component, it sends an already signed-in browser on to the dashboard."""
    return _page(SIGN_IN, request, services, session, _sign_in)


@router.get(ADMIN, response_model=None)
def admin(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    """The platform admin page, for the users ADMIN_EMAILS names; the access-denied page for anyone else signed in."""
    return _page(ADMIN, request, services, session, _admin)
