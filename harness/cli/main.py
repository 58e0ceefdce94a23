"""The `iam-harness` command: a thin front end that runs the scenarios with pytest and sets the exit code.

The exit code comes from the report the run hands back in-process (never from a file a stale or concurrent run
may have written). Exit codes: 0 every check YES (or N/A); 1 any check NO; 2 usage or config error; 3 target
unreachable; 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM): the target and its database stopped, and
the partial report's answer INTERRUPTED.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.cli.config import add_config_commands, run_config_command
from harness.cli.keys import add_commands, run_command
from harness.cli.options import http_url
from harness.cli.plan import add_plan_command, run_plan_command
from harness.config.model import load_config
from harness.config.reference import default_config_path, parse_faults
from harness.errors import ConfigError, HarnessError
from harness.plugin import ReportHolder, scenarios_dir
from harness.report.model import Answer, ErrorKind, Report
from harness.stopping import stop_on_signals

__all__ = ["main"]

EXIT_YES, EXIT_NO, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
REPORT_FILES = ("report.json", "report.md", "junit.xml")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"iam-harness: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="iam-harness", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run the conformance scenarios and write the YES/NO report")
    run.add_argument("--target", default="embedded", help="'embedded' (default: start the reference app) or a base URL")
    run.add_argument("--config", type=Path, default=None, help="the target's config file (TOML)")
    run.add_argument("--faults", default="", help="comma-separated fault switches for the embedded target")
    run.add_argument(
        "--seed", type=int, default=None, help="seed for every random choice (default: a new one, printed)"
    )
    run.add_argument("--report-dir", type=Path, default=Path("reports"), help="where reports go (default: reports)")
    run.add_argument("--workers", type=int, default=0, help="run scenarios in N parallel processes (pytest-xdist)")
    run.add_argument("--fuzz-cases", type=int, default=None, help="generated cases per operation (default: config)")
    run.add_argument("-k", dest="keyword", default=None, help="only scenarios matching this pytest -k expression")
    run.add_argument("-v", "--verbose", action="store_true", help="pytest's per-scenario output")
    add_commands(commands, _Parser)
    add_plan_command(commands, _Parser)
    add_config_commands(commands, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    with stop_on_signals() as received:
        try:
            if args.command == "plan":
                return run_plan_command(args)
            if args.command == "config":
                return run_config_command(args)
            return _interrupted(received, _run(args) if args.command == "run" else run_command(args))
        except HarnessError as exc:
            print(f"iam-harness: {exc}", file=sys.stderr)
            return _interrupted(received, exc.exit_code)
        except KeyboardInterrupt:
            print("iam-harness: interrupted", file=sys.stderr)
            return _interrupted(received, EXIT_INTERRUPTED)


def _interrupted(received: list[int], code: int) -> int:
    """The exit code: 128 + the signal's number when one stopped the run (130 SIGINT, 143 SIGTERM), else `code`."""
    return 128 + received[0] if received else code


def _scenarios_dir() -> Path:
    if (found := scenarios_dir()) is None:
        raise ConfigError("the scenarios package is not installed")
    return found


def _run(args: argparse.Namespace) -> int:
    config_path: Path = args.config or default_config_path()
    load_config(config_path)  # fail early, with the field named, before anything starts
    faults = parse_faults(args.faults)
    if faults and args.target != "embedded":
        raise ConfigError("--faults only applies to the embedded target")
    if args.target != "embedded":
        http_url("--target", args.target, instead="'embedded'")
    if args.workers < 0:
        raise ConfigError(f"--workers must be 0 or more, got {args.workers}")
    if args.fuzz_cases is not None and not 1 <= args.fuzz_cases <= 500:
        raise ConfigError(f"--fuzz-cases must be from 1 to 500, got {args.fuzz_cases}")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    report_dir = _writable_dir(args.report_dir)
    # Only now, every option accepted: a run that writes no report must not leave an older one looking like its own.
    for name in REPORT_FILES:
        (report_dir / name).unlink(missing_ok=True)
    print(f"iam-harness: seed {seed}, target {args.target}, faults {','.join(faults) or 'none'}", flush=True)
    pytest_args = [
        str(_scenarios_dir()),
        # Only the plugins a run needs: whatever else is installed (plugins that reorder, retry or time tests)
        # has no say in a conformance run, and pytest need not load and rewrite it in every worker.
        "--disable-plugin-autoload",
        "-p", "xdist",
        "-p", "harness.plugin",
        "-p", "fixtures.plugin",
        "-p", "no:cacheprovider",
        f"--rootdir={_scenarios_dir().parent}",
        f"--target={args.target}",
        f"--faults={','.join(faults)}",
        f"--seed={seed}",
        f"--report-dir={report_dir}",
        "-v" if args.verbose else "-q",
        "--no-header",
        "-W", "ignore::DeprecationWarning",
        # This front end imports the plugin (and schemathesis under it) before pytest starts, to be handed the
        # report; pytest then cannot rewrite their asserts, which only its own test modules need.
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]  # fmt: skip
    if args.config:
        pytest_args.append(f"--target-config={config_path}")
    if args.fuzz_cases is not None:
        pytest_args.append(f"--fuzz-cases={args.fuzz_cases}")
    if args.workers:
        pytest_args += ["-n", str(args.workers), "--dist", "loadgroup"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    started = time.monotonic()
    holder = ReportHolder()
    code = pytest.main(pytest_args, plugins=[holder])
    if holder.report is None:
        if code == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt
        raise HarnessError(f"the run produced no report (pytest exit {int(code)})")
    return _exit_code(holder.report, time.monotonic() - started, report_dir)


def _writable_dir(path: Path) -> Path:
    """`--report-dir`, made if missing: a directory this process can write, or a ConfigError saying why not."""
    resolved = path.expanduser().resolve()
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=resolved):
            pass
    except FileExistsError:
        raise ConfigError(f"--report-dir {str(path)!r} is a file, not a directory") from None
    except NotADirectoryError:
        raise ConfigError(f"--report-dir {str(path)!r} is under a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"--report-dir {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    return resolved


def _exit_code(report: Report, seconds: float, report_dir: Path) -> int:
    """Say the run's answer and turn it into the exit code."""
    if report.interrupted:
        print(f"iam-harness: interrupted after {seconds:.1f} s; the partial report is in {report_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if report.error is not None:  # the one line that says what is wrong; the report says it too
        print(f"iam-harness: {report.error}", file=sys.stderr)
        return EXIT_USAGE if report.error_kind is ErrorKind.CONFIG else EXIT_UNREACHABLE
    print(f"iam-harness: {report.answer.value} in {seconds:.1f} s; report in {report_dir}")
    return EXIT_YES if report.answer is Answer.YES else EXIT_NO
