"""Evidence a scenario records for the checks it decides."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

import pytest

from harness.checks.findings import Finding
from harness.target.running import Target

__all__ = ["NOT_APPLICABLE", "Evidence", "not_applicable"]

NOT_APPLICABLE = "not applicable to this target: "


def not_applicable(reason: str) -> NoReturn:
    """End a scenario that this target cannot have (no Clerk sessions, no login tokens): it decides nothing,
    so a check all of whose scenarios end so stays NO, "not exercised", unless the config declares it N/A."""
    pytest.skip(NOT_APPLICABLE + reason)


MAX_SERVER_LINES = 5


class Evidence:
    """Lines of evidence, plus the server-side errors logged while the scenario ran."""

    def __init__(self, target: Target | None = None) -> None:
        self.lines: list[str] = []
        self.findings: list[Finding] = []
        self.attachments: dict[str, Any] = {}
        self._target = target
        self._mark = target.log_offset() if target is not None else 0

    def add(self, line: str) -> None:
        """Record one line of evidence."""
        self.lines.append(line)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Record typed findings; each is also a line of evidence."""
        for finding in findings:
            self.findings.append(finding)
            self.lines.append(finding.line())

    def attach(self, name: str, data: Any) -> None:
        """Attach structured data (JSON-serialisable) that the report carries beside the answers."""
        self.attachments[name] = data

    def server_errors(self) -> list[str]:
        """Errors the target logged since the scenario started (the embedded target's log only)."""
        if self._target is None:
            return []
        return [f"server log: {line}" for line in self._target.server_errors(self._mark)[:MAX_SERVER_LINES]]
