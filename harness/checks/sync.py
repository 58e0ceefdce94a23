"""I2: Clerk's organisation sync makes one organisation per Clerk organisation, whatever Clerk's delivery does.

The harness tells the target a story as Clerk would, through its webhook endpoint (`[webhooks] clerk`, svix-signed
with the target's secret): organisations created and renamed twice, three members each (one promoted, some
removed), some organisations deleted, and the users behind them. Delivery is as Clerk's: at least once (a fifth
of the deliveries are sent again with the same svix id), in no order (shuffled, sent by several senders at
once), and some deliveries replayed ten times at the same moment. Then, one at a time:

- a first login carrying a new organisation's `o.id` races that organisation's `organization.created` and its
  creator's membership;
- an update older than the organisation's last one is delivered late (it must not win);
- a deleted organisation gets a newer update and a membership (it must stay deleted);
- a membership arrives before its organisation (it must be kept);
- a delivery is replayed with its svix id, and deliveries signed with another secret or ten minutes ago are sent
  (they must be refused and change nothing).

Judged by the end state, as Clerk would have it: every live member signs in to their organisation and gets the
role Clerk's last word gives (`[webhooks] roles`) and its last name; a removed member, or any member of a deleted
organisation, is refused; the members of one Clerk organisation all land in one organisation of the target, and
no two Clerk organisations share one. Where the harness may read the database, each organisation's rows (those
holding its Clerk id) and each member's are counted against one organisation delivered once: a duplicate shows
as a second row.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.together import Footprint, at_once, read_rows, rows_text
from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.clerk.webhooks import ClerkWebhooks, membership_data, new_secret, organization_data
from harness.config.model import IdentityConfig
from harness.engine.exchange import Caller, lookup
from harness.engine.planting import id_text
from harness.target.running import Target

__all__ = ["STORM", "Storm", "organisation_sync"]


@dataclass(frozen=True)
class Storm:
    """The size of the story and of its delivery."""

    organisations: int = 36
    deliveries: int = 500  # the events once each, then duplicates (same svix id) up to this many
    bursts: int = 5  # deliveries replayed `copies` times at once
    copies: int = 10
    senders: int = 8  # deliveries sent at the same time


STORM = Storm()
T0 = 1_700_000_000_000  # Clerk's times are ms since the epoch; the story's start


@dataclass
class _Member:
    sub: str
    membership: str  # Clerk's membership id
    role: str  # Clerk's last word on the role
    removed: bool = False


@dataclass
class _Org:
    id: str
    name: str  # Clerk's last word on the name
    members: list[_Member]
    deleted: bool = False

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


@dataclass(frozen=True)
class _Event:
    type: str
    data: dict[str, Any]
    msg_id: str


def _event(rng: random.Random, event_type: str, data: dict[str, Any]) -> _Event:
    return _Event(event_type, data, "msg_" + "".join(rng.choice("0123456789abcdef") for _ in range(26)))


def _user(rng: random.Random, sub: str) -> _Event:
    return _event(rng, "user.created", {"object": "user", "id": sub, "created_at": T0, "updated_at": T0})


def _deleted(rng: random.Random, kind: str, clerk_id_: str) -> _Event:
    obj = "organization" if kind == "organization" else "organization_membership"
    return _event(rng, f"{kind}.deleted", {"object": obj, "id": clerk_id_, "deleted": True})


def _organisation(rng: random.Random, index: int) -> tuple[_Org, list[_Event]]:
    """One organisation's story: created, renamed twice, three members (the second promoted), and in some of them
    the third member removed or the whole organisation deleted."""
    org_id = clerk_id("org", rng)
    names = [f"sync {org_id[-8:].lower()} v{version}" for version in range(3)]
    versions = [organization_data(org_id, name, T0 + 1000 * k) for k, name in enumerate(names)]
    members = [_Member(clerk_id("user", rng), clerk_id("orgmem", rng), role) for role in ("org:admin", "org:member")]
    members.append(_Member(clerk_id("user", rng), clerk_id("orgmem", rng), "org:member"))
    events = [
        _event(rng, "organization.created", versions[0]),
        *(_event(rng, "organization.updated", version) for version in versions[1:]),
    ]
    for k, member in enumerate(members):
        events.append(_user(rng, member.sub))
        data = membership_data(member.membership, versions[0], member.sub, member.role, T0 + 10 + k)
        events.append(_event(rng, "organizationMembership.created", data))
    members[1].role = "org:admin"  # promoted
    for member in members[1:]:
        data = membership_data(member.membership, versions[2], member.sub, member.role, T0 + 4000)
        events.append(_event(rng, "organizationMembership.updated", data))
    org = _Org(org_id, names[2], members)
    if index % 5 == 0:
        members[2].removed = True
        events.append(_deleted(rng, "organizationMembership", members[2].membership))
    if index % 9 == 8:
        org.deleted = True
        events.append(_deleted(rng, "organization", org_id))
    return org, events


@dataclass
class _Study:
    target: Target
    issuer: Issuer
    identity: IdentityConfig
    roles: Mapping[str, str]
    sender: ClerkWebhooks
    transport: httpx.BaseTransport | None
    footprint: Footprint | None
    judged: Judged
    rng: random.Random
    storm: Storm
    statuses: Counter[int] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)  # valid deliveries the target did not take
    lock: threading.Lock = field(default_factory=threading.Lock)  # the senders count at once

    @property
    def delivery(self) -> str:
        return f"POST {self.sender.url.removeprefix(self.target.base_url.rstrip('/'))}"

    def send(self, event: _Event, *, sender: ClerkWebhooks | None = None, at: datetime | None = None) -> int:
        """Deliver one event; its status (0: no answer). A valid delivery that is not taken is remembered."""
        try:
            status = (sender or self.sender).send(event.type, event.data, msg_id=event.msg_id, at=at).status_code
        except httpx.HTTPError:
            status = 0
        if sender is None and at is None:
            with self.lock:
                self.statuses[status] += 1
                if not 200 <= status < 300:
                    self.refused.append(f"{event.type} {event.msg_id} -> {status or 'no answer'}")
        return status

    def send_all(self, events: Sequence[_Event]) -> None:
        with ThreadPoolExecutor(max_workers=self.storm.senders, thread_name_prefix="i2-sender") as pool:
            list(pool.map(self.send, events))

    def at_once(self, event: _Event, copies: int) -> None:
        """`copies` deliveries of one event (one svix id), released together."""
        at_once([lambda: self.send(event)] * copies, name="i2-replay")

    def sign_in(self, org: _Org, sub: str, role: str) -> tuple[int, str | None, str | None, list[str] | None]:
        """A member's who-am-I with `org` active: status, organisation id and name named, roles listed."""
        session = ActiveOrg(org.id, org.slug, role.removeprefix("org:"))
        with Caller(self.target.base_url, name=sub, transport=self.transport) as caller:
            seen = caller.call("GET", self.identity.me, headers=self.issuer.mint(sub, org=session).headers)
        document = seen.json() if seen.ok else None
        roles = lookup(document, self.identity.roles)
        return (
            seen.status,
            id_text(lookup(document, self.identity.org_id)),
            id_text(lookup(document, self.identity.org_name)),
            [str(r) for r in roles] if isinstance(roles, list) else None,
        )

    def rows(self, values: Collection[str]) -> Mapping[str, int] | None:
        if self.footprint is None:
            return None
        rows = read_rows(self.footprint, values, self.judged)
        if rows is None:
            self.footprint = None
        return rows


