"""The CLI's exit code comes from the report the run hands back in-process, never from a file on disk."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import harness.cli.main as cli
from harness.report.model import ErrorKind, Report
from tests.harness.report_support import error_report, interrupted_report, na_report, yes_report


def _fake_run(report: Report | None, code: int, report_dir: Path) -> Callable[..., int]:
    def run(args: Sequence[str], plugins: Sequence[object]) -> int:
        assert not any(a.startswith("--junitxml") for a in args)  # junit.xml is written from the report
        # A report.json that contradicts the run: the exit code must not follow it.
        (report_dir / "report.json").write_text(json.dumps({"answer": "YES", "error": None}))
        if report is not None:
            for plugin in plugins:
                plugin.pytest_harness_report(report=report, config=None)  # type: ignore[attr-defined]
        return code

    return run


@pytest.mark.parametrize(
    ("make", "expected", "said"),
    [
        (yes_report, 0, "iam-harness: YES"),
        (na_report, 1, "iam-harness: NO"),
        (lambda: Report(1, "t", yes_report().checks, error="bad field", error_kind=ErrorKind.CONFIG), 2, "bad field"),
        (error_report, 3, "cannot reach 127.0.0.1:9"),
        (interrupted_report, 130, "iam-harness: interrupted"),
    ],
    ids=["yes", "no", "config-error", "unreachable", "interrupted"],
)
def test_exit_code_follows_the_report_in_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[], Report],
    expected: int,
    said: str,
) -> None:
    monkeypatch.setattr(pytest, "main", _fake_run(make(), 1, tmp_path))
    assert cli.main(["run", "--report-dir", str(tmp_path), "--seed", "1"]) == expected
    out = capsys.readouterr()
    assert said in out.out + out.err and "Traceback" not in out.err


def test_no_report_after_an_interrupt_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pytest, "main", _fake_run(None, int(pytest.ExitCode.INTERRUPTED), tmp_path))
    assert cli.main(["run", "--report-dir", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_no_report_otherwise_is_an_error_not_a_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pytest, "main", _fake_run(None, int(pytest.ExitCode.NO_TESTS_COLLECTED), tmp_path))
    assert cli.main(["run", "--report-dir", str(tmp_path)]) == 1
    assert "produced no report (pytest exit 5)" in capsys.readouterr().err


def test_stale_reports_are_removed_before_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("report.json", "report.md", "junit.xml"):
        (tmp_path / name).write_text("old")
    seen: list[bool] = []

    def run(args: Sequence[str], plugins: Sequence[object]) -> int:
        seen.extend((tmp_path / name).exists() for name in ("report.json", "report.md", "junit.xml"))
        return 5

    monkeypatch.setattr(pytest, "main", run)
    cli.main(["run", "--report-dir", str(tmp_path)])
    assert seen == [False, False, False]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--workers", "-1"], "--workers must be 0 or more, got -1"),
        (["--fuzz-cases", "0"], "--fuzz-cases must be from 1 to 500, got 0"),
        (["--target", "http://[::1"], "--target 'http://[::1' is not a URL: Invalid IPv6 URL"),
        (["--target", "http://h:99999"], "is not a URL: Port out of range"),
        (["--target", "http:///x"], "an http(s) URL with a host, got 'http:///x'"),
    ],
)
def test_a_refused_option_says_one_line_and_touches_no_report(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    said: str,
) -> None:
    (tmp_path / "report.json").write_text("old")
    monkeypatch.setattr(pytest, "main", lambda *a, **k: pytest.fail("the run must not start"))
    assert cli.main(["run", "--report-dir", str(tmp_path), *args]) == 2
    out = capsys.readouterr()
    assert out.err.strip().splitlines() == [f"iam-harness: {out.err.strip().removeprefix('iam-harness: ')}"]
    assert said in out.err and out.out == ""
    assert (tmp_path / "report.json").read_text() == "old"


@pytest.mark.parametrize(("where", "said"), [("file", "is a file, not a directory"), ("file/under", "is under a file")])
def test_a_report_dir_that_is_no_directory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str, said: str
) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(pytest, "main", lambda *a, **k: pytest.fail("the run must not start"))
    assert cli.main(["run", "--report-dir", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and said in err and "Traceback" not in err
