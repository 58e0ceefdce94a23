"""Plain schemathesis 4 against a practice target, as two real users of two organisations, for `bench.recall`.

How the two users are made: the harness's own world building (`fixtures.world.build_world`: the config's
`[[setup]]` requests, then each declared principal's login with the run values of the seed, or Clerk sessions
from the harness's key store) runs on the served build; the admin principal of each of the first two
organisations is taken, and its `credentials.headers()` (an API key, a bearer token, a session cookie: whatever
the config says the principal presents) become one user of a Web Fuzzing Commons auth document:

    {"auth": [{"name": "north", "fixedHeaders": [{"name": "Authorization", "value": "Bearer ..."}]}, ...]}

which `schemathesis.toml` names, listing both users as `peers` (the users whose objects must stay private to
each other), as schemathesis's object-level authorization guide says:

    [auth.wfc]
    path = ".../users.json"
    peers = ["north", "south"]

The first user of the document is the identity every operation is called as; `object_level_authorization`
replays a peer's successful read of its own object as the other peer. Neither user goes through `-H`: schemathesis
applies `-H` headers over every request, the peers' replays and its anonymous control included, so an
`Authorization` given there makes the replay identical to the owner's read and the check never fires (tried on the
library: `book_bola` found with the document alone, missed with the first user's header also given by `-H`).

The run: `schemathesis --config-file <toml> run <schema> --url <base> --checks all --max-examples N --seed S
--workers 1 --exclude-name-regex <the config's [fuzz] never>` in a subprocess with a timeout, its events written as
NDJSON, from which every failed check is read (`parse_events`): the check's name, the operation schemathesis
charges it to, its title and message.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from fixtures.world import build_world
from harness.clerk.keystore import KeyStore
from harness.config.model import TargetConfig
from harness.config.operations import OperationPattern, template_key
from harness.target.running import origin_of

__all__ = [
    "AUTHORIZATION_CHECKS",
    "StFailure",
    "StRun",
    "StUser",
    "never_regex",
    "parse_events",
    "run_schemathesis",
    "schemathesis_command",
    "two_users",
    "users_config",
    "wfc_document",
]

# The checks of `--checks all` that judge who may do what; the others judge conformance to the schema.
AUTHORIZATION_CHECKS = frozenset({"object_level_authorization", "ignored_auth"})


@dataclass(frozen=True)
class StUser:
    """One user schemathesis gets: a name (its organisation's key), who it is in the world, what it presents."""

    name: str
    principal: str
    headers: dict[str, str]


@dataclass(frozen=True)
class StFailure:
    """One failed check as schemathesis reported it."""

    check: str  # the check's name, e.g. "object_level_authorization"
    operation: str  # "METHOD /path/{template}", the operation schemathesis charges the failure to
    title: str = ""
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """The failure's identity across runs: the check and the operation (path parameters by position)."""
        return self.check, operation_key(self.operation)

    def line(self) -> str:
        """`check METHOD /path: title`."""
        return f"{self.check} {self.operation}" + (f": {self.title}" if self.title else "")


@dataclass
class StRun:
    """One schemathesis run on one build."""

    failures: list[StFailure] = field(default_factory=list)
    error: str | None = None  # why the run gave no answer (no users, a timeout, no events)
    seconds: float = 0.0
    users: list[str] = field(default_factory=list)  # "north: north librarian"
    problems: list[str] = field(default_factory=list)  # what world building could not do
    errors: list[str] = field(default_factory=list)  # schemathesis's own non-fatal errors (not failures)
    exit_code: int | None = None
    summary: list[str] = field(default_factory=list)  # the SUMMARY section of its output


def operation_key(operation: str) -> str:
    """`METHOD /path` with its method upper-cased and every path parameter reduced to `{}`."""
    method, _, path = operation.strip().partition(" ")
    return f"{method.upper()} {template_key(path.strip())}"


def two_users(config: TargetConfig, base_url: str, seed: int) -> tuple[list[StUser], list[str]]:
    """Build the world on the target as the harness does; the admin of each of its first two organisations."""
    issuer = KeyStore().issuer(issuer_url=config.issuer, authorized_party=origin_of(base_url), rng=Random(seed))
    world = build_world(config, issuer, base_url, seed)
    users = [
        StUser(name=org.key, principal=org.owner.name, headers=org.owner.credentials.headers())
        for org in list(world.orgs.values())[:2]
        if org.principals
    ]
    return users, list(world.problems)


def wfc_document(users: Iterable[StUser]) -> dict[str, Any]:
    """The Web Fuzzing Commons auth document: each user with the fixed headers it presents."""
    return {
        "auth": [
            {"name": user.name, "fixedHeaders": [{"name": k, "value": v} for k, v in user.headers.items()]}
            for user in users
        ]
    }


def users_config(wfc_path: Path, users: Iterable[StUser]) -> str:
    """`schemathesis.toml`: the auth document, every user of it a peer of the others."""
    peers = ", ".join(json.dumps(user.name) for user in users)
    return f"[auth.wfc]\npath = {json.dumps(str(wfc_path))}\npeers = [{peers}]\n"


def never_regex(patterns: Iterable[OperationPattern]) -> str | None:
    """One regular expression over schemathesis's operation names (`METHOD /path`) matching every `[fuzz] never`
    entry as the harness reads it (the method possibly `*`, the path a template or a glob); None for no entry."""
    alternatives = []
    for pattern in patterns:
        method = "[A-Z]+" if pattern.method == "*" else re.escape(pattern.method)
        pieces = [re.escape(piece).replace(r"\{\}", r"\{[^{}/]*\}") for piece in template_key(pattern.path).split("*")]
        alternatives.append(f"{method} {'.*'.join(pieces)}")
    return f"^(?:{'|'.join(alternatives)})$" if alternatives else None


def schemathesis_command(
    *,
    schema: str,
    base_url: str,
    config_file: Path,
    events: Path,
    seed: int,
    max_examples: int,
    exclude: str | None,
    phases: str | None = None,
) -> list[str]:
    """The schemathesis command line (run as `python -m schemathesis.cli`, the installed one)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run", schema, "--url", base_url,
        "--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed), "--workers", "1",
        "--generation-database", "none", "--request-timeout", "10", "--no-shrink", "--no-color",
        "--report", "ndjson", "--report-ndjson-path", str(events),
    ]  # fmt: skip
    if exclude is not None:
        command += ["--exclude-name-regex", exclude]
    if phases is not None:
        command += ["--phases", phases]
    return command


def summary_of(output: str) -> list[str]:
    """The lines of schemathesis's SUMMARY section (operations, phases, failures, test cases), blank ones left out."""
    lines = output.splitlines()
    start = next((n for n, line in enumerate(lines) if " SUMMARY " in line), len(lines))
    return [line.rstrip() for line in lines[start + 1 :] if line.strip() and not line.startswith("=")]


def _failures_of(finished: dict[str, Any]) -> Iterator[StFailure]:
    recorder = finished.get("recorder") or {}
    label = str(recorder.get("label", ""))
    cases = recorder.get("cases") or {}
    for case_id, checks in (recorder.get("checks") or {}).items():
        for check in checks or ():
            if check.get("status") != "failure":
                continue
            info = (check.get("failure_info") or {}).get("failure") or {}
            case = (cases.get(case_id) or {}).get("value") or {}
            sent = f"{case['method']} {case['path']}" if case.get("method") and case.get("path") else label
            yield StFailure(
                check=str(check.get("name", "")),
                operation=str(info.get("operation") or sent),
                title=str(info.get("title", "")),
                message=str(info.get("message", "")),
            )


def parse_events(lines: Iterable[str]) -> tuple[list[StFailure], list[str]]:
    """Every failed check in schemathesis's NDJSON events, once per check, operation and title (a failure found
    again while shrinking, or in another phase, is one failure); and its non-fatal errors' messages."""
    failures: dict[tuple[str, str, str], StFailure] = {}
    errors: list[str] = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if isinstance(finished := event.get("ScenarioFinished"), dict):
            for failure in _failures_of(finished):
                failures.setdefault((*failure.key, failure.title), failure)
        elif isinstance(error := event.get("NonFatalError"), dict):
            value = error.get("value")
            value = value if isinstance(value, dict) else {}
            errors.append(f"{error.get('label', '')}: {value.get('type', 'error')}: {value.get('message', '')}"[:300])
    return list(failures.values()), errors


def run_schemathesis(
    config: TargetConfig,
    base_url: str,
    seed: int,
    *,
    max_examples: int,
    timeout: float,
    workdir: Path,
    phases: str | None = None,
) -> StRun:
    """Two users made on the target, then one bounded schemathesis run; the failures it reported."""
    started = time.perf_counter()
    run = StRun()
    users, run.problems = two_users(config, base_url, seed)
    run.users = [f"{user.name}: {user.principal}" for user in users]
    if len(users) < 2:
        run.error = "needs two users of two organisations: " + ("; ".join(run.problems) or "the world has fewer")
        return run
    wfc = workdir / "users.json"
    wfc.write_text(json.dumps(wfc_document(users), indent=2), encoding="utf-8")
    toml = workdir / "schemathesis.toml"
    toml.write_text(users_config(wfc, users), encoding="utf-8")
    events = workdir / "events.ndjson"
    schema = str(config.schema_file) if config.schema_file is not None else base_url + (config.schema or "")
    command = schemathesis_command(
        schema=schema, base_url=base_url, config_file=toml, events=events, seed=seed, max_examples=max_examples,
        exclude=never_regex(config.fuzz.never), phases=phases,
    )  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir, check=False)
    except subprocess.TimeoutExpired:
        run.error = f"no answer within {timeout:.0f} s"
    else:
        run.exit_code = done.returncode
        run.summary = summary_of(done.stdout)
        if not events.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            run.error = f"exit {done.returncode}, no events: {tail[0][:300]}"
    if events.exists():
        with events.open(encoding="utf-8") as lines:
            run.failures, run.errors = parse_events(lines)
    run.seconds = time.perf_counter() - started
    return run
