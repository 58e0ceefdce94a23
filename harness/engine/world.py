"""The world model: organisations, the principals in them, and the records planted in each.

Fixtures build it on a target through the target's own public flows; scenarios and the fuzzer read
it. A principal is data: a name, an organisation, a role (None: a member with no role) and the
credentials it presents, whatever they are (a minted Clerk session, static headers, a login).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from harness.clerk.issuer import ActiveOrg, Issuer, SessionToken
from harness.config.model import LoginConfig
from harness.config.placeholders import fill_template
from harness.engine.exchange import REQUEST_TIMEOUT, Caller, lookup

__all__ = [
    "ANONYMOUS",
    "Canary",
    "ClerkCredentials",
    "Credentials",
    "LoginCredentials",
    "NoCredentials",
    "Org",
    "Principal",
    "StaticCredentials",
    "Tag",
    "World",
    "fill_template",
]


class Credentials(Protocol):
    """How a principal proves who it is, to the API and to pages."""

    def headers(self) -> dict[str, str]:
        """Headers for an API request."""
        ...

    def cookies(self) -> dict[str, str]:
        """Cookies for a browser."""
        ...


@dataclass(frozen=True)
class ClerkCredentials:
    """A Clerk session minted afresh for each use (Clerk's session tokens live 60 s)."""

    issuer: Issuer
    sub: str
    org: ActiveOrg | None
    sid: str | None = None  # one session across switches of the active organisation; None: a new one each time

    def mint(self) -> SessionToken:
        """A newly minted Clerk token for this user and organisation (under `sid` when one is set)."""
        return self.issuer.mint(self.sub, org=self.org, sid=self.sid)

    def headers(self) -> dict[str, str]:
        return self.mint().headers

    def cookies(self) -> dict[str, str]:
        return self.mint().cookies


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed headers and cookies, as a config file declares them (API keys, long-lived tokens)."""

    static_headers: tuple[tuple[str, str], ...] = ()
    static_cookies: tuple[tuple[str, str], ...] = ()

    def headers(self) -> dict[str, str]:
        return dict(self.static_headers)

    def cookies(self) -> dict[str, str]:
        return dict(self.static_cookies)


# A token is renewed this long before it expires (a fifth of its life for short-lived ones), and never
# sooner than a second after it was issued, so that a token already expired on arrival (clock skew) does not
# make every request log in again.
RENEW_MARGIN = 30.0
MIN_REUSE = 1.0


@dataclass
class _Session:
    """The login's mutable part: the current token and when to log in again (wall-clock seconds)."""

    token: str | None = None
    renew_at: float | None = None  # None: the token does not say it expires
    failure: str | None = None  # why the last login failed, if it did
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class LoginCredentials(StaticCredentials):
    """A principal's login, run when its headers are first needed and again shortly before its token expires
    (the answer's `expires_in`, or the token's own `exp` when it is a JWT).

    It is a StaticCredentials whose static headers and cookies are the last login's, so that whatever reads a
    principal's presented token (C1 re-signs a login's JWT) sees the current one. One login at a time: threads
    needing headers while a login runs wait for its token.
    """

    base_url: str
    login_config: LoginConfig
    values: Mapping[str, Any]
    name: str
    _transport: httpx.BaseTransport | None
    _clock: Callable[[], float]
    _session: _Session

    def __init__(
        self,
        base_url: str,
        login: LoginConfig,
        values: Mapping[str, Any],
        *,
        name: str,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The base is frozen: these are set once here, and the headers by each login (see `_present`).
        for key, value in {
            "static_headers": (), "static_cookies": (), "base_url": base_url, "login_config": login,
            "values": dict(values), "name": name, "_transport": transport, "_clock": clock, "_session": _Session(),
        }.items():  # fmt: skip
            object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        return f"LoginCredentials({self.name!r}, {self.login_config.request})"  # never the token

    @property
    def token(self) -> str | None:
        """The current token (None before the first login or after a failed one)."""
        return self._session.token

    @property
    def renew_at(self) -> float | None:
        """When the next login is due (wall-clock seconds); None when the token does not expire."""
        return self._session.renew_at

    @property
    def failure(self) -> str | None:
        """Why the last login failed, if it did."""
        return self._session.failure

    def body_value(self, name: str) -> str:
        """What its login body sends as `name` (what a person would type into the sign-in form's field)."""
        return str(fill_template(self.login_config.body, self.values)[name])

    def login(self) -> str | None:
        """Log in now; None when it gave a token, else the answer that did not."""
        with self._session.lock:
            return self._login()

    def headers(self) -> dict[str, str]:
        """The headers presenting a current token, logging in first when none is or it is about to expire."""
        self._fresh()
        return dict(self.static_headers)

    def cookies(self) -> dict[str, str]:
        """The cookies presenting a current token (for a login presented as a cookie)."""
        self._fresh()
        return dict(self.static_cookies)

    def _fresh(self) -> None:
        session = self._session
        with session.lock:
            due = session.renew_at is not None and self._clock() >= session.renew_at
            if session.token is None or due:
                self._login()  # on failure the last token stays presented: the target's 401 then says it all

    def _login(self) -> str | None:
        login, session = self.login_config, self._session
        path = str(fill_template(login.request.path, self.values))
        body = fill_template(login.body, self.values)
        sent = {"data": body} if login.content_type == "form" else {"json": body}
        where = f"{login.request.method} {path}"
        try:
            with httpx.Client(base_url=self.base_url, transport=self._transport, timeout=REQUEST_TIMEOUT) as client:
                answer = client.request(login.request.method, path, **sent)
        except httpx.TransportError as exc:
            session.failure = f"{where} -> no answer ({type(exc).__name__}: {exc})"
            return session.failure
        token = _token_of(login, answer) if answer.is_success else None
        if token is None:
            excerpt = " ".join(answer.text.split())[:200]
            missing = "" if not answer.is_success else f" (no token at {_token_place(login)})"
            session.failure = f"{where} -> {answer.status_code} {excerpt}".rstrip() + missing
            return session.failure
        now = self._clock()
        session.token, session.failure, session.renew_at = token, None, _renew_at(answer, token, now)
        self._present(token)
        return None

    def _present(self, token: str) -> None:
        login = self.login_config
        if login.cookie is not None:
            object.__setattr__(self, "static_headers", (("Cookie", f"{login.cookie}={token}"),))
            object.__setattr__(self, "static_cookies", ((login.cookie, token),))
        else:
            object.__setattr__(self, "static_headers", ((login.header, login.prefix + token),))

    def state(self) -> dict[str, Any]:
        """The login as JSON-safe data, for the workers of a parallel run (the current token included)."""
        return {
            "base_url": self.base_url,
            "name": self.name,
            "login": self.login_config.model_dump(mode="json", by_alias=True, exclude_unset=True),
            "values": dict(self.values),
            "token": self._session.token,
            "renew_at": self._session.renew_at,
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any], transport: httpx.BaseTransport | None = None) -> LoginCredentials:
        """The login `state()` described, its token presented until it is due for renewal."""
        restored = cls(
            data["base_url"], LoginConfig.model_validate(data["login"]), data["values"], name=data["name"],
            transport=transport,
        )  # fmt: skip
        if data.get("token"):
            restored._session.token, restored._session.renew_at = data["token"], data.get("renew_at")
            restored._present(data["token"])
        return restored


def _token_place(login: LoginConfig) -> str:
    if login.token is not None:
        return f"token = {login.token!r}"
    return f"token_header = {login.token_header!r}" if login.token_header else f"token_cookie = {login.token_cookie!r}"


def _token_of(login: LoginConfig, answer: httpx.Response) -> str | None:
    """The token where the login config says the answer carries it."""
    if login.token is not None:
        try:
            found = lookup(answer.json(), login.token)
        except ValueError:
            return None
    elif login.token_header is not None:
        found = answer.headers.get(login.token_header)
    else:
        found = answer.cookies.get(login.token_cookie or "")
    return found if isinstance(found, str) and found else None


def _renew_at(answer: httpx.Response, token: str, now: float) -> float | None:
    """When to log in again: before `expires_in` (seconds) of a JSON answer, else before the JWT's `exp`."""
    try:
        document = answer.json()
    except ValueError:
        document = None
    expires_in = document.get("expires_in") if isinstance(document, dict) else None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        lifetime = float(expires_in)
    elif (exp := _jwt_exp(token)) is not None:
        lifetime = exp - now
    else:
        return None
    return now + max(lifetime - min(RENEW_MARGIN, lifetime / 5), MIN_REUSE)


def _jwt_exp(token: str) -> float | None:
    """The `exp` claim of a JWT, read without verifying it (only to know when to log in again)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


@dataclass(frozen=True)
class NoCredentials:
    """An anonymous caller."""

    def headers(self) -> dict[str, str]:
        return {}

    def cookies(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class Principal:
    """Someone the harness acts as."""

    name: str
    org: str | None  # the organisation's key in the world; None for anonymous
    role: str | None  # a role name; None for a member with no role (or anonymous)
    credentials: Credentials = field(hash=False, compare=False)
    user_id: str | None = None  # the target's own id for this user, where it told us

    @property
    def anonymous(self) -> bool:
        """Whether this is the caller with no credentials."""
        return self.org is None

    def caller(self, base_url: str, transport: httpx.BaseTransport | None = None) -> Caller:
        """An HTTP caller presenting this principal's credentials (through `transport`, if given)."""
        return Caller(base_url, self.credentials.headers(), name=self.name, transport=transport)


ANONYMOUS = Principal("anonymous", None, None, NoCredentials())


@dataclass(frozen=True)
class Canary:
    """A record planted in one organisation; its marker must never show outside it."""

    org: str
    resource: str  # the config's key for the resource type
    marker: str
    id: str
    read_path: str
    snapshot: Any  # the record as its owner read it right after creating it
    handles: tuple[str, ...] = ()  # identifier markers ({handle}): a public operation may show them to anyone


@dataclass
class Org:
    """One organisation of the world and who is in it."""

    key: str
    principals: list[Principal] = field(default_factory=list)
    id: str | None = None  # the target's own id for it
    canaries: list[Canary] = field(default_factory=list)  # protected: only ever attacked, never changed
    scratch: list[Canary] = field(default_factory=list)  # its own principals may change or delete these
    probes: set[str] = field(default_factory=set)  # markers the fuzzer wrote as this organisation's principals

    def principal(self, role: str | None) -> Principal | None:
        """The principal of this organisation with `role` (None: the member with no role)."""
        return next((p for p in self.principals if p.role == role), None)

    @property
    def owner(self) -> Principal:
        """The organisation's first user."""
        return self.principals[0]

    @property
    def member_without_role(self) -> Principal | None:
        """The member with no role, if the world could add one."""
        return self.principal(None)


@dataclass(frozen=True)
class Tag:
    """The probe that wrote one tag: found in a victim's state, it names who wrote it there, and how."""

    operation: str  # `METHOD /path/{template}`
    principal: str
    description: str  # "north member's PUT /x/{id} aimed at south (foreign-id: south's id=4)"


@dataclass
class World:
    """Everything built for the run."""

    orgs: dict[str, Org]
    problems: list[str] = field(default_factory=list)
    # The declared principals whose login failed, each as "[[principals]] <n> (<name>): <why>": the config's
    # credentials do not work on this target, so nothing the run could go on to decide would mean anything.
    refused_logins: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)  # what no answer may carry: the passwords the run registered
    tags: dict[str, Tag] = field(default_factory=dict)  # a tag written by a cross-organisation probe -> that probe

    def handles(self, key: str) -> set[str]:
        """One organisation's identifier markers: a public operation may show them, nothing else may."""
        org = self.orgs[key]
        return {h for c in [*org.canaries, *org.scratch] for h in c.handles}

    def org(self, key: str) -> Org:
        """An organisation by key (`org1`, `org2`)."""
        return self.orgs[key]

    def nth(self, n: int) -> Org:
        """The `n`-th organisation (0: the first), in the order the world was built: `org1`, `org2` for a Clerk
        world, the order the config first names them in for declared principals (`north`, `south`)."""
        keys = list(self.orgs)
        if n >= len(keys):
            raise LookupError(f"the world has {len(keys)} organisation(s), not {n + 1}: {self.incomplete()}")
        return self.orgs[keys[n]]

    def markers(self, key: str) -> set[str]:
        """What must never show outside one organisation: its records' markers and its users' Clerk ids."""
        org = self.orgs[key]
        subs = {p.credentials.sub for p in org.principals if isinstance(p.credentials, ClerkCredentials)}
        return {c.marker for c in [*org.canaries, *org.scratch]} | subs

    def principals(self) -> list[Principal]:
        """Every principal of every organisation, then anonymous."""
        return [p for org in self.orgs.values() for p in org.principals] + [ANONYMOUS]

    def incomplete(self) -> str:
        """Why the world is not whole, for failure messages."""
        return "world incomplete: " + ("; ".join(self.problems) or "nothing recorded")
