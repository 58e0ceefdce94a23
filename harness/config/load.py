"""Reading a target config file, its JSON Schema, and the local OpenAPI file a config may point at."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.config.errors import config_error
from harness.config.target import TargetConfig
from harness.errors import ConfigError

__all__ = ["config_json_schema", "load_config", "load_schema_file"]


def load_config(path: Path | str) -> TargetConfig:
    """Read and validate a target config file; raise one ConfigError naming the file, the table and the field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    context = {"source": str(path), "config_dir": str(path.resolve().parent)}
    try:
        return TargetConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        raise config_error(str(path), exc, TargetConfig) from None


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a target config file, as parsed from TOML."""
    schema = TargetConfig.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "iam-harness target config",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def load_schema_file(config: TargetConfig) -> dict[str, Any]:
    """The OpenAPI document of the config's `schema_file` (JSON, or YAML by its suffix); ConfigError if unusable."""
    path = config.schema_file
    if path is None:
        raise ConfigError(f"config {config.source}: [target] schema_file: not given (the schema is on the target)")
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {config.source}: [target] schema_file: {path} cannot be read: {exc}") from None
    except (ValueError, yaml.YAMLError) as exc:
        kind = "YAML" if path.suffix in (".yaml", ".yml") else "JSON"
        message = " ".join(str(exc).split())
        raise ConfigError(
            f"config {config.source}: [target] schema_file: {path} is not valid {kind}: {message}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise ConfigError(f"config {config.source}: [target] schema_file: {path} is not an OpenAPI document (no paths)")
    return document
