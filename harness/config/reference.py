"""Choosing a target: the embedded reference app's config file, and fault lists."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path

from harness.errors import ConfigError

__all__ = ["EMBEDDED_PACKAGE", "default_config_path", "parse_faults"]

# The embedded target is the reference app by default; the harness learns everything else about it
# from the config file that package ships, exactly as it would for any other target.
EMBEDDED_PACKAGE = "app"
CONFIG_NAME = "iam-harness.toml"
_FAULT = re.compile(r"^[a-z][a-z0-9_]*$")


def default_config_path() -> Path:
    """The config file shipped beside the reference app (found without importing it): the installed package's, not
    an `app` folder in the working directory (`python -m harness` puts that first on the path); that one only when
    none is installed."""
    spec = _installed_spec(EMBEDDED_PACKAGE) or importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"no target config given and the reference app package {EMBEDDED_PACKAGE!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / CONFIG_NAME


def _installed_spec(name: str) -> ModuleSpec | None:
    here = {"", os.getcwd()}
    saved = sys.path[:]
    sys.path[:] = [entry for entry in sys.path if entry not in here]
    try:
        return importlib.util.find_spec(name)
    finally:
        sys.path[:] = saved


def parse_faults(raw: str) -> tuple[str, ...]:
    """`a,b` -> ("a", "b"); a malformed name is a usage error naming it."""
    faults = tuple(part.strip() for part in raw.split(",") if part.strip())
    for fault in faults:
        if not _FAULT.match(fault):
            raise ConfigError(f"--faults: {fault!r} is not a fault name (lower case letters, digits, underscores)")
    return faults
