"""report.md: the one-page YES/NO table first, then per check its evidence and its findings grouped by kind,
the coverage table, and how to set each token variable the repro lines read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from harness.checks.findings import Finding, FindingKind, Severity
from harness.report.model import Answer, Artifact, ArtifactKind, CheckResult, Report, TokenHint

__all__ = ["MAX_DETAIL_LINES", "MAX_FINDINGS_PER_KIND", "markdown", "summary_line", "used_variables", "write_markdown"]

MAX_DETAIL_LINES = 40
MAX_FINDINGS_PER_KIND = 5
_SEVERITY_ORDER = {s: n for n, s in enumerate(Severity)}  # critical first
# A credential variable in a repro line: `$IAM_TOKEN_ORG1_ADMIN`, or `${IAM_TOKEN_...}`.
_VARIABLE = re.compile(r"\$\{?(IAM_TOKEN_[A-Z0-9_]+)")


def summary_line(check: CheckResult) -> str:
    """The one line that stands for a check: its reason for a NO or an N/A, its conclusion for a YES."""
    if check.answer is not Answer.YES and check.reason:
        return check.reason
    return check.evidence[-1] if check.evidence else ""


def _cell(text: str) -> str:
    """Text that cannot break a table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A code span that holds `text` as it is, backticks and all."""
    text = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"{fence}{text}{fence}"


def _evidence_line(line: str) -> str:
    return f"- {_code(line)}" if line.startswith(("curl ", "repro: ")) else f"- {line}"


def markdown(report: Report) -> str:
    """The whole report.md."""
    out = [f"# iam-harness: {report.answer.value}", "", f"Target: {report.target}  ", f"Seed: {report.seed}  "]
    if report.started:
        out.append(f"Started: {report.started}, {report.seconds:.1f} s  ")
    out.append("")
    if report.interrupted:
        out += ["**Interrupted:** the run did not finish, so its answer is NO.", ""]
    if report.error:
        kind = f" ({report.error_kind.value})" if report.error_kind is not None else ""
        out += [f"**Run error{kind}:** {report.error}", ""]
    out += ["| check | question | answer | findings | evidence |", "|---|---|---|---|---|"]
    for c in report.checks:
        answer = f"**{c.answer.value}**" if c.answer is Answer.NO else c.answer.value
        found = str(len(c.findings)) if c.findings else ""
        out.append(f"| {c.id} | {_cell(c.question)} | {answer} | {found} | {_cell(summary_line(c))} |")
    out.append("")
    for c in report.checks:
        out += _check_section(c)
    out += _coverage(report)
    out += _tokens(report)
    return "\n".join(out).rstrip("\n") + "\n"


def _check_section(check: CheckResult) -> list[str]:
    out = [f"## {check.id} {check.answer.value}: {check.question}", ""]
    if check.answer is Answer.NA:
        out += [f"Not applicable to this target: {check.reason}", ""]
    out += [_evidence_line(line) for line in check.evidence[:MAX_DETAIL_LINES]]
    if len(check.evidence) > MAX_DETAIL_LINES:
        out.append(f"- ... {len(check.evidence) - MAX_DETAIL_LINES} more lines in report.json")
    out.append("")
    return out + _artifacts(check) + _findings(check.findings)


def _artifacts(check: CheckResult) -> list[str]:
    """Links to the evidence files of a NO: per visit, its timeline picture, screenshot and trace."""
    if not check.artifacts:
        return []
    out = ["Evidence files:", ""]
    by_label: dict[str, list[Artifact]] = {}
    for artifact in check.artifacts:
        by_label.setdefault(artifact.label, []).append(artifact)
    for label, files in by_label.items():
        links = ", ".join(f"[{a.kind.value}](<{a.path}>)" for a in files)
        out.append(f"- {label or 'files'}: {links}")
        traces = [a.path for a in files if a.kind is ArtifactKind.TRACE]
        out += [f"  - open the trace from the report's folder: {_code(f'playwright show-trace {t}')}" for t in traces]
    return [*out, ""]


def _findings(findings: Iterable[Finding]) -> list[str]:
    """The findings grouped by kind, the worst kinds first; the first few of each, the rest counted."""
    by_kind: dict[FindingKind, list[Finding]] = {}
    for finding in findings:
        by_kind.setdefault(finding.kind, []).append(finding)
    out: list[str] = []
    for kind in sorted(by_kind, key=lambda k: (_SEVERITY_ORDER[k.severity], -len(by_kind[k]), k.value)):
        group = by_kind[kind]
        out += [f"### {kind.value} ({kind.severity.value}): {len(group)}", ""]
        for finding in group[:MAX_FINDINGS_PER_KIND]:
            out.append(f"- {finding.principal} {_code(finding.operation)}: {finding.detail}")
            if finding.repro:
                out.append(f"  {_code(finding.repro)}")
        if len(group) > MAX_FINDINGS_PER_KIND:
            out.append(f"- and {len(group) - MAX_FINDINGS_PER_KIND} more {kind.value} findings in report.json")
        out.append("")
    return out


def _coverage(report: Report) -> list[str]:
    """Operations x principals: how many requests each pair was exercised with, or why not."""
    if not report.coverage:
        return []
    principals = sorted({r.principal for r in report.coverage})
    cells: dict[str, dict[str, str]] = {}
    for r in report.coverage:
        text = str(r.requests) if r.requests else f"not exercised: {r.note or 'no reason recorded'}"
        cells.setdefault(r.operation, {})[r.principal] = _cell(text)
    out = ["## Coverage: requests per operation and principal", ""]
    out += ["| operation | " + " | ".join(principals) + " |", "|---" * (len(principals) + 1) + "|"]
    for operation in sorted(cells):
        out.append(f"| {_cell(operation)} | " + " | ".join(cells[operation].get(p, "-") for p in principals) + " |")
    return [*out, ""]


def used_variables(report: Report) -> list[str]:
    """Every `IAM_TOKEN_...` variable a repro line of the report reads, in the order they first appear."""
    texts = [f.repro for c in report.checks for f in c.findings] + [line for c in report.checks for line in c.evidence]
    found: dict[str, None] = {}
    for text in texts:
        for variable in _VARIABLE.findall(text):
            found.setdefault(variable, None)
    return list(found)


def _how(variable: str, hints: dict[str, TokenHint]) -> str:
    if variable in hints:
        return _code(hints[variable].how)
    # `$IAM_TOKEN_<PRINCIPAL>_<HEADER>`: a secret header beside the principal's credential.
    owner = max((v for v in hints if variable.startswith(v + "_")), key=len, default=None)
    if owner is not None:
        return f"the value of that header for {hints[owner].principal} (from the target's config)"
    return "no command recorded: set it to that principal's credential"


def _tokens(report: Report) -> list[str]:
    """Each token variable used by the repro lines, with the command that sets it, once."""
    variables = used_variables(report)
    if not variables:
        return []
    hints = {h.variable: h for h in report.tokens}
    out = ["## Tokens", "", "The repro lines read each credential from an environment variable. Set it first:", ""]
    for variable in variables:
        who = f" ({hints[variable].principal})" if variable in hints else ""
        out.append(f"- `${variable}`{who}: {_how(variable, hints)}")
    return [*out, ""]


def write_markdown(report: Report, path: Path) -> None:
    """Write report.md."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report), encoding="utf-8")