def organisation_sync(
    target: Target,
    issuer: Issuer,
    rng: random.Random,
    transport: httpx.BaseTransport | None,
    footprint: Footprint | None,
    storm: Storm = STORM,
) -> Judged:
    """Tell the target a story through Clerk's webhooks, delivered as Clerk delivers; judge the end state."""
    judged = Judged(("I2",))
    webhooks, identity, admin = target.config.webhooks, target.config.identity, target.config.admin_role
    if webhooks is None or identity is None or admin is None:
        return judged.cannot_apply("the config has no [webhooks], [identity] and [roles] admin: nothing to sync")
    if target.webhook_secret is None:
        detail = f"[webhooks] is configured but ${webhooks.secret_env} holds no signing secret"
        judged.not_exercised(f"POST {webhooks.clerk}", "Clerk", detail)
        return judged
    roles = dict(webhooks.roles) or {"org:admin": admin}
    sender = ClerkWebhooks(target.base_url, webhooks.clerk, target.webhook_secret, issuer.kid, transport=transport)
    study = _Study(target, issuer, identity, roles, sender, transport, footprint, judged, rng, storm)
    measure = _baseline(study)
    if measure is None:
        return judged
    orgs, events = [], []
    for index in range(storm.organisations):
        org, told = _organisation(rng, index)
        orgs.append(org)
        events.extend(told)
    duplicates = rng.choices(events, k=max(0, storm.deliveries - len(events)))
    deliveries = [*events, *duplicates]
    rng.shuffle(deliveries)
    half = len(deliveries) // 2
    study.send_all(deliveries[:half])
    for event in rng.sample(events, min(storm.bursts, len(events))):
        study.at_once(event, storm.copies)
    study.send_all(deliveries[half:])
    judged.add(
        f"{len(deliveries) + storm.bursts * storm.copies} deliveries: {len(events)} events of {len(orgs)} "
        f"organisations and {sum(len(o.members) for o in orgs)} memberships, {len(duplicates)} sent again with "
        f"their svix id, "
        f"{storm.bursts} replayed {storm.copies} times at once; shuffled, {storm.senders} senders at a time; answers: "
        + ", ".join(f"{count} x {status or 'no answer'}" for status, count in sorted(study.statuses.items()))
    )
    orgs.append(_racing_first_login(study))
    orgs.append(_membership_first(study))
    _late_and_forged(study, orgs, events)
    if study.refused:
        detail = f"{len(study.refused)} valid deliveries were not taken (Clerk retries them): {study.refused[0]}"
        kind = FindingKind.SERVER_ERROR if any(" -> 5" in r for r in study.refused) else FindingKind.SYNC_DIVERGED
        judged.find(kind, study.delivery, "Clerk", detail)
    _judge_end_state(study, orgs, measure)
    return judged


