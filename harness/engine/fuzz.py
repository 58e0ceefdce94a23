"""The fuzz engine: every operation of the schema, as every principal of the world, in families of probes.

It schedules and sends; it judges nothing. For each operation (in a fixed order) the organisations run
side by side, each one's principals in turn, and each principal sends: every generated case on its own
organisation's scratch records (the role matrix); then, against every other organisation, its ids in
the path (with a control id of the parameter's type that nobody has), its records in the body's
reference fields, privileged fields aimed at it, an org-switching header and parameter, the caller's
session naming it, and searches for its values; and malformed ids. After every operation, each
organisation's owner re-reads its canaries and its lists. Each probe and state read is handed to the
callbacks as it completes. Nothing the config lists under `never` is scheduled (and the transport refuses
it besides); budgets and a target that stops answering end the run early, as partial coverage, never as
an exception.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from harness.config.model import SetupRequest, TargetConfig
from harness.config.operations import unmatched
from harness.config.placeholders import fill_template, run_values
from harness.engine.cases import PROBE, Case, generate_cases
from harness.engine.exchange import Caller, Exchange
from harness.engine.guard import pattern_regex
from harness.engine.planting import id_text, plant
from harness.engine.probes import CoverageCell, Family, Probe, StateKind, StateRead
from harness.engine.schema import ApiSchema, Operation, body_fields, example_body, fill_path, invent_id
from harness.engine.world import ANONYMOUS, ClerkCredentials, LoginCredentials, Org, Principal, Tag, World

__all__ = [
    "FuzzLimits",
    "FuzzRun",
    "Fuzzer",
    "families_for",
    "is_never",
    "names_a_user",
    "names_an_org",
    "planned_operations",
    "unmatched_never",
]

MALFORMED_ID = "not-an-id'"  # a quote, so that an id spliced into SQL shows
# The headers (besides any the schema declares) and the query parameter targets commonly switch organisations by.
SWITCH_HEADERS = (
    "X-Org-Id", "X-Organization-Id", "X-Organisation-Id", "X-Tenant-Id", "X-Tenant", "X-Workspace-Id", "X-Team-Id",
    "X-Account-Id",
)  # fmt: skip
SWITCH_QUERY = "org_id"
# A parameter or field whose name says it is an organisation, or names a user.
ORG_NAME = re.compile(r"org|tenant|workspace|team|account|company", re.IGNORECASE)
USER_NAME = re.compile(r"user|email|member|login|owner|person|profile|handle", re.IGNORECASE)
# Privileged body fields tried on every create and update, besides those of the config's `[fuzz] privileged`.
PRIVILEGED_FIELDS = (
    "org_id", "organisation_id", "organization_id", "tenant_id", "owner_id", "user_id", "role", "roles", "admin",
    "is_admin", "is_staff", "permissions",
)  # fmt: skip
ESCALATION_SAMPLE = 3  # earlier refusals sent again after each successful write by a principal that is not admin
HARVESTED = 5  # ids kept per organisation and path parameter, from its creates and lists
ESCALATION_ROUNDS = 2  # successful writes of one operation by one principal followed by its refusals sent again
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
CONCURRENCY = 4  # requests in flight at once: enough to keep a small server busy, not to flood it
TOKEN_REFRESH_SECONDS = 30.0  # Clerk session tokens live 60 s
MAX_UNANSWERED_IN_A_ROW = 25  # a target that stops answering ends the fuzz; its findings so far stand


@dataclass(frozen=True)
class FuzzLimits:
    """How much the engine may send: in all, per operation, and for how long."""

    max_requests: int = 50_000
    max_seconds: float = 600.0
    per_operation: int = 2_000


@dataclass(frozen=True)
class FuzzRun:
    """What the engine did: coverage, counts, and why it stopped early, if it did."""

    coverage: dict[str, dict[str, CoverageCell]]  # operation -> principal -> cell
    requests: int
    seconds: float
    operations: tuple[str, ...]
    never: tuple[str, ...]  # operations of the schema the config says never to call
    stopped: str | None  # None: every probe was sent
    retried: int  # requests sent a second time on a fresh connection
    unanswered: int  # requests the target never answered


def is_never(config: TargetConfig, method: str, path: str) -> bool:
    """Whether the config lists `method path` (a path template of the schema) under `never`: as a template, or
    as the run's transport would see its requests (so that nothing is planned that the guard must refuse)."""
    return any(
        pattern.matches(method, path) or (pattern.method in ("*", method) and pattern_regex(pattern.path).match(path))
        for pattern in config.fuzz.never
    )


def unmatched_never(config: TargetConfig, schema: ApiSchema) -> list[str]:
    """The `never` entries that name no operation of the schema: a typo there would protect nothing."""
    return [str(p) for p in unmatched(config.fuzz.never, schema.names())]


def planned_operations(config: TargetConfig, schema: ApiSchema) -> tuple[list[Operation], list[Operation]]:
    """The operations the fuzz calls, in its order, and those the config says never to call."""
    every = list(schema.operations)
    never = [op for op in every if is_never(config, op.method, op.path)]
    ops = [op for op in every if op not in never]
    ops.sort(key=lambda op: (_METHOD_ORDER.get(op.method, 9), -op.path.count("/"), op.path))
    return ops, never


def names_an_org(name: str) -> bool:
    """Whether a parameter's or field's name says it is an organisation (tenant, workspace, team, account)."""
    return ORG_NAME.search(name) is not None


def names_a_user(name: str) -> bool:
    """Whether a parameter's or field's name says it names a user (username, email, member, owner)."""
    return USER_NAME.search(name) is not None and not names_an_org(name)


def _user_ids_known(config: TargetConfig) -> bool:
    """Whether the world knows its principals' user ids: the config's `user_id`s, or a Clerk world's."""
    return not config.principals or any(p.user_id is not None for p in config.principals)


def _org_ids_known(config: TargetConfig) -> bool:
    """Whether the world knows its organisations' ids: a Clerk world's, or the config's `org_id`s."""
    return not config.principals or any(p.org_id is not None for p in config.principals)


def _id_params(config: TargetConfig) -> set[str]:
    members = config.members.param if config.members is not None else None
    return {c.param for c in config.canaries} | ({members} if members else set())


