"""Placeholders and operation patterns: one syntax, filled the same everywhere; patterns match schema templates."""

from __future__ import annotations

from typing import Any

from harness.config.operations import OperationPattern, OperationRef, parse_pattern, unmatched
from harness.config.placeholders import fill_template, placeholders_in, run_values
from harness.engine import world
from harness.engine.schema import parse_schema


def test_a_whole_placeholder_takes_the_value_as_it_is() -> None:
    values = {"roles": ["Admin"], "role": None, "sub": "user_1", "n": 3}
    body = {"id": "{sub}", "roles": "{roles}", "role": "{role}", "email": "{sub}@x.example", "count": "{n}"}
    assert fill_template(body, values) == {
        "id": "user_1", "roles": ["Admin"], "role": None, "email": "user_1@x.example", "count": 3,
    }  # fmt: skip
    assert fill_template(["a-{n}-{role}", "{{literal}}"], values) == ["a-3-", "{literal}"]


def test_a_placeholder_without_a_value_is_left_to_be_seen() -> None:
    assert fill_template("/deals/{deals}/notes", {"marker": "m"}) == "/deals/{deals}/notes"
    assert placeholders_in({"a": ["{x}", "{{y}}", 1], "b": "{z}-{x}"}) == {"x", "z"}


def test_run_values_are_the_seeds() -> None:
    one, again, other = run_values(7), run_values(7), run_values(8)
    assert one == again and one["run"] != other["run"] and one["secret"] != other["secret"]
    assert len(one["secret"]) >= 16 and one["run"] in one["marker"]


def test_the_world_module_still_offers_fill_template() -> None:
    assert world.fill_template is fill_template


def test_patterns_match_templates_whatever_their_parameter_names() -> None:
    assert parse_pattern("delete /admin/{id}").matches("DELETE", "/admin/{user_id}")
    assert not parse_pattern("DELETE /admin/{id}").matches("GET", "/admin/{user_id}")
    assert parse_pattern("* /admin/*").matches("POST", "/admin/reset/{when}")
    assert not parse_pattern("* /admin/*").matches("POST", "/administrators")
    assert parse_pattern("GET *").matches("GET", "/anything")
    assert str(parse_pattern("post /x")) == "POST /x"


def test_unmatched_lists_what_names_no_operation() -> None:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "paths": {"/admin/reset": {"post": {}}, "/books/{title}": {"get": {}, "put": {}}, "/x": {"trace": {}}},
    }
    ops = [(op.method, op.path) for op in parse_schema(document).operations]
    assert ops == [("POST", "/admin/reset"), ("GET", "/books/{title}"), ("PUT", "/books/{title}")]
    typo, exact = OperationPattern("POST", "/admin/rest"), OperationRef("GET", "/books/{id}")
    assert unmatched([OperationPattern("*", "/admin/*"), typo, exact, OperationRef("GET", "/x")], ops) == [
        typo,
        OperationRef("GET", "/x"),
    ]
