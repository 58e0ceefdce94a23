"""The target config file: the shipped files load; every mistake is one line naming the file, table and field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.checks.catalogue import CATALOGUE
from harness.config.model import KNOWN_CHECKS, OperationPattern, TargetConfig, load_config
from harness.config.reference import parse_faults
from harness.errors import ConfigError
from tests.harness.config.support import SHIPPED, changed, shipped, write

LEDGER = Path(__file__).parents[2] / "targets" / "ledger.toml"


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert message.startswith(f"config {path}: "), message
    assert "\n" not in message, message  # one line
    assert not re.search(r"expected\s*($|[;,.)])", message), message  # never "expected " with nothing after it
    assert "pydantic" not in message and "type=" not in message and "input_value" not in message, message
    return message


def test_shipped_config_loads() -> None:
    config = load_config(SHIPPED)
    assert config.schema == "/openapi.json" and config.schema_file is None
    assert config.health == "/health" and config.issuer.startswith("https://")
    assert config.admin_role == "Admin" and config.identity is not None and config.identity.admin_role == "Admin"
    assert config.roles.read_only == ("Viewer",) and config.roles.member_roles == ("Viewer", "Member", "Manager")
    assert [c.key for c in config.canaries] == ["contacts", "deals", "notes"]
    assert config.embedded is not None and config.fuzz.cases == 8 and dict(config.not_applicable) == {}
    assert config.source == str(SHIPPED) and config.config_dir == SHIPPED.resolve().parent


def test_ledger_config_loads() -> None:
    config = load_config(LEDGER)
    assert config.admin_role == "owner" and [p.role for p in config.principals] == ["owner", "auditor"] * 2
    login = config.principals[1].login
    assert login is not None and (login.token, login.header, login.prefix) == ("access", "Authorization", "Token ")


def test_round_trip_helper_is_faithful(tmp_path: Path) -> None:
    assert load_config(changed(tmp_path, lambda raw: None)).model_dump() == load_config(SHIPPED).model_dump()


def test_models_are_frozen() -> None:
    config = load_config(SHIPPED)
    with pytest.raises(ValueError, match="frozen"):
        config.fuzz.cases = 3


def test_unknown_field_names_allowed_fields_and_suggests(tmp_path: Path) -> None:
    path = changed(tmp_path, lambda raw: raw["target"].update(isuer="https://x.example"))
    assert _error(path) == (
        f"config {path}: [target] isuer: unknown field; allowed: health, issuer, schema, schema_file; "
        "did you mean 'issuer'?"
    )
    message = _error(changed(tmp_path, lambda raw: raw.update(fuzz={"casez": 3})))
    assert (
        "[fuzz] casez: unknown field; allowed: cases, max_requests, max_seconds, never, per_operation, privileged, "
        "public, returns_secret, self, staff;" in message
    )
    assert message.endswith("did you mean 'cases'?")


def _principals(raw: dict[str, Any], role: str = "boss") -> None:
    raw["principals"] = [
        {"name": "north admin", "org": "north", "role": "Admin", "headers": {"X-Key": "a"}},
        {"name": "north clerk", "org": "north", "role": role, "headers": {"X-Key": "b"}},
    ]


def _login(**fields: Any) -> Any:
    def change(raw: dict[str, Any]) -> None:
        _principals(raw, "Viewer")
        raw["principals"][1] = {"name": "north viewer", "org": "north", "role": "Viewer", "login": fields}

    return change


def _form(fields: dict[str, str], body: dict[str, str]) -> Any:
    def change(raw: dict[str, Any]) -> None:
        _login(request="POST /login", token="t", body=body)(raw)
        raw["pages"]["sign_in_form"] = {"fields": fields, "submit": "button[type=submit]"}

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda raw: raw["pages"].pop("dashboard"), "[pages] dashboard: required field missing"),
        (
            lambda raw: [raw["pages"].pop(k) for k in ("dashboard", "sign_in")],
            "[pages]: required fields missing: dashboard, sign_in",
        ),
        (lambda raw: raw["pages"].update(dashboard=5), "[pages] dashboard: expected a string, got 5 (an integer)"),
        (
            lambda raw: raw["pages"].update(dashboard="dashboard"),
            "[pages] dashboard: expected a path starting with '/'",
        ),
        (lambda raw: raw.update(fuz={}), "top level: fuz: unknown table; allowed: admin, canaries, checks,"),
        (lambda raw: raw["target"].update(issuer="http://x"), "[target] issuer: expected an https:// URL"),
        (lambda raw: raw["target"].update(schema_file="api.json"), "[target] schema: give exactly one of schema"),
        (lambda raw: raw["target"].pop("schema"), "[target] schema: give exactly one of schema"),
        (lambda raw: raw.update(fuzz={"cases": 0}), "[fuzz] cases: expected a value >= 1, got 0 (an integer)"),
        (lambda raw: raw.update(fuzz={"cases": 501}), "[fuzz] cases: expected a value <= 500, got 501"),
        (lambda raw: raw.update(fuzz={"cases": "5"}), "[fuzz] cases: expected an integer, got '5' (a string)"),
        (lambda raw: raw.update(fuzz={"never": ["FETCH /x"]}), "[fuzz] never[0]: expected 'METHOD /path'"),
        (lambda raw: raw.update(fuzz={"public": "GET /x"}), "[fuzz] public: expected a list, got 'GET /x'"),
        (lambda raw: raw["members"].update(add="FETCH /api/members"), "[members] add: expected 'METHOD /path'"),
        (
            lambda raw: raw["members"].update(body={"external_id": "{sub}"}),
            "[members] body: must carry the member's role",
        ),
        (lambda raw: raw["canaries"][0].update(read="GET /api/contacts"), "[canaries[0]] read: must contain {id}"),
        (lambda raw: raw["canaries"][1].update(key="contacts"), "[canaries[1]] key: repeats 'contacts'"),
        (
            lambda raw: raw["canaries"][0].update(id="{sent:nope}"),
            "[canaries[0]] id: {sent:nope} names no field of body",
        ),
        (lambda raw: raw.update(canaries=[]), "top level: canaries: expected at least 1 entry"),
        (
            lambda raw: raw["identity"].update(admin_role="Admin"),
            "[identity] admin_role: has moved: write it as `admin = ...` under [roles]",
        ),
        (lambda raw: raw["roles"].pop("admin"), "[roles] admin: required: without [[principals]]"),
        (lambda raw: raw["roles"].update(other=["Viewer"]), "[roles] other: 'Viewer' is also listed in read_only"),
        (
            lambda raw: raw["roles"].update(read_only="Viewer"),
            "[roles] read_only: expected a list, got 'Viewer' (a string)",
        ),
        (
            lambda raw: raw["webhooks"].update(secret_env="NOT A VAR"),
            "[webhooks] secret_env: expected an environment variable's name",
        ),
        (
            lambda raw: raw["webhooks"].update(path="/hooks"),
            "[webhooks] path: unknown field; allowed: clerk, roles, secret_env",
        ),
        (
            lambda raw: raw.update(checks={"not_applicable": {"M3": "no"}}),
            "[checks] not_applicable: M3 can never be N/A",
        ),
        (
            lambda raw: raw.update(checks={"not_applicable": {"M4": "no"}}),
            "[checks] not_applicable: M4 can never be N/A",
        ),
        (
            lambda raw: raw.update(checks={"not_applicable": {"Z9": "x"}}),
            "unknown check 'Z9'; known: M1, M2, M3, M4, O1, O2, O3, O4, O5, O6, C1, C2, C3, I1, I2, I3",
        ),
        (
            lambda raw: raw.update(checks={"not_applicable": {"M1": ""}}),
            "[checks.not_applicable] M1: expected a non-empty string",
        ),
        (
            lambda raw: raw.update(setup=[{"request": "POST /x", "content_type": "xml"}]),
            "[setup[0]] content_type: expected one of 'json' or 'form', got 'xml'",
        ),
        (
            lambda raw: raw.update(setup=[{"request": "POST /x", "expect": [99]}]),
            "[setup[0]] expect[0]: expected a value >= 100",
        ),
        (
            lambda raw: raw.update(setup=[{"request": "POST /x", "body": {"u": "{user}"}}]),
            "[setup[0]] body: unknown placeholder {user}; allowed here: {marker}, {run}, {secret}",
        ),
        (
            _principals,
            "[principals[1]] role: principal 'north clerk' has role 'boss', which [roles] does not name; "
            "[roles] names: Admin, Viewer, Member",
        ),
        (
            _login(request="POST /login", token="t", token_header="X-T"),
            "[principals[1].login] token: give exactly one of token, token_header or token_cookie "
            "(given: token, token_header)",
        ),
        (
            _login(request="POST /login"),
            "[principals[1].login] token: give exactly one of token, token_header or token_cookie",
        ),
        (
            _login(request="POST /login", token="t", cookie="sid", prefix=""),
            "[principals[1].login] cookie: presents the token as a cookie",
        ),
        (
            _login(request="POST /login", token="t", content_type="form", body={"a": {"b": 1}}),
            "[principals[1].login] body: a form body is flat",
        ),
        (_login(request="POST /login", token="$.", body={}), "[principals[1].login] token: expected a JSON path"),
        (
            lambda raw: raw["pages"].update(denied_role="Guest"),
            "[pages] denied_role: 'Guest' is no role [roles] names; it names: Admin, Viewer, Member",
        ),
        (
            lambda raw: raw["pages"].update(denied_page="settings"),
            "[pages] denied_page: expected a path starting with '/'",
        ),
        (
            lambda raw: raw["pages"].update(sign_in_form={"fields": {}, "submit": "button"}),
            "[pages.sign_in_form] fields: expected at least 1 entry",
        ),
        (
            lambda raw: raw["pages"].update(sign_in_form={"fields": {"#email": "email"}}),
            "[pages.sign_in_form] submit: required field missing",
        ),
        (
            lambda raw: raw["pages"].update(sign_in_form={"fields": {"#email": "email"}, "submit": "button"}),
            "[pages] sign_in_form: types a principal's login body in, but no [[principals]] has a login",
        ),
        (
            _form(fields={"#email": "email", "#password": "password"}, body={"email": "v@example.test"}),
            "[pages.sign_in_form] fields: types password, which no principal's login body has (principal 'north "
            "viewer''s lacks)",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, change: Any, named: str) -> None:
    assert named in _error(changed(tmp_path, change))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda raw: raw["canaries"][1]["body"].update(contact_id="{contact}"),
            "[canaries[1]] body: unknown placeholder {contact}; "
            "allowed here: {contacts}, {handle}, {marker}, {run}, {secret}; did you mean {contacts}?",
        ),
        (
            lambda raw: raw["canaries"][0].update(create="POST /api/{deals}/contacts"),
            "[canaries[0]] create: unknown placeholder {deals}; allowed here: {handle}, {marker}, {run}, {secret}",
        ),
        (
            lambda raw: raw["canaries"][2].update(read="GET /api/notes/{note}/{id}"),
            "[canaries[2]] read: unknown placeholder {note}; "
            "allowed here: {contacts}, {deals}, {handle}, {id}, {marker}, {run}, {secret}",
        ),
        (
            lambda raw: raw["members"]["body"].update(extra="{marker}"),
            "[members] body: unknown placeholder {marker}; allowed here: {role}, {roles}, {run}, {secret}, {sub}",
        ),
        (
            lambda raw: raw["embedded"].update(command=["{pyhton}"]),
            "[embedded] command: unknown placeholder {pyhton}; allowed here: {authorized_party}, {config_dir}, ",
        ),
        (lambda raw: raw["embedded"]["env"].update(X="{port}{db}"), "[embedded] env: unknown placeholder {db}"),
        (
            lambda raw: raw["target"].update(schema="/{api}/openapi.json"),
            "[target] schema: unknown placeholder {api}; allowed here: {config_dir}",
        ),
    ],
)
def test_unknown_placeholders_name_the_field_and_what_is_allowed_there(tmp_path: Path, change: Any, named: str) -> None:
    assert named in _error(changed(tmp_path, change))


def test_several_problems_are_one_line(tmp_path: Path) -> None:
    message = _error(changed(tmp_path, lambda raw: raw["pages"].update(dashboard=1, sign_in=2)))
    assert message.endswith("[pages] dashboard: expected a string, got 1 (an integer) (and 1 more problem)")


def test_missing_and_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[target\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_not_applicable_checks_carry_their_reasons(tmp_path: Path) -> None:
    config = load_config(
        changed(tmp_path, lambda raw: raw.update(checks={"not_applicable": {"M1": "API only: no pages"}}))
    )
    assert dict(config.not_applicable) == {"M1": "API only: no pages"}
    with pytest.raises(TypeError):
        config.not_applicable["O2"] = "no"  # type: ignore[index]


def test_known_checks_are_the_catalogues() -> None:
    assert tuple(c.id for c in CATALOGUE) == KNOWN_CHECKS


def test_fuzz_entries_are_patterns(tmp_path: Path) -> None:
    fuzz = {"never": ["POST /admin/*", "* /reset"], "public": ["GET /health"], "self": ["get /api/me"], "cases": 3}
    config = load_config(changed(tmp_path, lambda raw: raw.update(fuzz=fuzz)))
    assert config.fuzz.never == (OperationPattern("POST", "/admin/*"), OperationPattern("*", "/reset"))
    assert [str(p) for p in config.fuzz.self_only] == ["GET /api/me"]
    assert (config.fuzz.max_requests, config.fuzz.max_seconds, config.fuzz.per_operation) == (50_000, 600, 2000)


def test_schema_file_is_found_next_to_the_config_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = shipped()
    raw["target"] = {"schema_file": "{config_dir}/api.json", "health": "/health"}
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", raw)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf") / "target.toml")
    assert config.schema is None and config.schema_file == (tmp_path / "conf" / "api.json").resolve()


def test_a_principal_role_must_be_declared_and_each_org_needs_its_admin(tmp_path: Path) -> None:
    def lone_viewer(raw: dict[str, Any]) -> None:
        _principals(raw, "Viewer")
        raw["principals"].append({"name": "south viewer", "org": "south", "role": "Viewer", "headers": {}})

    assert "organisation 'south' has no principal with the admin role 'Admin'" in _error(changed(tmp_path, lone_viewer))
    config = load_config(changed(tmp_path, lambda raw: _principals(raw, "Member")))
    assert isinstance(config, TargetConfig) and [p.role for p in config.principals] == ["Admin", "Member"]


def test_fault_lists() -> None:
    assert parse_faults(" a_b, c ,") == ("a_b", "c")
    with pytest.raises(ConfigError, match="'Bad-Name' is not a fault name"):
        parse_faults("ok,Bad-Name")


def _saving(raw: dict[str, Any]) -> None:
    _principals(raw, "Admin")
    raw["setup"] = [{"request": "POST /signup", "body": {"name": "north-{run}"}, "save": {"north": "org.id"}}]
    raw["principals"][0] |= {"org_id": "{north}", "user_id": "admin-{run}", "headers": {"X-Key": "{north}-key"}}


def test_setup_saves_values_for_later_templates(tmp_path: Path) -> None:
    config = load_config(changed(tmp_path, _saving))
    assert config.saved == ("north",) and config.principals[0].org_id == "{north}"

    def before_it_is_saved(raw: dict[str, Any]) -> None:
        _saving(raw)
        raw["setup"].insert(0, {"request": "POST /signup", "body": {"name": "{north}"}})

    assert "[setup[0]] body: unknown placeholder {north}" in _error(changed(tmp_path, before_it_is_saved))

    def misspelt(raw: dict[str, Any]) -> None:
        _saving(raw)
        raw["principals"][0]["user_id"] = "{nroth}"

    assert "[principals[0]] user_id: unknown placeholder {nroth}" in _error(changed(tmp_path, misspelt))

    def shadowing(raw: dict[str, Any]) -> None:
        _saving(raw)
        raw["setup"][0]["save"]["secret"] = "token"

    assert "'secret' is a placeholder of its own" in _error(changed(tmp_path, shadowing))


def test_roles_allow_names_declared_roles_and_operations(tmp_path: Path) -> None:
    def allowing(role: str) -> Any:
        return lambda raw: raw["roles"].update(allow={role: ["PATCH /api/contacts/{contact_id}"]})

    config = load_config(changed(tmp_path, allowing("Member")))
    assert [str(p) for p in config.roles.allow["Member"]] == ["PATCH /api/contacts/{contact_id}"]
    assert "[roles] allow: 'Boss' is no role [roles] names" in _error(changed(tmp_path, allowing("Boss")))
    assert "allowed everything already" in _error(changed(tmp_path, allowing("Admin")))
    named = [where for where, _ in config.named_operations()]
    assert "[roles.allow] Member" in named
