"""Config files for tests: the shipped one as data, changed, and written back as TOML."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config.reference import default_config_path

SHIPPED = default_config_path()


def shipped() -> dict[str, Any]:
    """The shipped config, parsed."""
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def toml(raw: dict[str, Any]) -> str:
    """A parsed TOML document written back: scalars and inline tables first, then tables and arrays of tables."""
    lines: list[str] = []
    _table(lines, [], raw)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], name: list[str], raw: dict[str, Any]) -> None:
    def nested(value: Any) -> bool:
        return isinstance(value, dict) or (isinstance(value, list) and bool(value) and isinstance(value[0], dict))

    if name:
        lines.append(f"[{'.'.join(name)}]")
    lines += [f"{_key(k)} = {_value(v)}" for k, v in raw.items() if not nested(v)]
    for key, value in raw.items():
        if isinstance(value, dict):
            _table(lines, [*name, _key(key)], value)
        elif nested(value):
            for entry in value:
                lines.append(f"[[{'.'.join([*name, _key(key)])}]]")
                lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items()]


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def write(tmp_path: Path, raw: dict[str, Any], name: str = "target.toml") -> Path:
    """`raw` written as a TOML file in `tmp_path`."""
    path = tmp_path / name
    path.write_text(toml(raw), encoding="utf-8")
    return path


def changed(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """The shipped config with `change` applied, written to a file."""
    raw = copy.deepcopy(shipped())
    change(raw)
    return write(tmp_path, raw)