def addressable(config: TargetConfig, param: str) -> bool:
    """Whether the world has ids for a path parameter: a resource's records, members, or users by name."""
    return param in _id_params(config) or (names_a_user(param) and _user_ids_known(config))


def families_for(config: TargetConfig, op: Operation) -> tuple[Family, ...]:
    """The families of probes the engine sends on `op`: what the plan prints, and all the engine may send."""
    params = _id_params(config)
    fields = body_fields(op)
    found = [Family.ROLE]
    if op.path_params and all(addressable(config, p) for p in op.path_params):
        found.append(Family.FOREIGN_ID)
    if op.mutating and op.body_schema is not None:
        if any(f.endswith("_id") and f in params for f in fields):
            found.append(Family.FOREIGN_REFERENCE)
        if _user_ids_known(config) and any(names_a_user(f) for f in fields):
            found.append(Family.FOREIGN_USER)
        found.append(Family.MASS_ASSIGNMENT)
    if _org_ids_known(config):
        found.append(Family.ORG_SWITCH)
    if not config.principals:
        found.append(Family.ORG_CLAIM)  # only Clerk sessions name an organisation
    if op.search_params:
        found.append(Family.FOREIGN_QUERY)
    if any(f.endswith(("_id", "ids")) for f in fields) or op.path_params:
        found.append(Family.MALFORMED_ID)
    return tuple(found)


def _keep_fresh(caller: Caller, who: Principal) -> None:
    """Present a new token once the caller's is old: a session token outlives no request it is sent with."""
    if time.monotonic() - caller.presented_at > TOKEN_REFRESH_SECONDS:
        caller.present(who.credentials.headers())


class _Stop(Exception):
    """A budget ran out, or the target stopped answering: no more requests."""


