"""Human-readable renderings of a report: Markdown for the owner and CI summaries, a terminal table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.model import Answer, CheckResult, Report

__all__ = ["markdown", "print_table", "write_markdown"]

MAX_DETAIL_LINES = 40


def _line(check: CheckResult) -> str:
    """The one line that stands for a check: its first failure for a NO, its conclusion for a YES."""
    if not check.evidence:
        return ""
    line = check.evidence[0] if check.answer is Answer.NO else check.evidence[-1]
    return line.replace("|", "\\|").replace("\n", " ")


def markdown(report: Report) -> str:
    """The one-page report: the answers first, one line of evidence each, then the details."""
    out = [
        f"# iam-harness: {report.answer.value}",
        "",
        f"Target: {report.target}  ",
        f"Seed: {report.seed}",
        "",
    ]
    if report.error:
        out += [f"**Run error:** {report.error}", ""]
    out += ["| check | question | answer | evidence |", "|---|---|---|---|"]
    for c in report.checks:
        answer = f"**{c.answer.value}**" if c.answer is Answer.NO else c.answer.value
        out.append(f"| {c.id} | {c.question} | {answer} | {_line(c)} |")
    out.append("")
    for c in report.checks:
        out += [f"## {c.id} {c.answer.value}: {c.question}", ""]
        out += [f"- `{e}`" if e.startswith(("curl ", "repro: ")) else f"- {e}" for e in c.evidence[:MAX_DETAIL_LINES]]
        if len(c.evidence) > MAX_DETAIL_LINES:
            out.append(f"- ... {len(c.evidence) - MAX_DETAIL_LINES} more lines in report.json")
        out.append("")
    out += _coverage(report)
    return "\n".join(out)


def _coverage(report: Report) -> list[str]:
    """Operations x principals: how many requests each pair was exercised with, or why not."""
    rows = report.extra.get("coverage")
    if not isinstance(rows, list) or not rows:
        return []
    principals = sorted({str(r["principal"]) for r in rows})
    cells: dict[str, dict[str, str]] = {}
    for r in rows:
        text = str(r["requests"]) if r["requests"] else f"not exercised: {r['note'] or 'no reason recorded'}"
        cells.setdefault(str(r["operation"]), {})[str(r["principal"])] = text
    out = ["## Coverage: requests per operation and principal", ""]
    out += ["| operation | " + " | ".join(principals) + " |", "|---" * (len(principals) + 1) + "|"]
    for operation in sorted(cells):
        out.append(f"| {operation} | " + " | ".join(cells[operation].get(p, "-") for p in principals) + " |")
    return [*out, ""]


def write_markdown(report: Report, path: Path) -> None:
    """Write report.md."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report), encoding="utf-8")


def print_table(report: Report, console: Console | None = None) -> None:
    """The answers as a terminal table."""
    console = console or Console()
    table = Table(title=f"iam-harness: {report.answer.value}  (seed {report.seed})", title_justify="left")
    table.add_column("check")
    table.add_column("question")
    table.add_column("answer")
    table.add_column("evidence", overflow="fold", max_width=70)
    for c in report.checks:
        style = "green" if c.answer is Answer.YES else "bold red"
        table.add_row(c.id, escape(c.question), f"[{style}]{c.answer.value}[/]", escape(_line(c)[:300]))
    console.print(table)
    console.print(f"target: {escape(report.target)}")
    if report.error:
        console.print(f"[bold red]run error:[/] {escape(report.error)}")
