"""The fuzz engine and its checks, in-process against a fake API: what is sent, what is never sent, and
what a misbehaving target costs (the findings of that request, never the run)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.checks.findings import FindingKind
from harness.checks.fuzz import FuzzResult, fuzz
from harness.engine import fuzz as engine_fuzz
from harness.engine.fuzz import FuzzLimits
from harness.engine.guard import GuardedTransport
from harness.engine.plan import plan
from harness.engine.probes import Family
from harness.engine.schema import ApiSchema, parse_schema
from harness.engine.world import World
from tests.harness.fakes import DOCUMENT, SCHEMA, FakeApi, fake_config, fake_world

BASE = "http://items.test"


def _fuzz(
    tmp_path: Path,
    api: FakeApi,
    *,
    schema: ApiSchema = SCHEMA,
    world: World | None = None,
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **options: object,
) -> FuzzResult:
    """A whole fuzz of the fake API (or `handler` in front of it), behind the guard its config's `never` makes."""
    config = fake_config(tmp_path)
    never = [(ref.method, ref.path) for ref in config.fuzz.never]
    transport = GuardedTransport(never, inner=httpx.MockTransport(handler or api))
    return fuzz(BASE, config, world or fake_world(api), schema, 7, transport=transport, **options)  # type: ignore[arg-type]


def _kinds(result: FuzzResult) -> set[FindingKind]:
    return {f.kind for f in result.findings}


def test_secure_api_gives_no_finding_and_never_calls_the_reset(tmp_path: Path) -> None:
    api = FakeApi()
    result = _fuzz(tmp_path, api)
    assert result.findings == (), [f.line() for f in result.findings]
    assert api.requests["POST /admin/reset"] == 0
    assert result.run.never == ("POST /admin/reset",)
    assert result.requests > 50 and result.run.stopped is None


def test_never_holds_even_when_every_phase_would_call_it(tmp_path: Path) -> None:
    """The guard refuses, before sending, a never-listed request whoever builds it."""
    api = FakeApi()
    guard = GuardedTransport([("POST", "/admin/*"), ("*", "/items/{item_id}")], inner=api.transport())
    with httpx.Client(base_url=BASE, transport=guard) as client:
        with pytest.raises(httpx.TransportError, match="never"):
            client.post("/admin/reset")
        with pytest.raises(httpx.TransportError, match="never"):
            client.delete("/items/3")
        assert client.get("/items", headers={"X-Key": "key-a-admin"}).status_code == 200
    assert api.requests["POST /admin/reset"] == 0 and api.requests["DELETE /items/{item_id}"] == 0
    assert guard.refused == {"POST /admin/reset": 1, "DELETE /items/3": 1}


@pytest.mark.parametrize(
    ("flaw", "kind", "operation"),
    [
        ("bola", FindingKind.CROSS_ORG_READ, "GET /items/{item_id}"),
        ("oracle", FindingKind.EXISTENCE_ORACLE, "GET /items/{item_id}"),
        ("viewer_writes", FindingKind.NOT_REFUSED, "POST /items"),
        ("list_leak", FindingKind.FOREIGN_MARKER, "GET /items"),
    ],
)
def test_each_flaw_is_found_where_it_is(tmp_path: Path, flaw: str, kind: FindingKind, operation: str) -> None:
    result = _fuzz(tmp_path, FakeApi(flaws=frozenset({flaw})))
    assert any(f.kind is kind and f.operation == operation for f in result.findings), [
        f.line() for f in result.findings
    ]
    first = next(f for f in result.findings if f.kind is kind)
    assert first.exchange is not None and first.repro.startswith("curl ")
    assert "key-" not in first.repro  # the API key is `$IAM_TOKEN_<PRINCIPAL>`, never the secret itself


def test_an_integer_id_nobody_has_is_the_control(tmp_path: Path) -> None:
    """The control id has the parameter's type: an integer parameter gets an integer, so a secure API that
    answers 422 to a uuid but 404 to a missing integer gives no existence oracle."""
    result = _fuzz(tmp_path, FakeApi())
    assert FindingKind.EXISTENCE_ORACLE not in _kinds(result)


def test_a_reset_after_a_500_is_retried_and_costs_nothing(tmp_path: Path) -> None:
    api = FakeApi(flaws=frozenset({"crash", "reset_after_500"}))
    result = _fuzz(tmp_path, api)
    assert result.run.retried >= 1 and result.run.stopped is None
    assert _kinds(result) == {FindingKind.SERVER_ERROR}  # the 500 itself, and nothing lost after it