class Fuzzer:
    """Sends every family of probes; hands each to `on_probe` and each state read to `on_state`."""

    def __init__(
        self,
        base_url: str,
        config: TargetConfig,
        world: World,
        schema: ApiSchema,
        seed: int,
        *,
        cases: int,
        on_probe: Callable[[Probe], None],
        on_state: Callable[[StateRead], None],
        transport: httpx.BaseTransport | None = None,
        limits: FuzzLimits = FuzzLimits(),
    ) -> None:
        self.base_url = base_url
        self.config = config
        self.world = world
        self.schema = schema
        self.seed = seed
        self.cases = cases
        self.on_probe = on_probe
        self.on_state = on_state
        self.transport = transport
        self.limits = limits
        self.lock = threading.Lock()
        self._local = threading.local()  # each thread's seeded random, so that concurrency keeps runs reproducible
        self.coverage: dict[str, dict[str, CoverageCell]] = {}
        self.param_resource = {c.param: c.key for c in config.canaries}
        self.requests = 0
        self.per_operation: dict[str, int] = {}
        self._families: dict[str, tuple[Family, ...]] = {}
        self.retried = 0
        self.unanswered = 0
        self.unanswered_in_a_row = 0
        self.stopped: str | None = None
        self.dead = False  # the target stopped answering: not even the state reads are sent
        self.deadline = time.monotonic() + limits.max_seconds
        self.run_values = run_values(seed)
        self.expected: dict[
            tuple[str, str, str], Any
        ] = {}  # (org, resource, canary id) -> the canary as its owner last read it
        self.refusals: dict[str, list[_Refusal]] = {}  # principal -> its refused requests, to send again
        self.locked_out: set[str] = set()  # principals that could no longer sign in
        self.rounds: dict[tuple[str, str], int] = {}  # (principal, operation) -> escalation rounds sent
        self.harvested: dict[tuple[str, str], list[str]] = {}  # (org, path parameter) -> ids its principals made
        self.item_params = _item_params(schema)

    # -- sending ---------------------------------------------------------------------------------------------

    def caller(self, who: Principal) -> Caller:
        """A caller presenting `who`'s credentials, through the run's transport."""
        return Caller(self.base_url, who.credentials.headers(), name=who.name, transport=self.transport)

    def _spend(self, op: str, *, state: bool = False) -> None:
        """Count one request against the budgets, or raise _Stop. The bounded state reads at the end are spared
        the budgets (a write that already happened must still be read back), not a target that stopped answering."""
        with self.lock:
            if state:
                if self.dead:
                    raise _Stop(self.stopped or "the target stopped answering")
                self.requests += 1
                return
            if self.stopped is not None:
                raise _Stop(self.stopped)
            if self.requests >= self.limits.max_requests:
                self.stopped = f"the run's request budget ({self.limits.max_requests}) ran out"
            elif time.monotonic() > self.deadline:
                self.stopped = f"the run's time budget ({self.limits.max_seconds:.0f} s) ran out"
            elif self.per_operation.get(op, 0) >= self.limits.per_operation:
                raise _Stop(f"{op}: its request budget ({self.limits.per_operation}) ran out")
            if self.stopped is not None:
                raise _Stop(self.stopped)
            self.requests += 1
            self.per_operation[op] = self.per_operation.get(op, 0) + 1

    def _count(self, seen: Exchange) -> None:
        with self.lock:
            self.retried += seen.retried is not None
            if seen.answered or seen.refused:  # a refusal of the run's own guard says nothing of the target
                self.unanswered_in_a_row = 0
                return
            self.unanswered += 1
            self.unanswered_in_a_row += 1
            if self.unanswered_in_a_row >= MAX_UNANSWERED_IN_A_ROW and not self.dead:
                self.dead = True
                in_a_row = self.unanswered_in_a_row
                self.stopped = (
                    self.stopped or f"the target stopped answering ({in_a_row} in a row; last: {seen.failure})"
                )

    def send(
        self, caller: Caller, who: Principal, op: Operation, path: str, case: Case, family: Family,
        headers: dict[str, str] | None = None, query: dict[str, Any] | None = None, body: Any = None,
        method: str | None = None,
    ) -> Exchange:  # fmt: skip
        # The plan is the engine's own rule: a family it does not list is never sent (the plan cannot drift).
        # An escalation probe sends a role-matrix request again (after the principal's own write): the role's.
        planned = Family.ROLE if family is Family.ESCALATION else family
        assert planned in self.families(op), f"{family} is not planned for {op}"
        self._spend(str(op))
        _keep_fresh(caller, who)
        with self.lock:
            cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
            cell.requests += 1
            cell.families.add(planned.value)
        payload = case.body if body is None else body
        if method == "GET":  # a read-back of what the operation's write did: no body, no query
            seen = caller.call(method, path)
        else:
            seen = caller.call(op.method, path, payload, params={**case.query, **(query or {})}, headers=headers)
        self._count(seen)
        return seen

    def families(self, op: Operation) -> tuple[Family, ...]:
        """`families_for` the operation, worked out once per run."""
        found = self._families.get(str(op))
        if found is None:
            found = self._families[str(op)] = families_for(self.config, op)
        return found

    def probe(self, family: Family, op: Operation, who: Principal, *exchanges: Exchange, **extra: Any) -> None:
        """Hand one family's answers to the checks."""
        self.on_probe(Probe(family, op, who, tuple(exchanges), **extra))

    @property
    def rng(self) -> random.Random:
        """This thread's random, seeded from the run's seed, the operation and the principal."""
        found: random.Random = self._local.rng
        return found

    # -- the run ---------------------------------------------------------------------------------------------

    def run(self) -> FuzzRun:
        """Send every probe the budgets allow; never raises for what the target does."""
        started = time.monotonic()
        ops, never = planned_operations(self.config, self.schema)
        cases = generate_cases(ops, per_operation=self.cases, seed=self.seed)
        principals = self.world.principals()
        groups: dict[str | None, list[Principal]] = {}
        for who in principals:
            groups.setdefault(who.org, []).append(who)
        callers = {who.name: self.caller(who) for who in principals}
        for org in self.world.orgs.values():
            for canary in org.canaries:
                self.expected[(org.key, canary.resource, canary.id)] = canary.snapshot
        try:
            for op in ops:
                if self.stopped is not None:
                    break
                # Organisations run side by side, each one's principals in turn (they share its scratch records,
                # so their order is part of the seed's reproducible run); operations stay in order.
                # First what each principal sends on its own records; then, once every organisation has written
                # its own, the writes naming another organisation's users in the body; then those on another
                # organisation's records by id: no victim's own probes overwrite what another organisation's probe
                # wrote before the victims read their state.
                for phase in _PHASES:
                    if phase is not Family.ROLE and phase not in self.families(op):
                        continue
                    with ThreadPoolExecutor(CONCURRENCY) as pool:
                        done = [
                            pool.submit(self._group, callers, g, op, cases[str(op)], phase) for g in groups.values()
                        ]
                        for future in done:
                            future.result()
                if op.mutating and self.stopped is None:
                    self._victims(callers, after=str(op))  # what the writes just sent did to their victims
            if self.stopped is None:
                self.registrations()
            self._victims(callers, after="")
            self._read_lists()
        finally:
            for caller in callers.values():
                caller.close()
        for op in never:
            self.coverage.setdefault(str(op), {})["*"] = CoverageCell(note="not called: the config says never")
        for unread in self.schema.unreadable:
            never_called = is_never(self.config, unread.method, unread.path)
            unfit = f"not fuzzed: schemathesis cannot read it: {unread.reason}"
            note = "not called: the config says never" if never_called else unfit
            self.coverage.setdefault(str(unread), {})["*"] = CoverageCell(note=note)
        return FuzzRun(
            self.coverage, self.requests, time.monotonic() - started, tuple(str(o) for o in ops),
            tuple(str(o) for o in never), self.stopped, self.retried, self.unanswered,
        )  # fmt: skip

    def _group(
        self, callers: dict[str, Caller], group: list[Principal], op: Operation, cases: list[Case], phase: Family
    ) -> None:
        for who in group:
            try:
                if phase is not Family.ROLE:
                    self._local.rng = random.Random(f"{self.seed}|{op}|{who.name}|{phase}")
                    self.aimed(callers[who.name], who, op, cases[0], phase)
                else:
                    self._local.rng = random.Random(f"{self.seed}|{op}|{who.name}")
                    self.exercise(callers[who.name], who, op, cases)
            except _Stop as stop:
                with self.lock:
                    cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
                    cell.note = cell.note or f"partial: {stop}"

    def exercise(self, caller: Caller, who: Principal, op: Operation, cases: list[Case]) -> None:
        """The role matrix on the caller's own records, then every cross-org family, then the caller's earlier
        refusals again if it wrote something."""
        org = self.world.orgs.get(who.org) if who.org else None
        self.replant(org, op)
        own_ids = self.own_ids(org, op, who)
        if op.path_params and own_ids is None:
            with self.lock:
                cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
                cell.note = "no own record to address"
        own_path = self.fill(op, own_ids or {})
        seen: list[Exchange] = []
        try:
            for n, case in enumerate(cases):
                body = self.mark_body(_secret_fields(case.body, self.run_values["secret"]), n, org)
                got = self.send(caller, who, op, own_path, case, Family.ROLE, body=body)
                seen.append(got)
                if got.status == 403 and who.org is not None and not self._public(op):
                    self.refusals.setdefault(who.name, []).append(_Refusal(op, own_path, case, body))
                if got.ok and org is not None:
                    self.harvest(org, op, got)
                if op.mutating and got.ok and org is not None:
                    # At once: the next case may take back what this write gave (a role set, then another).
                    self.escalation(caller, who, op)
        finally:  # a budget that runs out mid-family still hands over what was sent, to be judged
            if seen:
                self.probe(Family.ROLE, op, who, *seen, own_records=own_ids is not None)
        if org is not None:
            self.cross_org(caller, who, op, cases[0], org, own_path)

    def aimed(self, caller: Caller, who: Principal, op: Operation, case: Case, family: Family) -> None:
        """A family aimed at another organisation: its users named in the body, or its ids in the path (with the
        caller's own in the rest). Their victims' state says what they did."""
        org = self.world.orgs.get(who.org) if who.org else None
        if org is None or family not in self.families(op):
            return
        self.replant(org, op)
        own_ids = self.own_ids(org, op, who) or {}
        own_path = self.fill(op, own_ids)
        for other in self.world.orgs.values():
            if other.key == org.key:
                continue
            if family is Family.FOREIGN_ID:
                self.foreign_ids(caller, who, op, case, other, own_ids)
            else:
                self.foreign_users(caller, who, op, case, other, own_path)

    def cross_org(self, caller: Caller, who: Principal, op: Operation, case: Case, org: Org, own_path: str) -> None:
        """The families sent on the caller's own records that name another organisation: its records in the body's
        references, privileged fields, organisation switches and claims, searches for its values; and malformed
        ids."""
        planned = self.families(op)
        own_body = self.mark_body(_secret_fields(case.body, self.run_values["secret"]), 999, org)
        for other in self.world.orgs.values():
            if other.key == org.key:
                continue
            if isinstance(own_body, dict) and Family.MASS_ASSIGNMENT in planned:
                self.foreign_bodies(caller, who, op, case, other, own_body, own_path)
            if Family.ORG_SWITCH in planned and other.id is not None:
                self.org_switch(caller, who, op, case, other, own_path)
            if (
                Family.ORG_CLAIM in planned
                and isinstance(who.credentials, ClerkCredentials)
                and isinstance(other.owner.credentials, ClerkCredentials)
            ):
                # The caller's own session naming the other organisation: only a membership may let it in.
                claimed = other.owner.credentials.org
                if claimed is not None:
                    forged = ClerkCredentials(who.credentials.issuer, who.credentials.sub, claimed).headers()
                    body = self.tagged(op, case, who, other, Family.ORG_CLAIM, f"a session naming {other.key}")
                    got = self.send(caller, who, op, own_path, case, Family.ORG_CLAIM, headers=forged, body=body)
                    self.probe(Family.ORG_CLAIM, op, who, got, other_org=other.key, substituted=f"o.id {claimed.id}")
            if Family.FOREIGN_QUERY in planned:
                # One search per resource: a search may reach one resource's records and not another's.
                for canary in other.canaries:
                    keys = list(op.search_params)
                    self.foreign_query(caller, who, op, case, own_path, keys, canary.marker, other)
        self.malformed(caller, who, op, case, own_path, own_body)

    def foreign_query(
        self, caller: Caller, who: Principal, op: Operation, case: Case, path: str, keys: list[str], value: str,
        other: Org,
    ) -> None:  # fmt: skip
        nobody = f"{value[: len(value) // 2]}{self.rng.getrandbits(64):016x}"[: len(value)]
        control = self.send(caller, who, op, path, case, Family.FOREIGN_QUERY, query=dict.fromkeys(keys, nobody))
        seen = self.send(caller, who, op, path, case, Family.FOREIGN_QUERY, query=dict.fromkeys(keys, value))
        self.probe(
            Family.FOREIGN_QUERY, op, who, seen, control=control, other_org=other.key, echo=value,
            control_echo=nobody, substituted=f"{', '.join(keys)} for {other.key}'s {value}",
        )  # fmt: skip

    def foreign_ids(
        self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, own: dict[str, str]
    ) -> None:
        """The other organisation's ids in the path: all at once, and (for a path of several) each in turn while
        the others stay the caller's own, so that a child is tried under the caller's own parent."""
        foreign = {p: found for p in op.path_params if (found := self.id_for(other, p, scratch=False)) is not None}
        variants: list[dict[str, str]] = []
        if len(foreign) == len(op.path_params):
            variants.append(foreign)
        if len(op.path_params) > 1 and len(own) == len(op.path_params):
            variants += [{**own, p: value} for p, value in foreign.items()]
        if len(op.path_params) == 1:
            # besides its canary, a record another of its principals made (harvested from a create or a list)
            (param,) = op.path_params
            with self.lock:
                made = [i for i in self.harvested.get((other.key, param), []) if i != foreign.get(param)]
            if made:
                variants.append({param: made[-1]})
        for ids in variants:
            swapped = {p: v for p, v in ids.items() if v != own.get(p)}
            invented = {**ids, **{p: invent_id(op.param_schema(p), self.rng, like=v) for p, v in swapped.items()}}
            words = ", ".join(f"{p}={v}" for p, v in swapped.items())
            kept = sorted(set(ids) - set(swapped))
            mixed = f" (the rest the caller's own: {', '.join(kept)})" if kept else ""
            substituted = f"{other.key}'s {words}{mixed}"
            body = self.tagged(op, case, who, other, Family.FOREIGN_ID, substituted)
            control = self.send(caller, who, op, self.fill(op, invented), case, Family.FOREIGN_ID, body=body)
            seen = self.send(caller, who, op, self.fill(op, ids), case, Family.FOREIGN_ID, body=body)
            self.probe(Family.FOREIGN_ID, op, who, seen, control=control, other_org=other.key, substituted=substituted)

    def harvest(self, org: Org, op: Operation, seen: Exchange) -> None:
        """Ids of records the organisation's principals made or listed: a create's answer (its `id`, or its
        Location) and a list's items, kept for the item path parameter under the same collection."""
        param = self.item_params.get(op.path)
        if param is None or op.path_params or op.method not in ("GET", "POST"):
            return
        document = seen.json()
        found: list[str] = []
        if op.method == "POST":
            location = next((v for k, v in seen.headers.items() if k.lower() == "location"), "")
            made = id_text(document.get("id")) if isinstance(document, dict) else None
            found = [made or location.rstrip("/").rsplit("/", 1)[-1]] if made or location else []
        else:
            items = document if isinstance(document, list) else next(
                (v for v in document.values() if isinstance(v, list)), []
            ) if isinstance(document, dict) else []  # fmt: skip
            found = [i for item in items[:HARVESTED] if isinstance(item, dict) and (i := id_text(item.get("id")))]
        if found:
            with self.lock:
                kept = self.harvested.setdefault((org.key, param), [])
                kept.extend(i for i in found if i not in kept)
                del kept[:-HARVESTED]

    def foreign_users(self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, path: str) -> None:
        """Another organisation's user named in the body's fields that name a user, the write tagged: whether it
        reached them shows in their own state, not in this answer."""
        victim = next((p for p in other.principals if p.user_id is not None), None)
        if victim is None or victim.user_id is None:
            return
        fields = [f for f in body_fields(op) if names_a_user(f)]
        substituted = f"{victim.name}'s user id {victim.user_id} in {', '.join(fields)}"
        body = self.tagged(op, case, who, other, Family.FOREIGN_USER, substituted, complete=True)
        if not isinstance(body, dict):
            return
        email = f"{victim.user_id}" if "@" in victim.user_id else None
        named = {f: (email or victim.user_id) if "mail" not in f.lower() or email else body.get(f) for f in fields}
        got = self.send(caller, who, op, path, case, Family.FOREIGN_USER, body={**body, **named})
        self.probe(Family.FOREIGN_USER, op, who, got, other_org=other.key, substituted=substituted)

    def org_switch(self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, path: str) -> None:
        """The other organisation's id in the headers and the parameter targets commonly switch by; then, apart
        (a filter of the same type would empty the answer that shows a switch), in every parameter of the schema's
        that names an organisation or has an organisation id's type."""
        assert other.id is not None
        usual = f"{other.key}'s id {other.id} in {SWITCH_QUERY} and the usual headers"
        body = self.tagged(op, case, who, other, Family.ORG_SWITCH, usual)
        headers = dict.fromkeys(SWITCH_HEADERS, other.id)
        got = self.send(
            caller, who, op, path, case, Family.ORG_SWITCH, headers=headers, query={SWITCH_QUERY: other.id}, body=body
        )
        self.probe(Family.ORG_SWITCH, op, who, got, other_org=other.key, substituted=usual)
        query: dict[str, Any] = {}
        headers, cookies = {}, {}
        for where, name, schema in op.other_params:
            if not (names_an_org(name) or _same_type(schema, other.id)):
                continue
            if where == "query":
                query[name] = other.id
            elif where == "header":
                headers[name] = other.id
            else:
                cookies[name] = other.id
        if not (query or headers or cookies):
            return
        if cookies:
            jar = "; ".join(f"{k}={v}" for k, v in cookies.items())
            presented = caller.headers.get("Cookie")
            headers["Cookie"] = f"{presented}; {jar}" if presented else jar
        substituted = f"{other.key}'s id {other.id} in {', '.join(sorted({*query, *headers, *cookies} - {'Cookie'}))}"
        body = self.tagged(op, case, who, other, Family.ORG_SWITCH, substituted)
        got = self.send(caller, who, op, path, case, Family.ORG_SWITCH, headers=headers, query=query, body=body)
        self.probe(Family.ORG_SWITCH, op, who, got, other_org=other.key, substituted=substituted)

    def foreign_bodies(
        self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, body: dict[str, Any], path: str
    ) -> None:
        references = {
            name: value
            for name in body_fields(op)
            if name.endswith("_id") and (value := self.id_for(other, name, scratch=False))
        }
        if references and Family.FOREIGN_REFERENCE in self.families(op):
            seen = self.send(caller, who, op, path, case, Family.FOREIGN_REFERENCE, body={**body, **references})
            self.probe(
                Family.FOREIGN_REFERENCE, op, who, seen, other_org=other.key,
                substituted=f"{other.key}'s records in {', '.join(sorted(references))}",
            )  # fmt: skip
        self.mass_assignment(caller, who, op, case, other, path)

    def privileged(self, op: Operation, other: Org) -> dict[str, Any]:
        """The privileged fields to try on `op`, each with its value: the other organisation's ids for those naming
        an organisation or an owner, the admin role, true flags, every permission; the config's own besides."""
        admin = self.config.admin_role or "admin"
        owner = next((p.user_id for p in other.principals if p.user_id), None)
        fields = dict.fromkeys(PRIVILEGED_FIELDS)
        fields.update(dict.fromkeys(f for f in body_fields(op) if names_an_org(f)))
        values: dict[str, Any] = {}
        for name in fields:
            if name in ("role",):
                values[name] = admin
            elif name == "roles":
                values[name] = [admin]
            elif name == "permissions":
                values[name] = ["*"]
            elif name in ("admin", "is_admin", "is_staff"):
                values[name] = True
            elif names_an_org(name):
                if other.id is not None:
                    values[name] = _typed(other.id)
            elif owner is not None:
                values[name] = _typed(owner)
        return {**values, **self.config.fuzz.privileged}

    def mass_assignment(self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, path: str) -> None:
        """Privileged fields merged into a complete body (every property the schema declares), and judged at once:
        the record the write made or changed read back, as the caller sees it. The privileged fields the schema
        declares go in a body of their own, so that a target refusing undeclared fields still meets them."""
        fields = self.privileged(op, other)
        if who.role == self.config.admin_role:
            # The admin may grant roles: sent by it, a role field says nothing and changes the world's members.
            fields = {k: v for k, v in fields.items() if names_an_org(k) or k in ("owner_id", "user_id")}
        declared = {k: v for k, v in fields.items() if k in body_fields(op)}
        # One body per kind of field (the organisation's, an owner's, a role's), and one of those the schema
        # declares: a target refusing unknown fields refuses the whole body for one of them.
        kinds: list[dict[str, Any]] = [declared] if declared else []
        # `org_id` alone, the most common name, then the other undeclared names of an organisation together
        undeclared = {k: v for k, v in fields.items() if names_an_org(k) and k not in declared}
        kinds += [{k: v for k, v in undeclared.items() if k == "org_id"}]
        kinds += [{k: v for k, v in undeclared.items() if k != "org_id"}]
        kinds += [{k: v for k, v in fields.items() if k in ("owner_id", "user_id")}]
        kinds += [{k: v for k, v in fields.items() if not names_an_org(k) and k not in ("owner_id", "user_id")}]
        groups = [g for n, g in enumerate(kinds) if g and g not in kinds[:n]]
        for group in groups:
            substituted = ", ".join(f"{k}={v!r}" for k, v in group.items())
            why = f"privileged fields {substituted}"
            body = self.tagged(op, case, who, other, Family.MASS_ASSIGNMENT, why, complete=True)
            if not isinstance(body, dict):
                return
            sent = self.send(caller, who, op, path, case, Family.MASS_ASSIGNMENT, body={**body, **group})
            if sent.ok:
                self.escalation(caller, who, op)
            exchanges = [sent]
            readback = self.readback(op, path, sent)
            if sent.ok and readback is not None:
                exchanges.append(self.send(caller, who, op, readback, case, Family.MASS_ASSIGNMENT, method="GET"))
            self.probe(
                Family.MASS_ASSIGNMENT, op, who, *exchanges, other_org=other.key, substituted=substituted,
                privileged=tuple(group.items()),
            )  # fmt: skip

    def readback(self, op: Operation, path: str, sent: Exchange) -> str | None:
        """Where the record a write made or changed is read: its own path (an update), or the created record's
        (the answer's id under the collection, or its Location), when the schema has such a read."""
        reads = {o.path for o in self.schema.operations if o.method == "GET"}
        if op.path_params and op.path in reads:
            return path
        collection = op.path.rstrip("/")
        if not any(r.startswith(collection + "/{") and r.count("/") == collection.count("/") + 1 for r in reads):
            return None
        document = sent.json()
        location = next((v for k, v in sent.headers.items() if k.lower() == "location"), "")
        found = id_text(document.get("id") if isinstance(document, dict) else None) or location.rsplit("/", 1)[-1]
        return path.rstrip("/") + "/" + quote(found, safe="") if found else None

    def escalation(self, caller: Caller, who: Principal, op: Operation) -> None:
        """After a principal's successful write, a sample of its earlier refusals sent again: a write must never
        have raised what the principal may do."""
        with self.lock:
            key = (who.name, str(op))
            if self.rounds.get(key, 0) >= ESCALATION_ROUNDS:
                return
            self.rounds[key] = self.rounds.get(key, 0) + 1
            # One refusal of each other operation: which one a raised privilege opens is anyone's guess.
            pending = list({str(r.op): r for r in reversed(self.refusals.get(who.name, [])) if r.op != op}.values())
        if not pending:
            return
        pending.sort(key=lambda r: str(r.op))
        sample = self.rng.sample(pending, min(ESCALATION_SAMPLE, len(pending)))
        for refusal in sample:
            got = self.send(caller, who, refusal.op, refusal.path, refusal.case, Family.ESCALATION, body=refusal.body)
            # Named for the write that raised the privilege; what was sent again is in the words.
            said = f"its earlier refused {refusal.op} ({refusal.path}) after its own {op}"
            self.probe(Family.ESCALATION, op, who, got, substituted=said)

    def registrations(self) -> None:
        """Each principal whose user a `[[setup]]` step registered is registered again, as a new user, with every
        privileged field in the registration's body; the new user signs in as the principal does and is sent the
        principal's refusals. One that succeeds is a privilege the registration handed out."""
        self._local.rng = random.Random(f"{self.seed}|registrations")
        for org in self.world.orgs.values():
            for who in org.principals:
                credentials = who.credentials
                refused = self.refusals.get(who.name, [])
                if not isinstance(credentials, LoginCredentials) or not refused:
                    continue
                step = self._registration(credentials)
                if step is None:
                    continue
                op = next((o for o in self.schema.operations if step.request.names(o.method, o.path)), None)
                if op is None or Family.MASS_ASSIGNMENT not in self.families(op):
                    continue
                # A new user: the values the login sends to name its user (a username, an email) made new, all
                # else (the organisation the registration joins, an invite) as the setup sent it.
                suffix = f"r{self.rng.getrandbits(24):06x}"
                renamed = _renamed(fill_template(credentials.login_config.body, credentials.values), suffix)
                renamed.pop(str(credentials.values.get("secret")), None)
                # The role and flags that make a user privileged; not the organisation and owner fields, which
                # would name another organisation's records in a registration of one's own, nor the fields the
                # registration itself sends (a role the target lets its users choose is its design, not a flaw).
                fields = {
                    k: v
                    for k, v in self.privileged(op, org).items()
                    if not names_an_org(k) and k not in ("owner_id", "user_id") and k not in (step.body or {})
                }
                if not fields or not renamed:
                    continue
                registration = _rename(fill_template(step.body, credentials.values) or {}, renamed)
                body = {**registration, **fields}
                case = Case(body=body)
                with Caller(self.base_url, name="registration", transport=self.transport) as anonymous:
                    registered = self.send(anonymous, ANONYMOUS, op, op.path, case, Family.MASS_ASSIGNMENT, body=body)
                said = ", ".join(f"{k}={v!r}" for k, v in fields.items())
                self.probe(
                    Family.MASS_ASSIGNMENT, op, ANONYMOUS, registered, substituted=f"privileged fields {said}",
                    privileged=tuple(fields.items()),
                )  # fmt: skip
                if not registered.ok:
                    continue
                login_body = _rename(fill_template(credentials.login_config.body, credentials.values), renamed)
                again = LoginCredentials(
                    self.base_url, credentials.login_config.model_copy(update={"body": login_body}), {},
                    name=f"{who.name} registered again", transport=self.transport,
                )  # fmt: skip
                if again.login() is not None:
                    continue
                newcomer = Principal(again.name, who.org, who.role, again)
                with self.caller(newcomer) as caller:
                    for refusal in refused[: ESCALATION_SAMPLE * 2]:
                        got = self.send(
                            caller, newcomer, refusal.op, refusal.path, refusal.case, Family.ESCALATION,
                            body=refusal.body,
                        )  # fmt: skip
                        said_again = f"{who.name}'s refused {refusal.op}, as a user registered with {said}"
                        self.probe(Family.ESCALATION, op, newcomer, got, substituted=said_again)

    def _registration(self, credentials: LoginCredentials) -> SetupRequest | None:
        """The `[[setup]]` step that registered the user a login signs in as: one whose body holds a value the
        login's body sends (its username), the password aside."""
        values = credentials.values
        sent = {str(v) for v in (fill_template(credentials.login_config.body, values) or {}).values()}
        sent.discard(str(values.get("secret")))
        for step in self.config.setup:
            body = fill_template(step.body, values) or {}
            if isinstance(body, dict) and sent & {str(v) for v in body.values()}:
                return step
        return None

    def malformed(self, caller: Caller, who: Principal, op: Operation, case: Case, path: str, body: Any) -> None:
        sent = []
        if op.path_params:
            malformed = self.fill(op, dict.fromkeys(op.path_params, MALFORMED_ID))
            sent.append(self.send(caller, who, op, malformed, case, Family.MALFORMED_ID))
        fields = body_fields(op)
        broken: dict[str, Any] = {n: MALFORMED_ID for n in fields if n.endswith("_id")}
        broken |= {n: [MALFORMED_ID] for n in fields if n.endswith("ids")}
        if broken and isinstance(body, dict):
            sent.append(self.send(caller, who, op, path, case, Family.MALFORMED_ID, body={**body, **broken}))
        if sent:
            self.probe(Family.MALFORMED_ID, op, who, *sent, substituted=repr(MALFORMED_ID))

    # -- ids and bodies ----------------------------------------------------------------------------------------

    def fill(self, op: Operation, ids: dict[str, str]) -> str:
        """The path with each named parameter replaced by its id, the rest by an invented id of its type."""
        path = op.path
        for name, value in ids.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        for name in op.path_params:
            if name not in ids:
                path = path.replace("{" + name + "}", invent_id(op.param_schema(name), random.Random(name)))
        return fill_path(path, "0")

    def own_ids(self, org: Org | None, op: Operation, who: Principal | None = None) -> dict[str, str] | None:
        """Ids of the caller's own organisation for each path parameter (scratch records, members, its own user)."""
        if not op.path_params:
            return {}
        if org is None:
            org = next(iter(self.world.orgs.values()))
        ids = {}
        for param in op.path_params:
            found = self.id_for(org, param, scratch=True, who=who, op=op)
            if found is None:
                return None
            ids[param] = found
        return ids

    def id_for(
        self, org: Org, param: str, *, scratch: bool, who: Principal | None = None, op: Operation | None = None
    ) -> str | None:
        """An id of `org` for a path parameter or reference field: a member's, a record's of its resource, or (for
        a parameter naming a user) the caller's own user id on its own records, else the organisation's first."""
        if self.config.members is not None and param == self.config.members.param:
            members = [p for p in org.principals if p.user_id and p.role is None]
            return members[0].user_id if members else None
        resource = self.param_resource.get(param)
        if resource is not None:
            records = org.scratch if scratch else org.canaries
            return next((c.id for c in records if c.resource == resource), None)
        if names_a_user(param):
            if scratch and op is not None and op.method == "DELETE":
                return None  # never a principal's own account: the world would lose it
            if scratch and who is not None and who.org == org.key and who.user_id is not None:
                return who.user_id
            return next((p.user_id for p in org.principals if p.user_id is not None), None)
        return None

    def mark_body(self, body: Any, n: int, org: Org | None) -> Any:
        """The case's body with its probe text replaced by a marker of the caller's organisation."""
        if body is None or org is None:
            return body
        marker = f"probe{org.key}x{n:03d}{self.rng.getrandbits(24):06x}"
        with self.lock:
            self.world.org(org.key).probes.add(marker)
        return _replace_probe(body, marker)

    def tagged(
        self, op: Operation, case: Case, who: Principal, other: Org, family: Family, substituted: str, *,
        complete: bool = False,
    ) -> Any:  # fmt: skip
        """A body for a write aimed at `other`, each string field carrying a tag unique to this probe: found in the
        victim's state, the tag names the probe that wrote it. The minimal body, or a complete one when asked
        (or when the minimal one has no text to carry the tag)."""
        if not op.mutating or op.body_schema is None:
            return case.body
        body = case.body
        if complete or PROBE not in json.dumps(body):
            body = example_body(op, PROBE, complete=True)
        tag = f"tag{who.org}x{self.rng.getrandbits(40):010x}"
        # A password written to someone else's account is the tag's (their next sign-in shows it); one written to
        # the caller's own records stays the run's, so that no principal locks itself out.
        password = f"Tg-{tag}-9" if family in (Family.FOREIGN_ID, Family.FOREIGN_USER) else self.run_values["secret"]
        with self.lock:
            described = f"{who.name}'s {op} aimed at {other.key} ({family.value}: {substituted})"
            self.world.tags[tag] = Tag(str(op), who.name, described)
            if who.org is not None:
                self.world.org(who.org).probes.add(tag)
        return _replace_probe(_secret_fields(body, password), tag)

    # -- records that must exist -------------------------------------------------------------------------------

    def replant(self, org: Org | None, op: Operation) -> None:
        """Before a principal's DELETE: every scratch record its path addresses exists, planted again if an earlier
        DELETE (or its parent's) removed it, so that each principal's DELETE meets a live record."""
        if op.method != "DELETE" or org is None or not org.principals:
            return
        if not any(p in self.param_resource for p in op.path_params):
            return
        with self.caller(org.owner) as owner:
            self._replant(owner, org)

    def _replant(self, owner: Caller, org: Org) -> None:
        for resource in self.config.canaries:
            current = next((c for c in org.scratch if c.resource == resource.key), None)
            if current is None:
                continue
            self._spend("state", state=True)
            _keep_fresh(owner, org.owner)
            seen = owner.call("GET", current.read_path)
            self._count(seen)
            if seen.status != 404:
                continue
            ids = {c.resource: c.id for c in org.scratch}
            ids.pop(resource.key, None)
            planted = plant(
                org.key, owner, resource, self.rng, self.run_values, ids, scratch=True,
                fresh=lambda: _keep_fresh(owner, org.owner),
            )  # fmt: skip
            if planted.canary is None:
                continue
            with self.lock:
                org.scratch = [planted.canary if c is current else c for c in org.scratch]

    # -- state -------------------------------------------------------------------------------------------------

    def _victims(self, callers: dict[str, Caller], *, after: str) -> None:
        """What every organisation's principals see of their own state: the owner re-reads its canaries, each
        principal its `self` operations, and each that signs in with a password signs in again."""
        selves = [
            op
            for op in self.schema.operations
            if op.method == "GET" and not op.path_params and (op.self_only or self._listed_self(op))
            and not is_never(self.config, op.method, op.path)
        ]  # fmt: skip
        # Organisations side by side, as their probes ran; each one's reads in order.
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            done = [pool.submit(self._victim, callers, org, selves, after) for org in self.world.orgs.values()]
            for future in done:
                future.result()

    def _victim(self, callers: dict[str, Caller], org: Org, selves: list[Operation], after: str) -> None:
        """One organisation's state, read by its own principals."""
        if not org.principals:
            return
        owner = org.owner
        caller = callers[owner.name]
        for canary in org.canaries:
            template = next((c.read.path for c in self.config.canaries if c.key == canary.resource), "")
            if (
                is_never(self.config, "GET", template)
                or self.expected.get((org.key, canary.resource, canary.id), _GONE) is _GONE
            ):
                continue
            if not self._state_spend():
                return
            _keep_fresh(caller, owner)
            seen = caller.call("GET", canary.read_path)
            self._count(seen)
            expected = self.expected[(org.key, canary.resource, canary.id)]
            self.on_state(
                StateRead(org.key, owner, seen, canary=canary, operation=f"GET {template}", kind=StateKind.CANARY,
                          expected=expected, after=after)
            )  # fmt: skip
            if seen.answered:
                self.expected[(org.key, canary.resource, canary.id)] = _GONE if seen.status == 404 else seen.json()
        for who in org.principals:
            for op in selves:
                if not self._state_spend():
                    return
                mine = callers[who.name]
                _keep_fresh(mine, who)
                seen = mine.call("GET", op.path)
                self._count(seen)
                self.on_state(StateRead(org.key, who, seen, operation=str(op), kind=StateKind.SELF, after=after))
            if isinstance(who.credentials, LoginCredentials) and after and who.name not in self.locked_out:
                if not self._state_spend():
                    return
                failure = who.credentials.login()
                if failure is not None:
                    self.locked_out.add(who.name)  # said once: after that its state says nothing new
                mine = callers[who.name]
                mine.present(who.credentials.headers())
                where = str(who.credentials.login_config.request)
                self.on_state(
                    StateRead(org.key, who, _SIGNED_IN, operation=where, kind=StateKind.SIGN_IN, after=after,
                              failure=failure)
                )  # fmt: skip

    def _public(self, op: Operation) -> bool:
        return op.public or any(p.matches(op.method, op.path) for p in self.config.fuzz.public)

    def _listed_self(self, op: Operation) -> bool:
        return any(p.matches(op.method, op.path) for p in self.config.fuzz.self_only)

    def _state_spend(self) -> bool:
        try:
            self._spend("state", state=True)
        except _Stop:
            return False
        return True

    def _read_lists(self) -> None:
        """Each organisation's owner reads its lists (what `never` allows), for the state checks."""
        lists = [
            op
            for op in self.schema.operations
            if op.method == "GET" and not op.path_params and not is_never(self.config, op.method, op.path)
        ]
        for org in self.world.orgs.values():
            if not org.principals:
                continue
            owner = org.owner
            with self.caller(owner) as caller:
                for op in lists:
                    if not self._state_spend():
                        return
                    _keep_fresh(caller, owner)
                    seen = caller.call("GET", op.path)
                    self._count(seen)
                    self.on_state(StateRead(org.key, owner, seen, operation=str(op), public=self._public(op)))


