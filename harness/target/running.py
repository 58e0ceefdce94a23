"""Targets: the app under test, reached over HTTP on loopback or at a URL.

`EmbeddedTarget` starts a target locally from its config's `[embedded]` command (the reference app by
default) on a free loopback port, with a fresh PostgreSQL database, trusting the harness's key; it
keeps the server's log so that a NO can quote the server-side error. `RemoteTarget` is a deployed app.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from harness.clerk import jwks
from harness.clerk.issuer import Issuer
from harness.clerk.webhooks import new_secret
from harness.config.model import TargetConfig
from harness.config.placeholders import fill_template
from harness.errors import ConfigError, TargetUnreachable
from harness.stopping import shielded
from harness.target import mailbox
from harness.target.mailbox import Mailbox
from harness.target.ports import free_port
from harness.target.postgres import fresh_database, server_url

__all__ = ["EmbeddedTarget", "RemoteTarget", "SharedTarget", "StartAttempt", "Target", "origin_of", "try_start"]

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CONFIG_EXIT = 2  # a target that exits 2 at start-up refused its settings (a usage error, not an outage)
_ERROR_WORDS = ("ERROR", "CRITICAL", "Traceback", "sqlstate")


class Target(Protocol):
    """What scenarios may know of the app under test."""

    base_url: str
    config: TargetConfig
    database_url: str | None  # where the harness may read the target's database (check C2), if anywhere
    jwks_url: str | None  # the harness's JWKS server the target fetches keys from, if it was told of one
    webhook_secret: str | None  # the secret the target accepts Clerk webhooks signed with, if known
    mailbox: Mailbox | None  # the run's SMTP server the target sends its mail to, and where that mail lands

    @property
    def description(self) -> str:
        """One line naming the target, for the report."""
        ...

    def log_offset(self) -> int:
        """A mark in the server's log (0 when the harness cannot read it)."""
        ...

    def server_errors(self, since: int) -> list[str]:
        """Error lines the server logged after `since`; empty when the log is not readable."""
        ...

    def server_log(self, since: int) -> str | None:
        """What the server logged after `since`; None when the log is not the harness's to read."""
        ...


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL: the `azp` a browser on that page presents."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _wait_healthy(base_url: str, health: str, deadline: float, alive: subprocess.Popen[bytes] | None) -> None:
    last = "no answer"
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if alive is not None and alive.poll() is not None:
                raise TargetUnreachable(f"the target exited with code {alive.returncode} before answering {health}")
            try:
                response = client.get(health)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    raise TargetUnreachable(f"{base_url}{health} did not answer 200 in time (last: {last})")


class RemoteTarget:
    """A deployed target at a URL; its server log is not the harness's to read."""

    def __init__(self, base_url: str, config: TargetConfig) -> None:
        self.base_url = base_url.rstrip("/")
        self.config = config
        self.database_url = config.database.url if config.database else None
        self.jwks_url: str | None = None  # a deployed target is told its keys out of band
        self.webhook_secret = os.environ.get(config.webhooks.secret_env) if config.webhooks else None
        self.mailbox: Mailbox | None = None  # a deployed target's mail goes where its operators send it

    @property
    def description(self) -> str:
        return f"{self.base_url} (config {self.config.source})"

    @contextlib.contextmanager
    def running(self, issuer: Issuer) -> Iterator[RemoteTarget]:
        """Check the target answers its health operation, then hand it over."""
        del issuer  # a deployed target is configured to trust the issuer out of band
        _wait_healthy(self.base_url, self.config.health, time.monotonic() + 10.0, None)
        yield self

    def log_offset(self) -> int:
        return 0

    def server_errors(self, since: int) -> list[str]:
        return []

    def server_log(self, since: int) -> str | None:
        return None


class SharedTarget:
    """A target another process of the same run started (the controller of a parallel run)."""

    def __init__(self, config: TargetConfig, data: dict[str, Any]) -> None:
        self.base_url: str = data["base_url"]
        self.config = config
        self.database_url: str | None = data["database_url"]
        self.jwks_url: str | None = data["jwks_url"]
        self.webhook_secret: str | None = data["webhook_secret"]
        mail = data.get("mailbox")
        self.mailbox = Mailbox(mail["host"], mail["port"], Path(mail["directory"])) if mail else None
        self._description: str = data["description"]
        self.log_path = Path(data["log_path"]) if data["log_path"] else None

    @property
    def description(self) -> str:
        return self._description

    def log_offset(self) -> int:
        return _log_size(self.log_path)

    def server_errors(self, since: int) -> list[str]:
        return _log_errors(self.log_path, since)

    def server_log(self, since: int) -> str | None:
        return _log_text(self.log_path, since)


def _log_size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def _log_text(path: Path | None, since: int) -> str | None:
    if path is None:
        return None
    try:
        with path.open("rb") as log:
            log.seek(since)
            return log.read().decode("utf-8", "replace")
    except OSError:
        return None


def _log_errors(path: Path | None, since: int) -> list[str]:
    text = _log_text(path, since) or ""
    return [line.strip() for line in text.splitlines() if any(word in line for word in _ERROR_WORDS)]


