"""The terminal table: each check's answer and the line that stands for it, printed at the end of a run."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.markdown import summary_line
from harness.report.model import Answer, Report

__all__ = ["print_table"]

MAX_LINE_CHARS = 300
_STYLE = {Answer.YES: "green", Answer.NO: "bold red", Answer.NA: "yellow", Answer.INTERRUPTED: "bold yellow"}


def print_table(report: Report, console: Console | None = None) -> None:
    """The answers as a terminal table, then the run's error or interruption, if any."""
    console = console or Console()
    table = Table(title=f"iam-harness: {report.answer.value}  (seed {report.seed})", title_justify="left")
    table.add_column("check")
    table.add_column("question")
    table.add_column("answer")
    table.add_column("findings", justify="right")
    table.add_column("evidence", overflow="fold", max_width=70)
    for c in report.checks:
        kinds = Counter(f.kind.value for f in c.findings)
        found = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        answer = f"[{_STYLE[c.answer]}]{c.answer.value}[/]"
        table.add_row(c.id, escape(c.question), answer, escape(found), escape(summary_line(c)[:MAX_LINE_CHARS]))
    console.print(table)
    console.print(f"target: {escape(report.target)}")
    if report.interrupted:
        console.print("[bold red]interrupted:[/] the run did not finish, so its answer is NO")
    if report.error:
        console.print(f"[bold red]run error:[/] {escape(report.error)}")
