"""Every registered fuzz check, judged on hand-made probes in milliseconds: it passes on what a secure target
answers, and raises its finding on what the fault it exists for answers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from harness.checks import findings as findings_module
from harness.checks.authorization import admin_succeeds_on_own_data, refuses_without_permission
from harness.checks.catalogue import CATALOGUE
from harness.checks.errors import shows_no_internal_error
from harness.checks.findings import Finding, FindingKind
from harness.checks.fuzz import Judge
from harness.checks.isolation import (
    foreign_id_answers_as_a_missing_one,
    foreign_search_answers_as_a_random_one,
    refuses_foreign_ids,
    refuses_foreign_references,
    shows_no_foreign_marker,
)
from harness.checks.registry import PROBE_CHECKS, STATE_CHECKS, Context
from harness.checks.state import canaries_are_unchanged, lists_hold_no_foreign_data
from harness.engine.exchange import Exchange
from harness.engine.probes import Family, Probe, StateRead
from harness.engine.schema import Operation
from harness.engine.world import ANONYMOUS, Principal
from tests.harness.fakes import FakeApi, fake_config, fake_world

GET_ITEM = Operation("GET", "/items/{item_id}", public=False, self_only=False, body_schema=None)
POST_ITEMS = Operation("POST", "/items", public=False, self_only=False, body_schema=None)


def _seen(status: int, text: str = "{}", method: str = "GET", url: str = "/items/1") -> Exchange:
    return Exchange(method, url, status, text, f"curl -X {method} http://t{url}")


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(fake_config(tmp_path), fake_world(FakeApi()))


def _who(ctx: Context, name: str) -> Principal:
    return next(p for p in ctx.world.principals() if p.name == name)


def _kinds(found: Iterable[Finding]) -> list[FindingKind]:
    return [f.kind for f in found]


def test_role_matrix_refusals(ctx: Context) -> None:
    viewer, admin = _who(ctx, "a viewer"), _who(ctx, "a admin")
    refused = Probe(Family.ROLE, POST_ITEMS, viewer, (_seen(403, method="POST"),))
    allowed = Probe(Family.ROLE, POST_ITEMS, viewer, (_seen(403), _seen(201, method="POST")))
    assert _kinds(refuses_without_permission(ctx, refused)) == []
    assert _kinds(refuses_without_permission(ctx, allowed)) == [FindingKind.NOT_REFUSED]
    assert _kinds(refuses_without_permission(ctx, Probe(Family.ROLE, POST_ITEMS, admin, (_seen(201),)))) == []
    anonymous = Probe(Family.ROLE, GET_ITEM, ANONYMOUS, (_seen(200),))
    assert _kinds(refuses_without_permission(ctx, anonymous)) == [FindingKind.NOT_REFUSED]
    missing = Probe(Family.ROLE, POST_ITEMS, viewer, (_seen(404, method="POST"),))
    assert _kinds(refuses_without_permission(ctx, missing)) == []  # looked up before the role: "cannot read" is 404
    unanswered = Probe(Family.ROLE, POST_ITEMS, viewer, (_seen(0),))
    assert _kinds(refuses_without_permission(ctx, unanswered)) == []  # no answer proves nothing either way


def test_admin_must_succeed_on_its_own_data(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    assert _kinds(admin_succeeds_on_own_data(ctx, Probe(Family.ROLE, GET_ITEM, admin, (_seen(404), _seen(200))))) == []
    conflict = Probe(Family.ROLE, GET_ITEM, admin, (_seen(409, '{"detail": "the book is on loan"}'),))
    assert _kinds(admin_succeeds_on_own_data(ctx, conflict)) == []  # found, and refused for its state: reached
    broken = Probe(Family.ROLE, GET_ITEM, admin, (_seen(404), _seen(404)))
    assert _kinds(admin_succeeds_on_own_data(ctx, broken)) == [FindingKind.NEVER_SUCCEEDED]
    nothing_to_address = Probe(Family.ROLE, GET_ITEM, admin, (_seen(404),), own_records=False)
    assert _kinds(admin_succeeds_on_own_data(ctx, nothing_to_address)) == []


def test_foreign_ids(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    missing = _seen(404, '{"detail": "not found"}')
    secure = Probe(Family.FOREIGN_ID, GET_ITEM, admin, (missing,), control=missing, other_org="b")
    leaked = Probe(Family.FOREIGN_ID, GET_ITEM, admin, (_seen(200, '{"id": 3}'),), control=missing, other_org="b")
    oracle = Probe(Family.FOREIGN_ID, GET_ITEM, admin, (_seen(403, '{"detail": "no"}'),), control=missing)
    assert _kinds(refuses_foreign_ids(ctx, secure)) == []
    assert _kinds(refuses_foreign_ids(ctx, leaked)) == [FindingKind.CROSS_ORG_READ]
    assert _kinds(foreign_id_answers_as_a_missing_one(ctx, secure)) == []
    assert _kinds(foreign_id_answers_as_a_missing_one(ctx, oracle)) == [FindingKind.EXISTENCE_ORACLE]


def test_foreign_references(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    refused = Probe(Family.FOREIGN_REFERENCE, POST_ITEMS, admin, (_seen(422),), other_org="b")
    accepted = Probe(Family.FOREIGN_REFERENCE, POST_ITEMS, admin, (_seen(201),), other_org="b")
    assert _kinds(refuses_foreign_references(ctx, refused)) == []
    assert _kinds(refuses_foreign_references(ctx, accepted)) == [FindingKind.CROSS_ORG_WRITE]


def test_foreign_search(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    value, nobody = "canarybx0123456789ab", "canarybx01fedcba9876"
    control = _seen(200, f'{{"q": "{nobody}", "items": []}}')
    echo = Probe(
        Family.FOREIGN_QUERY, GET_ITEM, admin, (_seen(200, f'{{"q": "{value}", "items": []}}'),), control=control,
        echo=value, control_echo=nobody,
    )  # fmt: skip
    found = Probe(
        Family.FOREIGN_QUERY, GET_ITEM, admin, (_seen(200, f'{{"q": "{value}", "items": [{{"id": 4}}]}}'),),
        control=control, echo=value, control_echo=nobody,
    )  # fmt: skip
    assert _kinds(foreign_search_answers_as_a_random_one(ctx, echo)) == []
    stamped = Probe(
        Family.FOREIGN_QUERY, GET_ITEM, admin, (_seen(200, '{"items": [], "at": "2026-12-02T08:00:01Z"}'),),
        control=_seen(200, '{"items": [], "at": "2026-12-02T08:00:00Z"}'), echo=value, control_echo=nobody,
    )  # fmt: skip
    assert _kinds(foreign_search_answers_as_a_random_one(ctx, stamped)) == []  # a timestamp is not a leak
    counted = Probe(
        Family.FOREIGN_QUERY, GET_ITEM, admin, (_seen(200, '{"items": [], "total": 1}'),),
        control=_seen(200, '{"items": [], "total": 0}'), echo=value, control_echo=nobody,
    )  # fmt: skip
    assert _kinds(foreign_search_answers_as_a_random_one(ctx, counted)) == [FindingKind.FOREIGN_MARKER]
    assert _kinds(foreign_search_answers_as_a_random_one(ctx, found)) == [FindingKind.FOREIGN_MARKER]


def test_foreign_markers_in_any_answer(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    theirs = sorted(ctx.world.markers("b"))[0]
    mine = sorted(ctx.world.markers("a"))[0]
    assert _kinds(shows_no_foreign_marker(ctx, Probe(Family.ROLE, GET_ITEM, admin, (_seen(200, mine),)))) == []
    leak = Probe(Family.ROLE, GET_ITEM, admin, (_seen(200, f'["{theirs}"]'),))
    assert _kinds(shows_no_foreign_marker(ctx, leak)) == [FindingKind.FOREIGN_MARKER]
    echoed = Probe(Family.FOREIGN_QUERY, GET_ITEM, admin, (_seen(200, theirs),), echo=theirs)
    assert _kinds(shows_no_foreign_marker(ctx, echoed)) == []  # the caller's own query, come back


def test_internal_errors(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    assert _kinds(shows_no_internal_error(ctx, Probe(Family.ROLE, GET_ITEM, admin, (_seen(404),)))) == []
    crash = Probe(Family.MALFORMED_ID, GET_ITEM, admin, (_seen(500, "psycopg.errors.InvalidTextRepresentation"),))
    assert _kinds(shows_no_internal_error(ctx, crash)) == [FindingKind.SERVER_ERROR, FindingKind.SERVER_ERROR]


def test_state_after_the_probes(ctx: Context) -> None:
    org = ctx.world.org("a")
    canary = org.canaries[0]
    same = StateRead("a", org.owner, _seen(200, json.dumps(canary.snapshot)), canary=canary)
    gone = StateRead("a", org.owner, _seen(404, '{"detail": "not found"}'), canary=canary)
    assert _kinds(canaries_are_unchanged(ctx, same)) == []
    assert _kinds(canaries_are_unchanged(ctx, gone)) == [FindingKind.CROSS_ORG_WRITE]
    theirs = sorted(ctx.world.markers("b"))[0]
    clean = StateRead("a", org.owner, _seen(200, f'["{canary.marker}"]'), operation="GET /items")
    dirty = StateRead("a", org.owner, _seen(200, f'["{theirs}"]'), operation="GET /items")
    assert _kinds(lists_hold_no_foreign_data(ctx, clean)) == []
    assert _kinds(lists_hold_no_foreign_data(ctx, dirty)) == [FindingKind.CROSS_ORG_WRITE]


def test_the_judge_stamps_what_each_check_decides(ctx: Context) -> None:
    judge = Judge(ctx)
    viewer = _who(ctx, "a viewer")
    judge.probe(Probe(Family.ROLE, POST_ITEMS, viewer, (_seen(201, method="POST"),)))
    assert [(f.kind, f.checks) for f in judge.findings] == [(FindingKind.NOT_REFUSED, ("M3", "O4"))]


def test_every_registered_check_is_catalogued_and_explains_itself() -> None:
    known = {c.id for c in CATALOGUE}
    checks = [*PROBE_CHECKS, *STATE_CHECKS]
    assert len({c.name for c in checks}) == len(checks) >= 10
    for check in checks:
        assert check.doc, f"{check.name} has no docstring"
        assert check.decides and set(check.decides) <= known, check.name
        assert check.raises, check.name
    # No kind nobody raises: each is declared by a registered check or raised by name in a module of harness.checks.
    declared = {kind for c in checks for kind in c.raises}
    sources = "".join(p.read_text() for p in Path(findings_module.__file__).parent.glob("*.py") if p.stem != "findings")
    assert {k for k in FindingKind if k not in declared and f"FindingKind.{k.name}" not in sources} == set()


def test_an_unanswered_request_is_a_finding_for_every_check_that_needed_it(ctx: Context) -> None:
    """A request the target never answered proves nothing: the checks of its family cannot pass on it."""
    judge = Judge(ctx)
    viewer = _who(ctx, "a viewer")
    lost = Exchange("DELETE", "/items/1", 0, "", "curl ...", failure="ReadError: reset")
    judge.probe(Probe(Family.ROLE, GET_ITEM, viewer, (_seen(403), lost)))
    assert [(f.kind, set(f.checks)) for f in judge.findings] == [
        (FindingKind.UNANSWERED, {"M3", "O4", "I3", "M4", "O1"})
    ]
    refused = Exchange("POST", "/admin/reset", 0, "", "curl ...", failure="RefusedByConfig: never", refused=True)
    again = Judge(ctx)
    again.probe(Probe(Family.ROLE, GET_ITEM, viewer, (refused,)))
    assert again.findings == []  # the run's own guard refused it: nothing of the target's
