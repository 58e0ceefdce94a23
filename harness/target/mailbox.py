"""The run's mail server: SMTP on loopback (aiosmtpd), keeping every message it is handed as a file.

A target that sends mail (an invite) is pointed at it (`{smtp_host}`, `{smtp_port}` in `[embedded] env`), so that
what the target sends is really sent, over SMTP, and the harness reads what arrived. Each message is written to
its own file in the mailbox's directory, atomically (written aside, then renamed), so that any process of the run
can read the mailbox while the server writes. Nothing is relayed anywhere.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import itertools
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from harness.target.ports import free_port

__all__ = ["Mail", "Mailbox", "read_mail", "serving"]

_SUFFIX = ".eml"


@dataclass(frozen=True)
class Mail:
    """One message as delivered: its envelope recipients and the parsed message."""

    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text body (or the first text part), decoded."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class _Keeper:
    """aiosmtpd's handler: each message's bytes to a file of its own, recipients in its first line."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            number = next(self._numbers)
        recipients = ",".join(str(r) for r in envelope.rcpt_tos).encode()
        content = envelope.original_content or envelope.content or b""
        data = recipients + b"\n" + (content if isinstance(content, bytes) else str(content).encode())
        aside = self._directory / f".{number:06d}.tmp"
        aside.write_bytes(data)
        os.replace(aside, self._directory / f"{number:06d}{_SUFFIX}")
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Mailbox:
    """Where the run's SMTP server listens, and the directory its messages land in."""

    host: str
    port: int
    directory: Path


def read_mail(directory: Path) -> list[Mail]:
    """Every message delivered so far, oldest first."""
    out = []
    for path in sorted(directory.glob(f"*{_SUFFIX}")):
        recipients, _, content = path.read_bytes().partition(b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        out.append(Mail(tuple(r for r in recipients.decode().split(",") if r), message))
    return out


@contextlib.contextmanager
def serving() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 and a fresh directory for its mail; both gone when the block ends."""
    # aiosmtpd's import sets up its asyncio machinery: only a run that serves mail pays it.
    from aiosmtpd.controller import Controller

    with tempfile.TemporaryDirectory(prefix="iam-harness-mail-") as raw:
        directory = Path(raw)
        controller = Controller(_Keeper(directory), hostname="127.0.0.1", port=free_port())
        controller.start()
        try:
            yield Mailbox("127.0.0.1", controller.port, directory)
        finally:
            controller.stop()