def _baseline(study: _Study) -> Mapping[str, int] | None:
    """One organisation and its creator, each event delivered once: the rows holding its Clerk id are what every
    organisation is measured against (an empty mapping without the database); None when even this fails."""
    rng, judged = study.rng, study.judged
    org_id, sub = clerk_id("org", rng), clerk_id("user", rng)
    data = organization_data(org_id, f"sync {org_id[-8:].lower()} base", T0)
    told = [
        _event(rng, "organization.created", data),
        _user(rng, sub),
        _event(
            rng, "organizationMembership.created", membership_data(clerk_id("orgmem", rng), data, sub, "org:admin", T0)
        ),
    ]
    answers = [study.send(event) for event in told]
    org = _Org(org_id, data["name"], [_Member(sub, told[2].data["id"], "org:admin")])
    status, named, _, roles = study.sign_in(org, sub, "org:admin")
    if status == 0:
        judged.not_exercised(f"GET {study.identity.me}", sub, "no answer to the synced creator's first login")
        return None
    if any(not 200 <= answer < 300 for answer in answers) or status != 200 or named is None:
        detail = f"one organisation delivered once: deliveries {answers}, then its creator's login {status}"
        judged.not_exercised(study.delivery, "Clerk", detail)
        return None
    rows = study.rows({org_id})
    if rows is not None and not rows:  # nothing holds the Clerk id where the harness may read: nothing to count
        judged.add("the database shows no row holding the organisation's Clerk id: rows are not compared")
        study.footprint, rows = None, None
    judged.add(
        f"one organisation delivered once (organization.created, user.created, organizationMembership.created): "
        f"{answers}; its creator signs in: {status}, roles {roles}"
        + ("" if rows is None else f"; rows holding its Clerk id: {rows_text(rows)}")
    )
    return rows or {}


