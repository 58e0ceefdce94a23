"""`iam-harness plan`: every operation, which principals and probe families would call it, and which never.

It fuzzes nothing: it reads the config and the target's schema (a local file, the target at `--target`,
or the embedded target, started only to read its schema) and prints what a run would do.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from harness.config.model import load_config
from harness.config.reference import default_config_path
from harness.engine.plan import plan_lines
from harness.engine.schema import load_schema
from harness.target.launch import launch

__all__ = ["add_plan_command", "run_plan_command"]


def add_plan_command(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register `iam-harness plan`."""
    plan = commands.add_parser("plan", help="print what a run would call, as whom, and what it never calls")
    plan.add_argument("--config", type=Path, default=None, help="the target's config file (default: the reference app)")
    plan.add_argument("--target", default="embedded", help="'embedded' (default) or the target's base URL")


def run_plan_command(args: argparse.Namespace) -> int:
    """Print the plan; 0, or a HarnessError for the CLI to report."""
    config = load_config(args.config or default_config_path())
    if config.schema_file is not None:
        schema = load_schema(config, None)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="iam-harness-plan-") as scratch,
            launch(config, args.target, faults=(), log_path=Path(scratch) / "app.log", seed=0) as (target, _),
        ):
            schema = load_schema(config, target.base_url)
    print("\n".join(plan_lines(config, schema)))
    return 0
