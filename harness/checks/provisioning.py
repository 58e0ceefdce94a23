"""I1: a new user's first requests provision them exactly once, and a first login that fails midway leaves nothing.

Three new Clerk users, each with a session token naming no organisation (so that the target provisions
whatever a first login makes: a user, a personal organisation, its admin grant):

1. **alone**: one first request. Its answer names the user and organisation; what it left in the database
   (its footprint, when the harness may read the database) is the measure for the other two.
2. **racing**: `[provisioning] racers` first requests of one user, released together. Every answer must be 2xx
   and name one user and one organisation, the user must hold the admin role once, a later request must name
   the same, and the footprint must equal the first user's, table by table.
3. **failing midway**: a first request sent with the config's `fail_midway` headers (a test-mode hook that
   breaks the login between creating the organisation and granting its role) must fail and leave no row holding
   the user's id; the next request, without the headers, must provision them as cleanly as the first user.

Through the API alone a half-made user still shows: their next login is refused, or lands them without the
admin role. With the database, leftovers and duplicates are counted as rows.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.together import Footprint, at_once, read_rows, rows_text
from harness.clerk.issuer import Issuer, clerk_id
from harness.config.model import IdentityConfig
from harness.engine.exchange import Caller, Exchange, lookup
from harness.engine.planting import id_text
from harness.target.running import Target

__all__ = ["first_logins"]


@dataclass(frozen=True)
class _Seen:
    """A first login's answer: the user and organisation it named, and the roles it listed."""

    exchange: Exchange
    user: str | None
    org: str | None
    roles: tuple[str, ...] | None

    @property
    def ids(self) -> set[str]:
        return {value for value in (self.user, self.org) if value}


def _read(exchange: Exchange, identity: IdentityConfig) -> _Seen:
    document = exchange.json() if exchange.ok else None
    roles = lookup(document, identity.roles)
    return _Seen(
        exchange,
        id_text(lookup(document, identity.user_id)),
        id_text(lookup(document, identity.org_id)),
        tuple(str(role) for role in roles) if isinstance(roles, list) else None,
    )


def first_logins(
    target: Target,
    issuer: Issuer,
    rng: random.Random,
    transport: httpx.BaseTransport | None,
    footprint: Footprint | None,
) -> Judged:
    """Provision one user alone, one by racing requests, one through a failure midway; judge the three alike."""
    judged = Judged(("I1",))
    identity, admin = target.config.identity, target.config.admin_role
    if identity is None or admin is None:
        return judged.cannot_apply("the config has no [identity] and [roles] admin: a first login cannot be judged")
    study = _Study(target, issuer, identity, admin, transport, footprint, judged)
    measure = study.alone(clerk_id("user", rng))
    if measure is None:
        return judged
    study.racing(clerk_id("user", rng), measure)
    study.failing_midway(clerk_id("user", rng), measure)
    return judged


