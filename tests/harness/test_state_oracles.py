"""The oracles that judge by state, on hand-made probes and state reads in milliseconds: tagged writes found in a
victim's state and named for their probe, sign-ins that stop working, canaries judged against their last read,
public lists, planted secrets, privileged fields that took effect, refusals that turned into successes, writes
whose status says nothing, identifiers in public answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.checks.exposure import secrets_are_never_shown, state_shows_no_secret
from harness.checks.findings import FindingKind
from harness.checks.isolation import refuses_foreign_ids, shows_no_foreign_marker
from harness.checks.privilege import (
    organisation_fields_take_no_effect,
    refusals_stay_refused,
    role_fields_take_no_effect,
)
from harness.checks.registry import Context
from harness.checks.state import (
    canaries_are_unchanged,
    lists_hold_no_foreign_data,
    sign_in_still_works,
    victims_hold_no_tag,
)
from harness.engine.exchange import Exchange
from harness.engine.probes import Family, Probe, StateKind, StateRead
from harness.engine.schema import Operation, invent_id
from harness.engine.world import Canary, Principal, Tag
from tests.harness.fakes import FakeApi, fake_config, fake_world

PUT_PROFILE = Operation("PUT", "/users/{username}/profile", public=False, self_only=False, body_schema=None)
PATCH_ITEM = Operation("PATCH", "/items/{item_id}", public=False, self_only=False, body_schema=None)
POST_ITEMS = Operation("POST", "/items", public=False, self_only=False, body_schema=None)
DIRECTORY = Operation("GET", "/directory", public=True, self_only=False, body_schema=None)
SECRET = "Pw-abcdefghijkmnpqrst-9"


def _seen(status: int, text: str = "{}", method: str = "GET", url: str = "/items/1") -> Exchange:
    return Exchange(method, url, status, text, f"curl -X {method} http://t{url}")


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    world = fake_world(FakeApi())
    world.secrets.add(SECRET)
    world.tags["tagax00000000ab"] = Tag("PUT /users/{username}/profile", "a admin", "a admin's PUT aimed at b (...)")
    world.orgs["b"].canaries[0] = Canary("b", "items", "canarybx1", "7", "/items/7", {"id": 7}, handles=("hbx1",))
    return Context(fake_config(tmp_path), world)


def _who(ctx: Context, name: str) -> Principal:
    return next(p for p in ctx.world.principals() if p.name == name)


def test_a_tag_in_a_victims_own_state_names_the_probe_that_wrote_it(ctx: Context) -> None:
    victim = _who(ctx, "b viewer")
    mine = StateRead("b", victim, _seen(200, '{"name": "tagbx0000000001"}'), operation="GET /me", kind=StateKind.SELF)
    theirs = StateRead("b", victim, _seen(200, '{"name": "tagax00000000ab"}'), operation="GET /me", kind=StateKind.SELF)
    assert list(victims_hold_no_tag(ctx, mine)) == []  # its own organisation's tag is its own doing
    found = list(victims_hold_no_tag(ctx, theirs))
    assert [f.kind for f in found] == [FindingKind.CROSS_ORG_WRITE]
    assert found[0].operation == "PUT /users/{username}/profile" and found[0].principal == "a admin"
    assert "b viewer's GET /me shows tagax00000000ab, written by a admin's PUT" in found[0].detail


def test_a_failed_sign_in_is_a_write_on_the_victim(ctx: Context) -> None:
    victim = _who(ctx, "b viewer")
    ok = StateRead("b", victim, _seen(200), operation="POST /login", kind=StateKind.SIGN_IN, after="PUT /x")
    failed = StateRead("b", victim, _seen(200), operation="POST /login", kind=StateKind.SIGN_IN, after="PUT /x",
                       failure="POST /login -> 401")  # fmt: skip
    assert list(sign_in_still_works(ctx, ok)) == []
    (found,) = sign_in_still_works(ctx, failed)
    assert found.operation == "PUT /x" and "can no longer sign in with its own credentials" in found.detail


def test_a_canary_is_judged_against_its_last_read_and_a_vanished_one_says_so(ctx: Context) -> None:
    owner, canary = _who(ctx, "b admin"), ctx.world.orgs["b"].canaries[0]
    same = StateRead("b", owner, _seen(200, '{"id": 8}'), canary=canary, kind=StateKind.CANARY, expected={"id": 8})
    gone = StateRead("b", owner, _seen(404), canary=canary, kind=StateKind.CANARY, after="DELETE /items/{item_id}")
    assert list(canaries_are_unchanged(ctx, same)) == []  # changed since planting, but already said once
    (found,) = canaries_are_unchanged(ctx, gone)
    assert "vanished after the probes of DELETE /items/{item_id}" in found.detail
    assert found.operation == "DELETE /items/{item_id}"


def test_a_public_list_may_show_what_others_wrote_never_their_content(ctx: Context) -> None:
    owner = _who(ctx, "a admin")
    ctx.world.orgs["b"].probes.add("probebx001abcdef")
    names = _seen(200, json.dumps(["probebx001abcdef"]))
    content = _seen(200, json.dumps(["canarybx1"]))
    assert (
        list(lists_hold_no_foreign_data(ctx, StateRead("a", owner, names, operation="GET /directory", public=True)))
        == []
    )
    assert len(list(lists_hold_no_foreign_data(ctx, StateRead("a", owner, names, operation="GET /items")))) == 1
    assert len(list(lists_hold_no_foreign_data(ctx, StateRead("a", owner, content, public=True)))) == 1


def test_identifiers_may_show_in_public_answers_content_never(ctx: Context) -> None:
    caller = _who(ctx, "a viewer")
    handle = _seen(200, '["hbx1"]', url="/directory")
    marker = _seen(200, '["canarybx1"]', url="/directory")
    assert list(shows_no_foreign_marker(ctx, Probe(Family.ROLE, DIRECTORY, caller, (handle,)))) == []
    assert len(list(shows_no_foreign_marker(ctx, Probe(Family.ROLE, DIRECTORY, caller, (marker,))))) == 1
    assert len(list(shows_no_foreign_marker(ctx, Probe(Family.ROLE, POST_ITEMS, caller, (handle,))))) == 1


def test_a_secret_the_run_registered_never_comes_back_but_where_the_config_says(ctx: Context, tmp_path: Path) -> None:
    caller = _who(ctx, "a admin")
    echoed = Probe(Family.ROLE, POST_ITEMS, caller, (_seen(201, json.dumps({"password": SECRET})),))
    (found,) = secrets_are_never_shown(ctx, echoed)
    assert found.kind is FindingKind.SECRET_EXPOSED and SECRET not in found.detail  # the evidence masks it
    assert list(secrets_are_never_shown(ctx, Probe(Family.ROLE, POST_ITEMS, caller, (_seen(201),)))) == []
    # the fake's config ends in its [fuzz] table: a line appended is one more of its fields
    allowed = Context(fake_config(tmp_path, 'returns_secret = ["POST /items"]\n'), ctx.world)
    assert list(secrets_are_never_shown(allowed, echoed)) == []
    read = StateRead("a", caller, _seen(200, f"[{SECRET!r}]"), operation="GET /items")
    assert len(list(state_shows_no_secret(ctx, read))) == 1


def test_an_organisation_field_that_took_effect_or_moved_the_record(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    sent = (("org_id", "b"),)
    held = Probe(Family.MASS_ASSIGNMENT, POST_ITEMS, admin, (_seen(201, '{"id": 3, "org_id": "b"}'),), privileged=sent)
    ignored = Probe(
        Family.MASS_ASSIGNMENT, POST_ITEMS, admin, (_seen(201, '{"id": 3, "org_id": "a"}'),), privileged=sent
    )
    moved = Probe(Family.MASS_ASSIGNMENT, PATCH_ITEM, admin, (_seen(200), _seen(404)), privileged=sent)
    refused = Probe(Family.MASS_ASSIGNMENT, PATCH_ITEM, admin, (_seen(422), _seen(404)), privileged=sent)
    assert "org_id='b' sent by a admin took effect" in next(iter(organisation_fields_take_no_effect(ctx, held))).detail
    assert list(organisation_fields_take_no_effect(ctx, ignored)) == []
    assert "moved out" in next(iter(organisation_fields_take_no_effect(ctx, moved))).detail
    assert list(organisation_fields_take_no_effect(ctx, refused)) == []


def test_a_role_field_counts_from_a_principal_that_is_not_admin(ctx: Context) -> None:
    sent = (("role", "admin"), ("is_staff", True))
    answer = (_seen(200, '{"role": "viewer", "is_staff": true}'),)
    viewer, admin = _who(ctx, "a viewer"), _who(ctx, "a admin")
    (found,) = role_fields_take_no_effect(
        ctx, Probe(Family.MASS_ASSIGNMENT, PATCH_ITEM, viewer, answer, privileged=sent)
    )
    assert "is_staff=True sent by a viewer took effect" in found.detail
    assert (
        list(role_fields_take_no_effect(ctx, Probe(Family.MASS_ASSIGNMENT, PATCH_ITEM, admin, answer, privileged=sent)))
        == []
    )


def test_a_refusal_that_succeeds_after_a_write_is_escalation(ctx: Context) -> None:
    viewer = _who(ctx, "a viewer")
    said = "its earlier refused POST /items (/items) after its own PATCH /items/{item_id}"
    still = Probe(Family.ESCALATION, PATCH_ITEM, viewer, (_seen(403, method="POST"),), substituted=said)
    now = Probe(Family.ESCALATION, PATCH_ITEM, viewer, (_seen(201, method="POST"),), substituted=said)
    assert list(refusals_stay_refused(ctx, still)) == []
    (found,) = refusals_stay_refused(ctx, now)
    assert found.kind is FindingKind.PRIVILEGE_ESCALATION and found.operation == "PATCH /items/{item_id}"


def test_a_write_answering_204_whatever_it_did_is_left_to_the_victims_state(ctx: Context) -> None:
    admin = _who(ctx, "a admin")
    blind = Probe(Family.FOREIGN_ID, PUT_PROFILE, admin, (_seen(204, "", "PUT"),), control=_seen(204, "", "PUT"))
    found = Probe(Family.FOREIGN_ID, PUT_PROFILE, admin, (_seen(204, "", "PUT"),), control=_seen(404, "", "PUT"))
    assert list(refuses_foreign_ids(ctx, blind)) == []
    assert [f.kind for f in refuses_foreign_ids(ctx, found)] == [FindingKind.CROSS_ORG_READ]


@pytest.mark.parametrize(
    ("schema", "like", "shaped"),
    [
        ({"type": "string"}, "n_abcdefghij", r"n_[a-z]{10}"),
        ({"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}, "ABC-1234", r"[A-Z]{3}-[0-9]{4}"),
        ({"type": "string"}, "42", r"[0-9]+"),
        ({"type": "string"}, "3f2b8c1e-0d4a-4b6e-9c7d-5a1e2f3b4c5d", r"[0-9a-f-]{36}"),
        ({"type": "integer"}, "7", r"[0-9]+"),
    ],
)
def test_a_control_id_has_the_real_ids_shape(schema: dict[str, object], like: str, shaped: str) -> None:
    import re

    invented = invent_id(schema, random.Random(1), like=like)
    assert invented != like and re.fullmatch(shaped, invented), invented
