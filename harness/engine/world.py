"""The world model: organisations, the principals in them, and the records planted in each.

Fixtures build it on a target through the target's own public flows; scenarios and the fuzzer read
it. A principal is data: a name, an organisation, a role (None: a member with no role) and the
credentials it presents, whatever they are (a minted Clerk session, static headers, a login).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.clerk.issuer import ActiveOrg, Issuer
from harness.engine.exchange import Caller

__all__ = [
    "ANONYMOUS",
    "Canary",
    "ClerkCredentials",
    "Credentials",
    "NoCredentials",
    "Org",
    "Principal",
    "StaticCredentials",
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

    def headers(self) -> dict[str, str]:
        return self.issuer.mint(self.sub, org=self.org).headers

    def cookies(self) -> dict[str, str]:
        return self.issuer.mint(self.sub, org=self.org).cookies


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed headers and cookies, as a config file declares them (API keys, long-lived tokens)."""

    static_headers: tuple[tuple[str, str], ...] = ()
    static_cookies: tuple[tuple[str, str], ...] = ()

    def headers(self) -> dict[str, str]:
        return dict(self.static_headers)

    def cookies(self) -> dict[str, str]:
        return dict(self.static_cookies)


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

    def caller(self, base_url: str) -> Caller:
        """An HTTP caller presenting this principal's credentials."""
        return Caller(base_url, self.credentials.headers(), name=self.name)


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


@dataclass
class World:
    """Everything built for the run."""

    orgs: dict[str, Org]
    problems: list[str] = field(default_factory=list)

    def org(self, key: str) -> Org:
        """An organisation by key (`org1`, `org2`)."""
        return self.orgs[key]

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


def fill_template(template: Any, values: dict[str, Any]) -> Any:
    """A template with `{name}` placeholders filled, recursively; a string that is one placeholder whole
    takes the value as it is (so `"{roles}"` can become a list)."""
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        for key, value in values.items():
            if isinstance(value, str):
                template = template.replace("{" + key + "}", value)
        return template
    if isinstance(template, dict):
        return {k: fill_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_template(v, values) for v in template]
    return template