@dataclass
class _Refusal:
    """A request a principal was refused, kept to be sent again after its own writes."""

    op: Operation
    path: str
    case: Case
    body: Any


# The phases of one operation: each principal's own records, then writes naming others' users, then others' ids.
_PHASES = (Family.ROLE, Family.FOREIGN_USER, Family.FOREIGN_ID)
_GONE: Any = object()  # a canary its owner already found gone: not read again
# A sign-in is read through the login's own outcome; this stands for its exchange (the target's answer is in
# the failure text when it failed).
_SIGNED_IN = Exchange("POST", "(sign-in)", 200, "", "")


def _item_params(schema: ApiSchema) -> dict[str, str]:
    """Collection path -> the path parameter of its items (`/projects` -> `project_id` for `/projects/{project_id}`)."""
    found: dict[str, str] = {}
    for op in schema.operations:
        collection, _, last = op.path.rpartition("/")
        if last.startswith("{") and last.endswith("}") and collection and "{" not in collection:
            found.setdefault(collection, last[1:-1])
    return found


def _renamed(body: Any, suffix: str) -> dict[str, str]:
    """Each text value of a login body, made new with `suffix` (before an email's `@`): a new user's names."""
    if not isinstance(body, dict):
        return {}
    found = {}
    for value in body.values():
        if isinstance(value, str) and value:
            name, at, domain = value.partition("@")
            found[value] = f"{name}{suffix}{at}{domain}"
    return found


