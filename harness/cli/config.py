"""`iam-harness config schema | check FILE [--target URL]`: the config file's JSON Schema, and a config checked
before any run, against the target's OpenAPI schema when there is one to read.

Every operation the config names (fuzz patterns, canaries, members, setup and login requests) must name an
operation of that schema: an entry that names none is a typo that would silently test nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.config.model import config_json_schema, load_config, unmatched
from harness.engine.schema import load_schema
from harness.errors import ConfigError, HarnessError

__all__ = ["add_config_commands", "run_config_command"]


def add_config_commands(subparsers: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register `config schema` and `config check` on the CLI's subcommands."""
    config = subparsers.add_parser("config", help="the target config file: its JSON Schema, or check one")
    actions = config.add_subparsers(dest="config_command", required=True, parser_class=parser_class)
    actions.add_parser("schema", help="print the JSON Schema of a target config file")
    check = actions.add_parser("check", help="validate a target config file (and its operations, given a schema)")
    check.add_argument("file", type=Path, help="the target config file (TOML)")
    check.add_argument("--target", default=None, help="the target's base URL: check operations against its schema")


def run_config_command(args: argparse.Namespace) -> int:
    """Run a `config` subcommand; a problem is one line on stderr and exit code 2 (3: the target unreachable)."""
    try:
        if args.config_command == "schema":
            print(json.dumps(config_json_schema(), indent=2, sort_keys=True))
            return 0
        print(_check(args.file, args.target))
        return 0
    except HarnessError as exc:
        print(f"iam-harness: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code


def _check(path: Path, target: str | None) -> str:
    config = load_config(path)
    named = config.named_operations()
    if target is None and config.schema_file is None:
        return f"{path}: valid, {len(named)} operations named (not checked against a schema: give --target URL)"
    if target is not None and not target.startswith(("http://", "https://")):
        raise ConfigError(f"--target must be an http(s) URL, got {target!r}")
    document = load_schema(config, target)
    operations = document.names()
    wrong = [f"{where}: {op} names no operation of the schema" for where, op in named if unmatched([op], operations)]
    if wrong:
        raise ConfigError(f"config {path}: " + "; ".join(wrong))
    return f"{path}: valid, {len(named)} operations named, each found among the schema's {len(operations)} operations"