class EmbeddedTarget:
    """A target the harness starts itself, per its config's `[embedded]` section."""

    def __init__(self, config: TargetConfig, *, faults: tuple[str, ...], log_path: Path) -> None:
        if config.embedded is None:
            raise ConfigError(f"config {config.source}: [embedded] is required to start the target locally")
        self.config = config
        self.faults = faults
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_url: str | None = None
        self.jwks_url: str | None = None
        self.mailbox: Mailbox | None = None
        self.webhook_secret: str | None = new_secret() if config.webhooks else None

    @property
    def description(self) -> str:
        faults = ",".join(self.faults) if self.faults else "none"
        return f"embedded {self.base_url} (config {self.config.source}; faults: {faults})"

    @contextlib.contextmanager
    def running(self, issuer: Issuer) -> Iterator[EmbeddedTarget]:
        """Start PostgreSQL, the issuer's JWKS server, the mail server and the app; stop them when done, on error and
        Ctrl-C alike."""
        assert self.config.embedded is not None
        with (
            server_url(os.environ.get("DATABASE_URL")) as server,
            fresh_database(server) as database_url,
            jwks.serving(issuer) as keys,
            mailbox.serving() as mail,
        ):
            self.database_url = database_url
            self.jwks_url = keys.url
            self.mailbox = mail
            values = _values(self.config, self, issuer, port=self.port, faults=",".join(self.faults))
            command = [_fill(part, values) for part in self.config.embedded.command]
            env = {**os.environ, **{k: _fill(v, values) for k, v in self.config.embedded.env.items()}}
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("wb") as log:
                try:
                    # the command comes from the target config the user chose, as a shell-free argument list
                    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
                except OSError as exc:
                    raise TargetUnreachable(f"cannot start {command[0]}: {exc}") from exc
                try:
                    try:
                        _wait_healthy(self.base_url, self.config.health, time.monotonic() + STARTUP_TIMEOUT, process)
                    except TargetUnreachable as exc:
                        tail = " | ".join(self._tail(5))
                        if process.poll() == CONFIG_EXIT:
                            raise ConfigError(f"the target refused its configuration: {tail}") from None
                        raise TargetUnreachable(f"{exc}; server log: {tail}") from None
                    yield self
                finally:
                    _stop(process)

    def log_offset(self) -> int:
        return _log_size(self.log_path)

    def server_errors(self, since: int) -> list[str]:
        return _log_errors(self.log_path, since)

    def server_log(self, since: int) -> str | None:
        return _log_text(self.log_path, since)

    def _tail(self, n: int) -> list[str]:
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return []
        return [line.strip() for line in lines[-n:]]


@dataclass(frozen=True)
class StartAttempt:
    """What became of starting the embedded target's command once more with other settings."""

    started: bool  # it answered its health check
    exit_code: int | None  # how it exited, when it did
    output: str  # the last lines it wrote


def try_start(
    config: TargetConfig, target: Target, issuer: Issuer, env: dict[str, str], timeout: float
) -> StartAttempt:
    """Start the embedded target's command again on a free port, its environment overridden by `env`, beside the
    running one (same database and keys); it is stopped at once if it comes up. For a target that must refuse
    an unsafe setting: the run's own target stays as it was."""
    assert config.embedded is not None
    port = free_port()
    values = _values(config, target, issuer, port=port, faults="")
    command = [_fill(part, values) for part in config.embedded.command]
    filled = {k: _fill(v, values) for k, v in config.embedded.env.items()}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 (the config's own command, as a shell-free argument list)
            command, env={**os.environ, **filled, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", config.health, time.monotonic() + timeout, process)
            started = True
        except TargetUnreachable:
            started = False
        finally:
            _stop(process)
        log.seek(0)
        out = log.read().decode(errors="replace")
    tail = " | ".join(line.strip() for line in out.splitlines()[-5:] if line.strip())
    return StartAttempt(started, None if started else process.returncode, tail)


def _values(config: TargetConfig, target: Target, issuer: Issuer, *, port: int, faults: str) -> dict[str, str]:
    """What an embedded target's command and environment are filled with (`[embedded]`'s placeholders)."""
    mail = target.mailbox
    return {
        "python": sys.executable,
        "host": "127.0.0.1",
        "port": str(port),
        "database_url": target.database_url or "",
        "jwt_key": issuer.public_pem,
        "jwks_url": target.jwks_url or "",
        "webhook_secret": target.webhook_secret or "",
        "issuer": issuer.issuer_url,
        "authorized_party": issuer.authorized_party,
        "faults": faults,
        "config_dir": str(config.config_dir),
        "smtp_host": mail.host if mail else "127.0.0.1",
        "smtp_port": str(mail.port if mail else 25),
    }


def _fill(template: str, values: dict[str, str]) -> str:
    # The config reader refused every placeholder `values` does not fill, so this leaves none behind.
    return str(fill_template(template, values))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process, killing it if it lingers; a signal meanwhile waits until it is gone."""
    with shielded():
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