def _racing_first_login(study: _Study) -> _Org:
    """A first login carrying a new organisation's `o.id`, its `organization.created` and its creator's membership,
    all at once."""
    rng = study.rng
    org_id, sub = clerk_id("org", rng), clerk_id("user", rng)
    data = organization_data(org_id, f"sync {org_id[-8:].lower()} raced", T0)
    member = _Member(sub, clerk_id("orgmem", rng), "org:admin")
    org = _Org(org_id, data["name"], [member])
    told = [
        _event(rng, "organization.created", data),
        _event(rng, "organizationMembership.created", membership_data(member.membership, data, sub, "org:admin", T0)),
    ]
    steps: list[Callable[[], object]] = [
        lambda: study.sign_in(org, sub, "org:admin")[0],
        lambda: study.send(told[0]),
        lambda: study.send(told[1]),
    ]
    first = at_once(steps, name="i2-race")[0]
    study.judged.add(f"a first login with {org_id} active raced its organization.created and membership: {first}")
    return org


def _membership_first(study: _Study) -> _Org:
    """A member's `organizationMembership.created` delivered before its organisation's `organization.created`."""
    rng = study.rng
    org_id = clerk_id("org", rng)
    data = organization_data(org_id, f"sync {org_id[-8:].lower()} late", T0)
    creator = _Member(clerk_id("user", rng), clerk_id("orgmem", rng), "org:admin")
    member = _Member(clerk_id("user", rng), clerk_id("orgmem", rng), "org:member")
    for who in (member, creator):
        study.send(
            _event(rng, "organizationMembership.created", membership_data(who.membership, data, who.sub, who.role, T0))
        )
    study.send(_event(rng, "organization.created", data))
    return _Org(org_id, data["name"], [creator, member])


def _late_and_forged(study: _Study, orgs: list[_Org], events: Sequence[_Event]) -> None:
    """An older update of a live organisation; a newer update and membership of a deleted one; a replay; and
    deliveries signed with another secret or ten minutes ago."""
    rng, judged = study.rng, study.judged
    live = next(org for org in orgs if not org.deleted)
    gone = next((org for org in orgs if org.deleted), None)
    study.send(_event(rng, "organization.updated", organization_data(live.id, "stale name", T0 + 500)))
    late = [f"an older update of {live.id}"]
    if gone is not None:
        revived = organization_data(gone.id, "revived", T0 + 9000)
        study.send(_event(rng, "organization.updated", revived))
        creator = gone.members[0]
        data = membership_data(creator.membership, revived, creator.sub, creator.role, T0 + 9000)
        study.send(_event(rng, "organizationMembership.updated", data))
        late.append(f"a newer update and membership of the deleted {gone.id}")
    created = next(e for e in events if e.type == "organization.created" and e.data["id"] == live.id)
    study.send(created)
    late.append(f"{live.id}'s organization.created again with its svix id {created.msg_id}")
    # Forged: a stranger joins `live` as its admin, and renames it.
    stranger = _Member(clerk_id("user", rng), clerk_id("orgmem", rng), "org:admin")
    join = _event(
        rng,
        "organizationMembership.created",
        membership_data(
            stranger.membership, organization_data(live.id, "forged", T0 + 8000), stranger.sub, "org:admin", T0 + 8000
        ),
    )
    rename = _event(rng, "organization.updated", organization_data(live.id, "forged", T0 + 8000))
    other = ClerkWebhooks(
        study.target.base_url,
        study.sender.url.removeprefix(study.target.base_url.rstrip("/")),
        new_secret(),
        study.issuer.kid,
        transport=study.transport,
    )
    forged = {
        "signed with another secret": [study.send(e, sender=other) for e in (join, rename)],
        "signed 10 minutes ago": [
            study.send(e, at=datetime.now(tz=UTC) - timedelta(minutes=10)) for e in (join, rename)
        ],
    }
    for label, answers in forged.items():
        if any(not 400 <= answer < 500 for answer in answers):
            detail = f"deliveries {label} were not refused: {answers}"
            judged.find(FindingKind.FORGED_WEBHOOK_ACCEPTED, study.delivery, "Clerk (forged)", detail)
    status = study.sign_in(live, stranger.sub, "org:admin")[0]
    if status == 200:
        detail = f"a stranger whose membership of {live.id} came only in forged deliveries signed in to it"
        judged.find(FindingKind.FORGED_WEBHOOK_ACCEPTED, study.delivery, "Clerk (forged)", detail)
    judged.add(
        "then, one at a time: " + "; ".join(late) + "; a membership and a rename signed with another secret and "
        f"10 minutes ago: {forged}; the stranger they name signs in: {status}"
    )


