"""A page load, authenticated from Clerk's browser cookies as `@clerk/backend`'s `authenticateRequest` decides it.

A browser is signed out when it has neither `__session` nor `__client_uat` (a `__client_uat` of `0` counts as
none). It is signed in when its session token verifies and was minted no earlier than `__client_uat`. Between
the two lie the states only Clerk's frontend API can resolve, by the *handshake*: a token that expired or is not
valid yet (`nbf` or `iat` in the future, beyond the verifier's 5 s of leeway), a session without `__client_uat` or
the reverse, a token older than `__client_uat`. A document request in such a state is sent to the handshake;
any other request (an API call, a fetch) cannot follow a redirect to another site and is signed out. A token
refused for any other reason (its signature, its issuer, ...) is signed out too: no handshake makes it good.

Clerk's only guard against a handshake that never settles is `__clerk_redirect_count`: the app counts its
handshake redirects in that short-lived cookie and, once three came in a row, treats the browser as signed out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.auth.token import InvalidToken, SessionClaims, TokenVerifier

__all__ = [
    "HANDSHAKE_COOKIE",
    "HANDSHAKE_PARAM",
    "HANDSHAKE_PATH",
    "MAX_HANDSHAKE_REDIRECTS",
    "REDIRECT_COUNT_COOKIE",
    "SESSION_COOKIE",
    "UAT_COOKIE",
    "BrowserSession",
    "handshake_location",
    "is_document_request",
    "read_session",
    "redirect_count",
    "redirect_count_cookie",
    "without_clerk_params",
]

SESSION_COOKIE = "__session"
UAT_COOKIE = "__client_uat"
REDIRECT_COUNT_COOKIE = "__clerk_redirect_count"
HANDSHAKE_PARAM = "__clerk_handshake"
HANDSHAKE_COOKIE = "__clerk_handshake"
HANDSHAKE_PATH = "/v1/client/handshake"
MAX_HANDSHAKE_REDIRECTS = 3
# What Clerk's handshake leaves in the URL it sends the browser back to; the app takes them out again.
CLERK_PARAMS = frozenset({HANDSHAKE_PARAM, "__clerk_handshake_nonce", "__clerk_db_jwt", "__clerk_help"})
# Refusals the handshake can cure: Clerk's frontend API mints a fresh token for a browser it knows.
_CURABLE = {"expired": "session-token-expired", "not_yet_valid": "session-token-not-active-yet"}


@dataclass(frozen=True)
class BrowserSession:
    """What a browser's cookies say: signed in (`claims`), in need of the handshake (`handshake`, Clerk's reason
    for it), or neither: signed out. `expired` marks a token refused only for being expired."""

    claims: SessionClaims | None = None
    handshake: str | None = None
    expired: bool = False


def read_session(cookies: Mapping[str, str], verifier: TokenVerifier) -> BrowserSession:
    """Clerk's decision on a browser's cookies, before it knows what kind of request carried them."""
    token = cookies.get(SESSION_COOKIE) or ""
    client_uat = _client_uat(cookies.get(UAT_COOKIE))
    if not token and not client_uat:
        return BrowserSession()
    if not client_uat:
        return BrowserSession(handshake="session-token-but-no-client-uat")
    if not token:
        return BrowserSession(handshake="client-uat-but-no-session-token")
    try:
        claims = verifier.verify(token)
    except InvalidToken as refused:
        return BrowserSession(handshake=_CURABLE.get(refused.reason), expired=refused.reason == "expired")
    if claims.issued_at < client_uat:  # the client changed (signed out, switched) after this token was minted
        return BrowserSession(handshake="session-token-iat-before-client-uat")
    return BrowserSession(claims=claims)


def _client_uat(raw: str | None) -> int:
    """`__client_uat` as Clerk reads it: unix seconds, and anything that is not a number counts as 0."""
    try:
        return max(int((raw or "").strip()), 0)
    except ValueError:
        return 0


def is_document_request(headers: Mapping[str, str]) -> bool:
    """Whether a request loads a page (Clerk's test): `Sec-Fetch-Dest` document or iframe, or, from a browser too
    old to send that header, an `Accept` that starts with text/html."""
    dest = headers.get("sec-fetch-dest")
    if dest:
        return dest in {"document", "iframe"}
    return headers.get("accept", "").startswith("text/html")


def redirect_count(cookies: Mapping[str, str]) -> int:
    """How many handshake redirects this browser made in the last moments (`__clerk_redirect_count`, 0 if none)."""
    try:
        return max(int(cookies.get(REDIRECT_COUNT_COOKIE, "0")), 0)
    except ValueError:
        return 0


def redirect_count_cookie(count: int) -> str:
    """The Set-Cookie value counting one more handshake redirect, as Clerk writes it (it lives two seconds)."""
    return f"{REDIRECT_COUNT_COOKIE}={count}; SameSite=Lax; HttpOnly; Max-Age=2"


def handshake_location(frontend_api_host: str, current_url: str, reason: str) -> str:
    """Where Clerk sends a browser to resolve its session: the frontend API's handshake, over https, told to come
    back to `current_url` (without what an earlier handshake left in it) and why it was sent."""
    query = urlencode({"redirect_url": without_clerk_params(current_url), "__clerk_hs_reason": reason})
    return f"https://{frontend_api_host}{HANDSHAKE_PATH}?{query}"


def without_clerk_params(url: str) -> str:
    """`url` without the query parameters Clerk's handshake adds (`__clerk_handshake`, `__clerk_db_jwt`, ...)."""
    parts = urlsplit(url)
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name not in CLERK_PARAMS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