@dataclass
class _Study:
    target: Target
    issuer: Issuer
    identity: IdentityConfig
    admin: str
    transport: httpx.BaseTransport | None
    footprint: Footprint | None
    judged: Judged

    @property
    def operation(self) -> str:
        return f"GET {self.identity.me}"

    def login(self, sub: str, headers: Mapping[str, str] | None = None) -> _Seen:
        sent = {**self.issuer.mint(sub).headers, **(headers or {})}
        with Caller(self.target.base_url, name=sub, transport=self.transport) as caller:
            return _read(caller.call("GET", self.identity.me, headers=sent), self.identity)

    def rows(self, sub: str, ids: Collection[str]) -> Mapping[str, int] | None:
        """The footprint of `sub` and `ids`, or None (said once) when the database cannot be read."""
        if self.footprint is None:
            return None
        rows = read_rows(self.footprint, {sub, *ids}, self.judged)
        if rows is None:
            self.footprint = None
        return rows

    def alone(self, sub: str) -> Mapping[str, int] | None:
        """The first user's login, made alone: what every other first login is measured against."""
        seen = self.login(sub)
        if self.judged.unanswered(seen.exchange, self.operation, sub):
            return None
        if not seen.exchange.ok or seen.user is None or seen.org is None:
            detail = f"a first login alone did not name its user and organisation: {seen.exchange.line()}"
            self.judged.not_exercised(self.operation, sub, detail, seen.exchange)
            return None
        rows = self.rows(sub, seen.ids)
        if rows is not None and not rows:
            # Nothing holds the user's ids (the reader is kept out by row-level security, or the ids are integers
            # and the Clerk id is not stored): every comparison of rows would be an empty one.
            self.judged.add("the database shows no row of a first login alone: rows are not compared")
            self.footprint, rows = None, None
        self.judged.add(
            f"a first login alone: {seen.exchange.status}, user {seen.user}, organisation {seen.org}, roles "
            f"{list(seen.roles or ())}" + _rows_line(rows)
        )
        return rows if rows is not None else {}

    def racing(self, sub: str, measure: Mapping[str, int]) -> None:
        """`racers` first requests of one user at once: one user, one organisation, one admin grant, all 2xx."""
        racers = self.target.config.provisioning.racers
        answers = self._race(sub, racers)
        statuses = Counter(seen.exchange.status for seen in answers)
        before = len(self.judged.findings)
        failed = [seen for seen in answers if not seen.exchange.ok]
        if failed:
            kind = FindingKind.SERVER_ERROR if any(s.exchange.status >= 500 for s in failed) else None
            detail = f"{len(failed)} of {racers} racing first requests failed ({_statuses(statuses)})"
            self.judged.find(kind or FindingKind.PROVISIONING_RACE, self.operation, sub, detail, failed[0].exchange)
        users = {seen.user for seen in answers if seen.user}
        orgs = {seen.org for seen in answers if seen.org}
        if len(users) > 1 or len(orgs) > 1:
            detail = f"{racers} racing first requests named {len(users)} users and {len(orgs)} organisations"
            self.judged.find(FindingKind.PROVISIONING_RACE, self.operation, sub, detail, answers[0].exchange)
        later = self.login(sub)
        ids = users | orgs | later.ids
        if not self.judged.unanswered(later.exchange, self.operation, sub):
            self._judge_settled(sub, later, users, orgs)
        rows = self.rows(sub, ids)
        if rows is not None and self.footprint is not None and rows != measure:
            detail = f"the race left {rows_text(rows)}; a first login alone leaves {rows_text(measure)}"
            self.judged.find(FindingKind.PROVISIONING_RACE, "rows of the database", sub, detail)
        found = len(self.judged.findings) - before
        self.judged.add(
            f"{racers} racing first requests of {sub}: {_statuses(statuses)}; {len(users)} user(s), {len(orgs)} "
            f"organisation(s) named; then {later.exchange.status}, roles {list(later.roles or ())}"
            + _rows_line(rows)
            + (f": {found} finding(s)" if found else ": the same as a first login alone")
        )

    def _judge_settled(self, sub: str, later: _Seen, users: set[str], orgs: set[str]) -> None:
        """After the race, the user is one user, in one organisation, holding the admin role exactly once."""
        if not later.exchange.ok:
            detail = f"after the race, the user's next request answered {later.exchange.status}"
            self.judged.find(FindingKind.PROVISIONING_RACE, self.operation, sub, detail, later.exchange)
        elif (users and later.user not in users) or (orgs and later.org not in orgs):
            detail = f"after the race, the user is {later.user} in {later.org}: not what the racers were told"
            self.judged.find(FindingKind.PROVISIONING_RACE, self.operation, sub, detail, later.exchange)
        elif later.roles is not None and later.roles.count(self.admin) != 1:
            detail = f"after the race, the user's roles are {list(later.roles)}: {self.admin} not exactly once"
            self.judged.find(FindingKind.PROVISIONING_RACE, self.operation, sub, detail, later.exchange)

    def _race(self, sub: str, racers: int) -> list[_Seen]:
        headers = self.issuer.mint(sub).headers

        def one() -> _Seen:
            with Caller(self.target.base_url, name=sub, transport=self.transport) as caller:
                return _read(caller.call("GET", self.identity.me, headers=headers), self.identity)

        return at_once([one] * racers, name="i1-racer")

    def failing_midway(self, sub: str, measure: Mapping[str, int]) -> None:
        """A first login broken midway leaves nothing of the user, and their next login provisions them cleanly."""
        hook = self.target.config.provisioning.fail_midway
        if not hook:
            detail = (
                "the config names no [provisioning] fail_midway hook: whether a first login that fails midway "
                "leaves a half-made user is not known"
            )
            self.judged.not_exercised(self.operation, sub, detail)
            return
        broken = self.login(sub, hook)
        if self.judged.unanswered(broken.exchange, self.operation, sub):
            return
        if broken.exchange.status < 500:
            # A 2xx did not fail; a 4xx was refused before anything was written: neither is a failure midway.
            detail = f"sent with {sorted(hook)}, the first login did not fail midway: {broken.exchange.line()}"
            self.judged.not_exercised(self.operation, sub, detail, broken.exchange)
            return
        before = len(self.judged.findings)
        left = self.rows(sub, ())
        if left:
            detail = f"a first login that failed midway ({broken.exchange.status}) left {rows_text(left)}"
            self.judged.find(FindingKind.HALF_PROVISIONED, "rows of the database", sub, detail, broken.exchange)
        clean = self.login(sub)
        if self.judged.unanswered(clean.exchange, self.operation, sub):
            return
        if not clean.exchange.ok or clean.roles is None or self.admin not in clean.roles:
            detail = (
                f"after a first login that failed midway, the next one answered {clean.exchange.status} with roles "
                f"{list(clean.roles or ())}, not {self.admin} of a new organisation"
            )
            self.judged.find(FindingKind.HALF_PROVISIONED, self.operation, sub, detail, clean.exchange)
        rows = self.rows(sub, clean.ids)
        if rows is not None and self.footprint is not None and rows != measure:
            detail = (
                f"provisioned after a failure, the user left {rows_text(rows)}; a first login alone leaves "
                f"{rows_text(measure)}"
            )
            self.judged.find(FindingKind.HALF_PROVISIONED, "rows of the database", sub, detail)
        found = len(self.judged.findings) - before
        self.judged.add(
            f"a first login of {sub} failed midway on purpose: {broken.exchange.status}"
            + ("" if left is None else f", leaving {rows_text(left)}")
            + f"; the next one: {clean.exchange.status}, roles {list(clean.roles or ())}"
            + _rows_line(rows)
            + (f": {found} finding(s)" if found else ": nothing was left half-made")
        )


def _statuses(statuses: Counter[int]) -> str:
    return ", ".join(f"{count} x {status or 'no answer'}" for status, count in sorted(statuses.items()))


def _rows_line(rows: Mapping[str, int] | None) -> str:
    return "" if rows is None else f"; rows: {rows_text(rows)}"
