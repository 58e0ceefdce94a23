"""The harness's own errors, each mapped to one exit code by the CLI."""

from __future__ import annotations

__all__ = ["ConfigError", "HarnessError", "TargetUnreachable"]


class HarnessError(Exception):
    """Base of every error the harness reports without a stack trace."""

    exit_code = 1


class ConfigError(HarnessError):
    """A usage or configuration error; the message names the bad option or field."""

    exit_code = 2


class TargetUnreachable(HarnessError):
    """The target could not be started or reached."""

    exit_code = 3
