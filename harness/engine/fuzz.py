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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from harness.config.model import TargetConfig
from harness.config.operations import unmatched
from harness.engine.cases import PROBE, Case, generate_cases
from harness.engine.exchange import Caller, Exchange
from harness.engine.guard import pattern_regex
from harness.engine.probes import CoverageCell, Family, Probe, StateRead
from harness.engine.schema import ApiSchema, Operation, body_fields, fill_path, invent_id
from harness.engine.world import ClerkCredentials, Org, Principal, World

__all__ = ["FuzzLimits", "FuzzRun", "Fuzzer", "is_never", "planned_operations", "unmatched_never"]

ORG_SWITCH_HEADER = "X-Org-Id"
MALFORMED_ID = "not-an-id'"  # a quote, so that an id spliced into SQL shows
PRIVILEGED_FIELDS = ("org_id", "owner_id", "role", "admin", "is_admin")
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


def families_for(config: TargetConfig, op: Operation) -> tuple[Family, ...]:
    """The families of probes the engine sends on `op`: what the plan prints, and all the engine may send."""
    params = {c.param for c in config.canaries} | ({config.members.param} if config.members else set())
    fields = body_fields(op)
    found = [Family.ROLE]
    if op.path_params and set(op.path_params) <= params:
        found.append(Family.FOREIGN_ID)
    if op.mutating and op.body_schema is not None:
        if any(f.endswith("_id") and f in params for f in fields):
            found.append(Family.FOREIGN_REFERENCE)
        found.append(Family.MASS_ASSIGNMENT)
    if not config.principals:
        # Organisation ids are known, and sessions name an organisation, only in a world of Clerk sign-ins.
        found += [Family.ORG_SWITCH, Family.ORG_CLAIM]
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
    ) -> Exchange:  # fmt: skip
        # The plan is the engine's own rule: a family it does not list is never sent (the plan cannot drift).
        assert family in self.families(op), f"{family} is not planned for {op}"
        self._spend(str(op))
        _keep_fresh(caller, who)
        with self.lock:
            cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
            cell.requests += 1
            cell.families.add(family.value)
        payload = case.body if body is None else body
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
        try:
            for op in ops:
                if self.stopped is not None:
                    break
                # Organisations run side by side, each one's principals in turn (they share its scratch records,
                # so their order is part of the seed's reproducible run); operations stay in order.
                with ThreadPoolExecutor(CONCURRENCY) as pool:
                    done = [pool.submit(self._group, callers, g, op, cases[str(op)]) for g in groups.values()]
                    for future in done:
                        future.result()
            self._read_state()
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

    def _group(self, callers: dict[str, Caller], group: list[Principal], op: Operation, cases: list[Case]) -> None:
        for who in group:
            try:
                self._local.rng = random.Random(f"{self.seed}|{op}|{who.name}")
                self.exercise(callers[who.name], who, op, cases)
            except _Stop as stop:
                with self.lock:
                    cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
                    cell.note = cell.note or f"partial: {stop}"

    def exercise(self, caller: Caller, who: Principal, op: Operation, cases: list[Case]) -> None:
        """The role matrix on the caller's own records, then every cross-org family."""
        org = self.world.orgs.get(who.org) if who.org else None
        own_ids = self.own_ids(org, op)
        if op.path_params and own_ids is None:
            with self.lock:
                cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
                cell.note = "no own record to address"
        own_path = self.fill(op, own_ids or {})
        seen: list[Exchange] = []
        try:
            for n, case in enumerate(cases):
                seen.append(
                    self.send(caller, who, op, own_path, case, Family.ROLE, body=self.mark_body(case.body, n, org))
                )
        finally:  # a budget that runs out mid-family still hands over what was sent, to be judged
            if seen:
                self.probe(Family.ROLE, op, who, *seen, own_records=own_ids is not None)
        if org is not None:
            self.cross_org(caller, who, op, cases[0], org, own_path)

    def cross_org(self, caller: Caller, who: Principal, op: Operation, case: Case, org: Org, own_path: str) -> None:
        planned = self.families(op)
        own_body = self.mark_body(case.body, 999, org)
        for other in self.world.orgs.values():
            if other.key == org.key:
                continue
            if Family.FOREIGN_ID in planned:
                self.foreign_ids(caller, who, op, case, other, own_body)
            if isinstance(own_body, dict) and Family.MASS_ASSIGNMENT in planned:
                self.foreign_bodies(caller, who, op, case, other, own_body, own_path)
            if Family.ORG_SWITCH in planned and other.id is not None:
                switch = {ORG_SWITCH_HEADER: other.id}
                got = self.send(
                    caller, who, op, own_path, case, Family.ORG_SWITCH, headers=switch, query={"org_id": other.id}
                )
                self.probe(Family.ORG_SWITCH, op, who, got, other_org=other.key, substituted=f"{switch}")
            if (
                Family.ORG_CLAIM in planned
                and isinstance(who.credentials, ClerkCredentials)
                and isinstance(other.owner.credentials, ClerkCredentials)
            ):
                # The caller's own session naming the other organisation: only a membership may let it in.
                claimed = other.owner.credentials.org
                if claimed is not None:
                    forged = ClerkCredentials(who.credentials.issuer, who.credentials.sub, claimed).headers()
                    got = self.send(caller, who, op, own_path, case, Family.ORG_CLAIM, headers=forged)
                    self.probe(Family.ORG_CLAIM, op, who, got, other_org=other.key, substituted=f"o.id {claimed.id}")
            if Family.FOREIGN_QUERY in planned and (foreign_markers := sorted(self.world.markers(other.key))):
                self.foreign_query(caller, who, op, case, own_path, list(op.search_params), foreign_markers[0], other)
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

    def foreign_ids(self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, body: Any) -> None:
        ids = {}
        for param in op.path_params:
            value = self.id_for(other, param, scratch=False)
            if value is None:
                return
            ids[param] = value
        invented = {p: invent_id(op.param_schema(p), self.rng) for p in op.path_params}
        control = self.send(caller, who, op, self.fill(op, invented), case, Family.FOREIGN_ID, body=body)
        seen = self.send(caller, who, op, self.fill(op, ids), case, Family.FOREIGN_ID, body=body)
        self.probe(
            Family.FOREIGN_ID, op, who, seen, control=control, other_org=other.key, substituted=f"{other.key}'s {ids}"
        )

    def foreign_bodies(
        self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, body: dict[str, Any], path: str
    ) -> None:
        references = {
            name: value
            for name in body_fields(op)
            if name.endswith("_id") and (value := self.id_for(other, name, scratch=False))
        }
        if references:
            seen = self.send(caller, who, op, path, case, Family.FOREIGN_REFERENCE, body={**body, **references})
            self.probe(
                Family.FOREIGN_REFERENCE, op, who, seen, other_org=other.key,
                substituted=f"{other.key}'s records in {', '.join(sorted(references))}",
            )  # fmt: skip
        privileged: list[dict[str, Any]] = [{"org_id": other.id}]
        privileged.append({"owner_id": other.owner.user_id if other.principals else None})
        privileged.append({"role": self.config.admin_role, "admin": True, "is_admin": True})
        sent = [
            self.send(caller, who, op, path, case, Family.MASS_ASSIGNMENT, body={**body, **fields})
            for fields in privileged
        ]
        fields_sent = ", ".join(PRIVILEGED_FIELDS)
        self.probe(Family.MASS_ASSIGNMENT, op, who, *sent, other_org=other.key, substituted=fields_sent)

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
            path = path.replace("{" + name + "}", value)
        for name in op.path_params:
            if name not in ids:
                path = path.replace("{" + name + "}", invent_id(op.param_schema(name), random.Random(name)))
        return fill_path(path, "0")

    def own_ids(self, org: Org | None, op: Operation) -> dict[str, str] | None:
        """Ids of the caller's own organisation for each path parameter (scratch records, members)."""
        if not op.path_params:
            return {}
        if org is None:
            org = next(iter(self.world.orgs.values()))
        ids = {}
        for param in op.path_params:
            found = self.id_for(org, param, scratch=True)
            if found is None:
                return None
            ids[param] = found
        return ids

    def id_for(self, org: Org, param: str, *, scratch: bool) -> str | None:
        """An id of `org` for a path parameter or reference field: a member's, or a record's of its resource."""
        if self.config.members is not None and param == self.config.members.param:
            members = [p for p in org.principals if p.user_id and p.role is None]
            return members[0].user_id if members else None
        resource = self.param_resource.get(param)
        records = org.scratch if scratch else org.canaries
        return next((c.id for c in records if c.resource == resource), None)

    def mark_body(self, body: Any, n: int, org: Org | None) -> Any:
        """The case's body with its probe text replaced by a marker of the caller's organisation."""
        if body is None or org is None:
            return body
        marker = f"probe{org.key}x{n:03d}{self.rng.getrandbits(24):06x}"
        with self.lock:
            self.world.org(org.key).probes.add(marker)
        return json.loads(json.dumps(body).replace(f'"{PROBE}"', json.dumps(marker)).replace(f"{PROBE}@", f"{marker}@"))

    # -- state -------------------------------------------------------------------------------------------------

    def _read_state(self) -> None:
        """Each organisation's owner re-reads its canaries and lists (what `never` allows), for the state checks."""
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
                for canary in org.canaries:
                    template = next((c.read.path for c in self.config.canaries if c.key == canary.resource), "")
                    if is_never(self.config, "GET", template):
                        continue
                    try:
                        self._spend("state", state=True)
                    except _Stop:
                        return
                    _keep_fresh(caller, owner)
                    seen = caller.call("GET", canary.read_path)
                    self._count(seen)
                    self.on_state(StateRead(org.key, owner, seen, canary=canary, operation=f"GET {template}"))
                for op in lists:
                    try:
                        self._spend("state", state=True)
                    except _Stop:
                        return
                    _keep_fresh(caller, owner)
                    seen = caller.call("GET", op.path)
                    self._count(seen)
                    self.on_state(StateRead(org.key, owner, seen, operation=str(op)))