def test_a_target_that_stops_answering_ends_the_run_with_what_it_found(tmp_path: Path) -> None:
    api = FakeApi(flaws=frozenset({"bola"}))
    config = fake_config(tmp_path)
    world = fake_world(api)
    answered = 0

    def failing(request: object) -> object:
        nonlocal answered
        answered += 1
        if answered > 40:
            api.down = True
        return api(request)  # type: ignore[arg-type]

    result = fuzz(BASE, config, world, SCHEMA, 7, transport=httpx.MockTransport(failing))  # type: ignore[arg-type]
    assert result.run.stopped is not None and "stopped answering" in result.run.stopped
    assert FindingKind.CROSS_ORG_READ in _kinds(result)  # found before the target went down, and kept
    stop = next(f for f in result.findings if f.kind is FindingKind.BUDGET_EXHAUSTED)
    assert {"M3", "M4"} <= set(stop.checks)


def test_a_budget_ends_the_run_as_partial_coverage(tmp_path: Path) -> None:
    api = FakeApi()
    result = _fuzz(tmp_path, api, limits=FuzzLimits(max_requests=20))
    # 20 probes, then each owner still reads back its canary and its list: a write already made is still seen
    assert result.requests == 20 + 2 * 2
    assert result.run.stopped is not None and "request budget" in result.run.stopped
    assert any(f.kind is FindingKind.BUDGET_EXHAUSTED and "M4" in f.checks for f in result.findings)


def test_the_cases_are_drawn_from_the_schema_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No second reading of the document during a run: every case comes from the operations already parsed."""
    import schemathesis

    def second_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the schema was parsed a second time")

    monkeypatch.setattr(schemathesis.openapi, "from_dict", second_parse)
    result = _fuzz(tmp_path, FakeApi(), cases=4)
    assert result.findings == () and result.requests > 50


def test_an_operation_the_schema_cannot_describe_is_not_sent_and_says_so(tmp_path: Path) -> None:
    """Its coverage row names the reason, and nothing is invented for it."""
    document = json.loads(json.dumps(DOCUMENT))
    broken = {"name": "n", "in": "path", "required": True, "schema": {"$ref": "#/components/schemas/Gone"}}
    document["paths"]["/notes/{n}"] = {"get": {"parameters": [broken]}}
    api = FakeApi()
    result = _fuzz(tmp_path, api, schema=parse_schema(document))
    assert result.findings == ()
    assert not [sent for sent in api.requests if "/notes" in sent]
    note = result.run.coverage["GET /notes/{n}"]["*"].note
    assert note.startswith("not fuzzed: schemathesis cannot read it: Unresolvable reference")


def test_the_plan_is_what_the_engine_sends(tmp_path: Path) -> None:
    """On a healthy target every planned family is sent, and nothing else: `iam-harness plan` tells the truth."""
    config = fake_config(tmp_path)
    result = _fuzz(tmp_path, FakeApi())
    for planned in plan(config, SCHEMA):
        cells = result.run.coverage.get(planned.operation, {}).values()
        sent = {family for cell in cells for family in cell.families}
        assert sent == {f.value for f in planned.families}, planned.operation
    search = next(p for p in plan(config, SCHEMA) if p.operation == "GET /items")
    assert Family.FOREIGN_QUERY in search.families and Family.ORG_SWITCH not in search.families  # no org ids here


@dataclass
class _Minting:
    """Credentials that hand out a new token each time they are asked (as a Clerk session is minted)."""

    key: str
    minted: int = 0

    def headers(self) -> dict[str, str]:
        self.minted += 1
        return {"X-Key": self.key, "X-Token": f"{self.key}#{self.minted}"}

    def cookies(self) -> dict[str, str]:
        return {}


def test_a_token_is_renewed_before_any_request_once_it_is_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even in the middle of one operation's probes: a token never outlives the request it is sent with."""
    api = FakeApi()
    world = fake_world(api)
    for org in world.orgs.values():
        org.principals[:] = [
            dataclasses.replace(p, credentials=_Minting(f"key-{p.name.replace(' ', '-')}")) for p in org.principals
        ]
    tokens: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers.get("X-Token", ""))
        return api(request)

    monkeypatch.setattr(engine_fuzz, "TOKEN_REFRESH_SECONDS", -1.0)  # every token is already old
    result = _fuzz(tmp_path, api, world=world, handler=recording)
    fuzzed = [t for t in tokens if t]
    assert len(fuzzed) > 50 and len(set(fuzzed)) == len(fuzzed)  # a fresh token on every request
    assert result.findings == ()


def test_records_another_organisations_principals_made_are_tried_besides_its_canaries(tmp_path: Path) -> None:
    """Ids harvested from create answers: the DELETE of one of them, made by the other organisation's admin while
    fuzzing, is attempted too, and with the flaw it is deleted (CrossOrgRead on a record that is not a canary)."""
    api = FakeApi(flaws=frozenset({"bola"}))
    world = fake_world(api)
    canaries = {c.id for org in world.orgs.values() for c in [*org.canaries, *org.scratch]}
    result = _fuzz(tmp_path, api, world=world)
    deleted = [
        f.detail
        for f in result.findings
        if f.kind is FindingKind.CROSS_ORG_READ and f.operation == "DELETE /items/{item_id}"
    ]
    harvested = [d for d in deleted if d.rsplit("=", 1)[-1] not in canaries]
    assert harvested, deleted
