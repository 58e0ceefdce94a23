"""Cross-org and role fuzzing of every operation of the schema, judged by status, by markers and by state.

For every operation and every principal (each role of each organisation, and anonymous), generated
cases are replayed with ids substituted: the caller's own organisation's scratch records, the other
organisation's protected canaries and members, and a random id as the control. Checks are plain
functions of one exchange; the state checks re-read every canary as its owner at the end.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.config.model import TargetConfig
from harness.engine.cases import PROBE, Case, generate_cases
from harness.engine.exchange import Caller, Exchange, leaks_in
from harness.engine.schema import Operation, body_fields, fill_path, operations
from harness.engine.world import ClerkCredentials, Org, Principal, World

__all__ = ["CoverageCell", "Finding", "FuzzResult", "Kind", "fuzz"]

ORG_SWITCH_HEADER = "X-Org-Id"
MALFORMED_ID = "not-an-id'"  # a quote, so that an id spliced into SQL shows
PRIVILEGED_FIELDS = ("org_id", "owner_id", "role", "admin", "is_admin")
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
CONCURRENCY = 4  # requests in flight at once: enough to keep a small server busy, not to flood it
TOKEN_REFRESH_SECONDS = 30.0  # Clerk session tokens live 60 s
MAX_REQUESTS = 50_000
MAX_SECONDS = 600.0


class Kind:
    """Finding kinds, each named for the violation, and the check each decides."""

    NOT_REFUSED = "NotRefused"  # M3: a principal without the permission was not refused
    NEVER_SUCCEEDED = "NeverSucceeded"  # I3: the admin never succeeded on its own data
    CROSS_ORG_READ = "CrossOrgRead"  # M4: 2xx on another organisation's id
    FOREIGN_MARKER = "ForeignMarker"  # M4: a marker the caller may not see appeared
    EXISTENCE_ORACLE = "ExistenceOracle"  # M4: another org's id answered unlike a random id
    CROSS_ORG_WRITE = "CrossOrgWrite"  # M4: a canary changed, vanished, or gained foreign data
    SERVER_ERROR = "ServerError"  # O1: 5xx, stack trace or SQL text

    CHECKS: ClassVar[dict[str, tuple[str, ...]]] = {
        NOT_REFUSED: ("M3",),
        NEVER_SUCCEEDED: ("I3",),
        CROSS_ORG_READ: ("M4", "I3"),
        FOREIGN_MARKER: ("M4", "I3"),
        EXISTENCE_ORACLE: ("M4",),
        CROSS_ORG_WRITE: ("M4", "I3"),
        SERVER_ERROR: ("O1",),
    }


@dataclass(frozen=True)
class Finding:
    """One violation, with what reproduces it."""

    kind: str
    operation: str
    principal: str
    detail: str
    curl: str = ""

    def line(self) -> str:
        """`Kind: principal OPERATION: detail  repro: curl ...`."""
        repro = f"  repro: {self.curl}" if self.curl else ""
        return f"{self.kind}: {self.principal} {self.operation}: {self.detail}{repro}"


@dataclass
class CoverageCell:
    """How one operation was exercised by one principal."""

    requests: int = 0
    families: set[str] = field(default_factory=set)
    note: str = ""


@dataclass
class FuzzResult:
    """Everything one fuzz run found and did."""

    findings: list[Finding]
    coverage: dict[str, dict[str, CoverageCell]]  # operation -> principal -> cell
    requests: int
    seconds: float
    operations: list[str]
    unexercised: list[str]

    def by_check(self, check_id: str) -> list[Finding]:
        """The findings that decide `check_id`."""
        return [f for f in self.findings if check_id in Kind.CHECKS[f.kind]]


class _Budget:
    def __init__(self) -> None:
        self.requests = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self) -> None:
        self.requests += 1
        if self.requests > MAX_REQUESTS or time.monotonic() > self.deadline:
            raise RuntimeError(f"fuzz budget exhausted ({MAX_REQUESTS} requests or {MAX_SECONDS:.0f} s)")


class _Fuzzer:
    def __init__(
        self, base_url: str, config: TargetConfig, world: World, schema: dict[str, Any], seed: int, cases: int
    ) -> None:
        self.cases = cases
        self.base_url = base_url
        self.config = config
        self.world = world
        self.schema = schema
        self._local = threading.local()  # each thread's seeded random, so that concurrency keeps runs reproducible
        self.lock = threading.Lock()
        self.seed = seed
        self.findings: list[Finding] = []
        self.coverage: dict[str, dict[str, CoverageCell]] = {}
        self.budget = _Budget()
        self.param_resource = {c.param: c.key for c in config.canaries}

    # -- sending and the checks every exchange goes through -----------------------------------------------

    def send(
        self, caller: Caller, who: Principal, op: Operation, path: str, case: Case, family: str,
        headers: dict[str, str] | None = None, query: dict[str, Any] | None = None, body: Any = None,
        echo: str | None = None,
    ) -> Exchange:  # fmt: skip
        with self.lock:
            self.budget.spend()
            cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
            cell.requests += 1
            cell.families.add(family)
        payload = case.body if body is None else body
        seen = caller.call(op.method, path, payload, params={**case.query, **(query or {})}, headers=headers)
        self.judge_every_response(who, op, seen, echo)
        return seen

    def judge_every_response(self, who: Principal, op: Operation, seen: Exchange, echo: str | None = None) -> None:
        """No 5xx, no internals, no marker the caller may not see (but the one it sent, `echo`, coming back)."""
        if seen.status >= 500:
            self.find(Kind.SERVER_ERROR, op, who, f"answered {seen.status}", seen.curl)
        if leaks := leaks_in(seen.text):
            self.find(Kind.SERVER_ERROR, op, who, f"response shows internals: {leaks[0]!r}", seen.curl)
        visible = seen.text + " " + " ".join(f"{k}: {v}" for k, v in seen.headers.items())
        for key in self.world.orgs:
            if key == who.org:
                continue
            for marker in self.world.markers(key):
                if marker in visible and marker != echo:
                    self.find(Kind.FOREIGN_MARKER, op, who, f"{key}'s marker {marker} in the response", seen.curl)
                    return

    def find(self, kind: str, op: Operation, who: Principal, detail: str, curl: str = "") -> None:
        with self.lock:
            self.findings.append(Finding(kind, str(op), who.name, detail, curl))

    @property
    def rng(self) -> random.Random:
        """This thread's random, seeded from the run's seed, the operation and the principal."""
        found: random.Random = self._local.rng
        return found

    # -- the run ---------------------------------------------------------------------------------------------

    def run(self) -> FuzzResult:
        started = time.monotonic()
        ops = [op for op in operations(self.schema) if not self._never(op)]
        ops.sort(key=lambda op: (_METHOD_ORDER.get(op.method, 9), -op.path.count("/"), op.path))
        cases = generate_cases(self.schema, ops, per_operation=self.cases, seed=self.seed)
        principals = self.world.principals()
        groups: dict[str | None, list[Principal]] = {}
        for who in principals:
            groups.setdefault(who.org, []).append(who)
        callers = {who.name: Caller(self.base_url, who.credentials.headers(), name=who.name) for who in principals}
        minted = time.monotonic()
        try:
            for op in ops:
                if time.monotonic() - minted > TOKEN_REFRESH_SECONDS:
                    for who in principals:
                        callers[who.name].present(who.credentials.headers())
                    minted = time.monotonic()
                # Organisations run side by side, each one's principals in turn (they share its scratch records,
                # so their order is part of the seed's reproducible run); operations stay in order.
                with ThreadPoolExecutor(CONCURRENCY) as pool:
                    done = [pool.submit(self.exercise_group, callers, g, op, cases[str(op)]) for g in groups.values()]
                    for future in done:
                        future.result()
        finally:
            for caller in callers.values():
                caller.close()
        self.check_state()
        self.findings.sort(key=lambda f: (f.kind, f.operation, f.principal, f.detail))
        unexercised = [str(op) for op in ops if not any(c.requests for c in self.coverage.get(str(op), {}).values())]
        for never in self.config.fuzz.never:
            self.coverage.setdefault(str(never), {})["*"] = CoverageCell(note="not called: the config says never")
        return FuzzResult(
            self.findings, self.coverage, self.budget.requests, time.monotonic() - started, [str(o) for o in ops],
            unexercised,
        )  # fmt: skip

    def exercise_group(
        self, callers: dict[str, Caller], group: list[Principal], op: Operation, cases: list[Case]
    ) -> None:
        for who in group:
            self.exercise(callers[who.name], who, op, cases)

    def exercise(self, caller: Caller, who: Principal, op: Operation, cases: list[Case]) -> None:
        self._local.rng = random.Random(f"{self.seed}|{op}|{who.name}")
        org = self.world.orgs.get(who.org) if who.org else None
        own_ids = self.own_ids(org, op)
        if op.path_params and own_ids is None:
            cell = self.coverage.setdefault(str(op), {}).setdefault(who.name, CoverageCell())
            cell.note = "no own record to address"
        own_path = fill_path_by_name(op.path, own_ids or {})
        expected = self.expected_refusal(who, op)
        successes = 0
        for n, case in enumerate(cases):
            body = self.mark_body(case.body, who, n, org)
            seen = self.send(caller, who, op, own_path, case, "role", body=body)
            successes += seen.ok
            if expected is not None and seen.status != expected:
                self.find(Kind.NOT_REFUSED, op, who, f"answered {seen.status}, expected {expected}", seen.curl)
                break
        guarded = not (op.public or op.self_only)
        if who.role == self.config.admin_role and guarded and not successes and own_ids is not None:
            self.find(Kind.NEVER_SUCCEEDED, op, who, f"no 2xx in {len(cases)} cases on its own organisation's data")
        if org is not None:
            query_keys = sorted({k for c in cases for k, v in c.query.items() if isinstance(v, str)})
            self.cross_org(caller, who, op, cases[0], org, query_keys)

    def cross_org(
        self, caller: Caller, who: Principal, op: Operation, case: Case, org: Org, query_keys: list[str]
    ) -> None:
        own_path = fill_path_by_name(op.path, self.own_ids(org, op) or {})
        own_body = self.mark_body(case.body, who, 999, org)
        for other in self.world.orgs.values():
            if other.key == org.key:
                continue
            if op.path_params:
                self.foreign_ids_probe(caller, who, op, case, other, own_body)
            if isinstance(own_body, dict) and op.mutating:
                self.foreign_body_probes(caller, who, op, case, other, own_body, own_path)
            if other.id is not None:
                switch = {ORG_SWITCH_HEADER: other.id}
                self.send(caller, who, op, own_path, case, "org-switch", headers=switch, query={"org_id": other.id})
            if isinstance(who.credentials, ClerkCredentials) and isinstance(other.owner.credentials, ClerkCredentials):
                # The caller's own session naming the other organisation: only a membership may let it in.
                claimed = other.owner.credentials.org
                if claimed is not None:
                    forged = ClerkCredentials(who.credentials.issuer, who.credentials.sub, claimed).headers()
                    self.send(caller, who, op, own_path, case, "org-claim", headers=forged)
            if query_keys and (foreign_markers := sorted(self.world.markers(other.key))):
                self.foreign_query_probe(caller, who, op, case, own_path, query_keys, foreign_markers[0])
        self.malformed_probes(caller, who, op, case, own_path, own_body)

    def foreign_query_probe(
        self, caller: Caller, who: Principal, op: Operation, case: Case, path: str, keys: list[str], value: str
    ) -> None:
        """Searching for another organisation's value (a name, an email, a user id) answers exactly as searching
        for a value nobody has: an echo of the query is fine, anything more is a leak."""
        nobody = f"{value[: len(value) // 2]}{self.rng.getrandbits(64):016x}"[: len(value)]
        control = self.send(caller, who, op, path, case, "foreign-query", query=dict.fromkeys(keys, nobody))
        seen = self.send(caller, who, op, path, case, "foreign-query", query=dict.fromkeys(keys, value), echo=value)
        if (seen.status, seen.text.replace(value, "?")) != (control.status, control.text.replace(nobody, "?")):
            detail = f"searching {', '.join(keys)} for another organisation's {value} answers unlike a random value"
            self.find(Kind.FOREIGN_MARKER, op, who, detail, seen.curl)

    def foreign_ids_probe(
        self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, body: Any
    ) -> None:
        """The other organisation's ids in the path: never 2xx, and the same answer as a random id."""
        control = fill_path_by_name(op.path, {p: str(uuid.UUID(int=self.rng.getrandbits(128))) for p in op.path_params})
        random_seen = self.send(caller, who, op, control, case, "existence", body=body)
        for ids in self.foreign_ids(other, op):
            seen = self.send(caller, who, op, fill_path_by_name(op.path, ids), case, "foreign-id", body=body)
            if seen.ok:
                self.find(Kind.CROSS_ORG_READ, op, who, f"answered {seen.status} on {other.key}'s {ids}", seen.curl)
            elif (seen.status, _shape(seen)) != (random_seen.status, _shape(random_seen)):
                detail = f"{other.key}'s id answers {seen.status}, a random id {random_seen.status}"
                self.find(Kind.EXISTENCE_ORACLE, op, who, detail, seen.curl)

    def foreign_body_probes(
        self, caller: Caller, who: Principal, op: Operation, case: Case, other: Org, body: dict[str, Any], path: str
    ) -> None:
        """On the caller's own records: every reference field aimed at the other organisation's records (a 2xx is
        a leak by itself), then each privileged field aimed at it (judged by the state check at the end)."""
        references = {
            name: value
            for name in body_fields(self.schema, op)
            if name.endswith("_id") and (value := self.id_for(other, name, scratch=False))
        }
        if references:
            seen = self.send(caller, who, op, path, case, "foreign-reference", body={**body, **references})
            if seen.ok:
                detail = f"accepted a reference to {other.key}'s records ({', '.join(sorted(references))})"
                self.find(Kind.CROSS_ORG_WRITE, op, who, detail, seen.curl)
        privileged: list[dict[str, Any]] = [{"org_id": other.id}]
        privileged.append({"owner_id": other.owner.user_id if other.principals else None})
        privileged.append({"role": self.config.admin_role, "admin": True, "is_admin": True})
        for fields in privileged:
            self.send(caller, who, op, path, case, "mass-assignment", body={**body, **fields})

    def malformed_probes(self, caller: Caller, who: Principal, op: Operation, case: Case, path: str, body: Any) -> None:
        """Malformed ids in the path and in id fields of the body: a 4xx, never a 5xx or an SQL error."""
        if op.path_params:
            malformed = fill_path_by_name(op.path, dict.fromkeys(op.path_params, MALFORMED_ID))
            self.send(caller, who, op, malformed, case, "malformed-id")
        fields = body_fields(self.schema, op)
        broken: dict[str, Any] = {n: MALFORMED_ID for n in fields if n.endswith("_id")}
        broken |= {n: [MALFORMED_ID] for n in fields if n.endswith("ids")}
        if broken and isinstance(body, dict):
            self.send(caller, who, op, path, case, "malformed-id", body={**body, **broken})

    # -- ids and bodies ----------------------------------------------------------------------------------------

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

    def foreign_ids(self, other: Org, op: Operation) -> list[dict[str, str]]:
        """Other-org id sets for the path: its protected canaries, and its members for member paths."""
        found = {}
        for param in op.path_params:
            value = self.id_for(other, param, scratch=False)
            if value is None:
                return []
            found[param] = value
        return [found]

    def id_for(self, org: Org, param: str, *, scratch: bool) -> str | None:
        if self.config.members is not None and param == self.config.members.param:
            members = [p for p in org.principals if p.user_id and p.role is None]
            return members[0].user_id if members else None
        resource = self.param_resource.get(param)
        records = org.scratch if scratch else org.canaries
        return next((c.id for c in records if c.resource == resource), None)

    def mark_body(self, body: Any, who: Principal, n: int, org: Org | None) -> Any:
        """The case's body with its probe text replaced by a marker of the caller's organisation."""
        if body is None or org is None:
            return body
        marker = f"probe{org.key}x{n:03d}{self.rng.getrandbits(24):06x}"
        with self.lock:
            self.world.org(org.key).probes.add(marker)
        return json.loads(json.dumps(body).replace(f'"{PROBE}"', json.dumps(marker)).replace(f"{PROBE}@", f"{marker}@"))

    def expected_refusal(self, who: Principal, op: Operation) -> int | None:
        public = op.public or any(str(ref) == str(op) for ref in self.config.fuzz.public)
        self_only = op.self_only or any(str(ref) == str(op) for ref in self.config.fuzz.self_only)
        if who.anonymous:
            return None if public else 401
        if public or self_only:
            return None
        if who.role is None:
            return 403
        if who.role in self.config.roles.read_only and op.mutating:
            return 403
        return None

    def _never(self, op: Operation) -> bool:
        return any(str(ref) == str(op) for ref in self.config.fuzz.never)

    # -- state ---------------------------------------------------------------------------------------------------

    def check_state(self) -> None:
        """Every protected canary unchanged, as its owner reads it; no organisation's lists hold foreign data."""
        list_ops = [op for op in operations(self.schema) if op.method == "GET" and not op.path_params]
        for org in self.world.orgs.values():
            if not org.principals:
                continue
            owner = org.owner
            with Caller(self.base_url, owner.credentials.headers(), name=owner.name) as caller:
                for canary in org.canaries:
                    self.budget.spend()
                    now = caller.call("GET", canary.read_path)
                    if now.json() != canary.snapshot:
                        detail = f"{canary.resource} canary {canary.id} changed or vanished: now {now.line()}"
                        self.findings.append(
                            Finding(Kind.CROSS_ORG_WRITE, f"GET {canary.read_path}", owner.name, detail)
                        )
                for op in list_ops:
                    self.budget.spend()
                    seen = caller.call("GET", op.path)
                    for other in self.world.orgs.values():
                        if other.key == org.key:
                            continue
                        if hit := next(
                            (m for m in [*self.world.markers(other.key), *other.probes] if m in seen.text), None
                        ):
                            detail = f"{org.key}'s list holds {other.key}'s {hit}: written across organisations"
                            self.findings.append(Finding(Kind.CROSS_ORG_WRITE, str(op), owner.name, detail, seen.curl))
                            break


def fill_path_by_name(path: str, ids: dict[str, str]) -> str:
    """The path with each named parameter replaced by its id (unnamed ones by a random-looking uuid)."""
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return fill_path(path, "00000000-0000-4000-8000-000000000000")


def _shape(seen: Exchange) -> str:
    document = seen.json()
    if isinstance(document, dict):
        return ",".join(sorted(document))
    return type(document).__name__


def fuzz(
    base_url: str, config: TargetConfig, world: World, schema: dict[str, Any], seed: int, *, cases: int | None = None
) -> FuzzResult:
    """Fuzz every operation of `schema` as every principal of `world` (`cases` per operation: the config's)."""
    return _Fuzzer(base_url, config, world, schema, seed, cases or config.fuzz.cases).run()
