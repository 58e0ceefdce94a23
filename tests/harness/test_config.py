"""The target config file: the shipped one loads; every mistake is named, never a stack trace."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.config.model import load_config
from harness.config.reference import default_config_path, parse_faults
from harness.errors import ConfigError

SHIPPED = default_config_path()


def _write(tmp_path: Path, mutate: Any) -> Path:
    raw = tomllib.loads(SHIPPED.read_text())
    mutate(raw)
    lines = []

    def emit(table: str, values: dict[str, Any]) -> None:
        lines.append(f"[{table}]")
        for k, v in values.items():
            lines.append(f"{k} = {_toml(v)}")

    for key, value in raw.items():
        if key == "canaries":
            for entry in value:
                lines.append("[[canaries]]")
                lines.extend(f"{k} = {_toml(v)}" for k, v in entry.items())
        elif key == "embedded":
            lines.append("[embedded]")
            lines.append(f"command = {_toml(value['command'])}")
            emit("embedded.env", value["env"])
        else:
            emit(key, value)
    path = tmp_path / "target.toml"
    path.write_text("\n".join(lines))
    return path


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_shipped_config_loads() -> None:
    config = load_config(SHIPPED)
    assert config.schema.startswith("/") and config.canaries and config.embedded is not None


def test_round_trip_helper_is_faithful(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, lambda raw: None)).pages == load_config(SHIPPED).pages


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda raw: raw["pages"].pop("dashboard"), "[pages] is missing required field(s) dashboard"),
        (lambda raw: raw["pages"].update(dashbord="/x"), "[pages] has unknown field(s) dashbord"),
        (lambda raw: raw["pages"].update(dashboard="dashboard"), "pages.dashboard must be a path"),
        (lambda raw: raw["target"].update(issuer="http://x"), "target.issuer must be an https:// URL"),
        (lambda raw: raw["members"].update(add="FETCH /api/members"), "members.add must read 'METHOD /path'"),
        (lambda raw: raw["canaries"][0].update(read="GET /api/contacts"), "canaries[0].read must contain '{id}'"),
        (lambda raw: raw["roles"].update(seeded=[]), "roles.seeded must be a non-empty list"),
        (lambda raw: raw.update(canaries=[]), "missing required field(s) canaries"),
        (lambda raw: raw.update(webhooks={"path": "/hooks"}), "[webhooks] has unknown field(s) path"),
        (lambda raw: raw.update(webhooks={"clerk": "hooks"}), "webhooks.clerk must be a path"),
        (
            lambda raw: raw.update(webhooks={"clerk": "/hooks", "secret_env": "NOT A VAR"}),
            "webhooks.secret_env must name an environment variable",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, mutate: Any, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, mutate))
    assert named in str(raised.value)
    assert str(tmp_path / "target.toml") in str(raised.value)


def test_missing_and_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[target\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_fault_lists() -> None:
    assert parse_faults(" a_b, c ,") == ("a_b", "c")
    with pytest.raises(ConfigError, match="'Bad-Name' is not a fault name"):
        parse_faults("ok,Bad-Name")