def _rename(body: Any, renamed: dict[str, str]) -> Any:
    """A body with each value `renamed` names replaced by its new one."""
    if isinstance(body, dict):
        return {k: renamed.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    return body


def _replace_probe(body: Any, text: str) -> Any:
    return json.loads(json.dumps(body).replace(f'"{PROBE}"', json.dumps(text)).replace(f"{PROBE}@", f"{text}@"))


_SECRET_FIELD = re.compile(r"pass(word|phrase)?|secret", re.IGNORECASE)


def _secret_fields(body: Any, secret: str) -> Any:
    """A body whose password-like fields hold `secret`: the run's own password (so that a principal changing its
    own never locks itself out), or a tagged one for a write aimed at someone else (their sign-in then fails)."""
    if isinstance(body, dict):
        return {k: secret if isinstance(v, str) and _SECRET_FIELD.search(k) else _secret_fields(v, secret)
                for k, v in body.items()}  # fmt: skip
    if isinstance(body, list):
        return [_secret_fields(v, secret) for v in body]
    return body


def _typed(value: str) -> Any:
    """An id as the JSON value a body would carry: a number when it is one."""
    return int(value) if value.isdigit() else value


def _same_type(schema: dict[str, Any], org_id: str) -> bool:
    """Whether a parameter has an organisation id's type: an integer for a numeric id, a uuid for a uuid."""
    if org_id.isdigit():
        return schema.get("type") == "integer"
    return schema.get("format") == "uuid" and len(org_id) == 36