def _judge_end_state(study: _Study, orgs: Sequence[_Org], measure: Mapping[str, int]) -> None:
    """Every member as Clerk has it: live members in, with Clerk's role and name; the removed and the deleted out;
    one organisation of the target per Clerk organisation; rows as for one organisation delivered once."""
    judged = study.judged
    problems: dict[str, list[str]] = defaultdict(list)
    named_by: dict[str, set[str]] = defaultdict(set)  # Clerk organisation -> the target's ids its members named
    signed, kept_out = 0, 0
    for org in orgs:
        for member in org.members:
            status, org_key, name, roles = study.sign_in(org, member.sub, member.role)
            where = f"{member.sub} in {org.id}"
            if status == 0 or status == 401 or status >= 500:
                # Not an answer about membership: no answer, a session refused outright, or the target failing.
                problems["no answer about membership" if status in (0, 401) else "a server error"].append(
                    f"{where}: {status or 'no answer'}"
                )
            elif org.deleted or member.removed:
                why = "deleted organisation" if org.deleted else "removed member"
                if 200 <= status < 300:
                    problems[f"signed in to a {why}"].append(where)
                else:
                    kept_out += 1
            elif status != 200:
                problems["a member refused"].append(f"{where}: {status}")
            else:
                signed += 1
                if org_key is not None:
                    named_by[org.id].add(org_key)
                wrong_name = f"{org.id} named {name!r}, not {org.name!r}"
                if name is not None and name != org.name and wrong_name not in problems["not Clerk's last name"]:
                    problems["not Clerk's last name"].append(wrong_name)
                expected = study.roles.get(member.role)
                if expected is not None and roles is not None and roles != [expected]:
                    problems["not Clerk's last role"].append(f"{where}: {roles}, not [{expected!r}]")
    split = {org_id: ids for org_id, ids in named_by.items() if len(ids) > 1}
    for org_id, ids in split.items():
        detail = f"the members of {org_id} landed in {len(ids)} organisations of the target: {sorted(ids)}"
        judged.find(FindingKind.SYNC_DUPLICATE, f"GET {study.identity.me}", "members", detail)
    owners = Counter(next(iter(ids)) for ids in named_by.values() if len(ids) == 1)
    if shared := [key for key, count in owners.items() if count > 1]:
        problems["two Clerk organisations in one"].append(f"organisation {shared[0]}")
    for what, seen in problems.items():
        if not seen:
            continue
        detail = f"{what}: {len(seen)} ({'; '.join(seen[:3])})"
        kind = {
            "a server error": FindingKind.SERVER_ERROR,
            "no answer about membership": FindingKind.NOT_EXERCISED,
        }.get(what, FindingKind.SYNC_DIVERGED)
        judged.find(kind, f"GET {study.identity.me}", "members", detail)
    rows_line = _count_rows(study, orgs, measure)
    live = [org for org in orgs if not org.deleted]
    judged.add(
        f"end state: {len(live)} live organisations of {len(orgs)}; {signed} members signed in, named "
        f"{len(owners)} organisations of the target, one per Clerk organisation; {kept_out} kept out (removed, or "
        f"of a deleted organisation)"
        + rows_line
        + (f": {len(judged.findings)} finding(s)" if judged.findings else ": as Clerk has it")
    )


def _count_rows(study: _Study, orgs: Sequence[_Org], measure: Mapping[str, int]) -> str:
    """Each organisation's rows against one delivered once; '' without the database."""
    if study.footprint is None:
        return ""
    more = []
    for org in orgs:
        rows = study.rows({org.id})
        if rows is None:
            return ""
        if any(count > measure.get(table, 0) for table, count in rows.items()):
            more.append(f"{org.id}: {rows_text(rows)}")
    if more:
        detail = (
            f"{len(more)} organisations hold more rows than one delivered once ({rows_text(measure)}): "
            + "; ".join(more[:3])
        )
        study.judged.find(FindingKind.SYNC_DUPLICATE, "rows of the database", "Clerk", detail)
    return (
        f"; by rows, {len(orgs) - len(more)} of {len(orgs)} organisations as one delivered once ({rows_text(measure)})"
    )
