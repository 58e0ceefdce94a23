"""Invite mail: one plain-text message per invite, handed to the SMTP server of the settings.

Sent with the standard library only, and only once the invite is committed: a mail server that is down or refuses
the message never loses the invite. The caller learns that the mail was not sent; how it failed (host, port, the
server's reply) goes to the log alone.

The link stands on a line of its own and is never wrapped: the message is written with SMTP's own line limit
(998), so a plain-ASCII body goes out as 7bit, never as quoted-printable that would break the link across lines.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from urllib.parse import urlencode

__all__ = ["ACCEPT_PATH", "SMTP_TIMEOUT_SECONDS", "InviteMail", "MailNotSent", "compose", "invite_link", "send"]

ACCEPT_PATH = "/invites/accept"
SMTP_TIMEOUT_SECONDS = 5.0
# RFC 5321's limit on a line, so that no line of the body (the link's included) is folded.
_POLICY = policy.SMTP.clone(max_line_length=998)


class MailNotSent(Exception):
    """The SMTP server could not be reached, or refused the message; the message is one line, for the log only."""


@dataclass(frozen=True)
class InviteMail:
    """What an invite mail says: to whom, into which organisation, with which role, and the link that accepts it."""

    to: str
    organisation: str
    role: str
    link: str
    expires: str
    """When the link stops working, as the mail shows it (UTC)."""


def invite_link(base_url: str, token: str) -> str:
    """The link that accepts an invite: `{APP_BASE_URL}/invites/accept?token=<token>`."""
    return f"{base_url}{ACCEPT_PATH}?{urlencode({'token': token})}"


def _one_line(text: str) -> str:
    # An organisation's name comes from Clerk: whatever it holds, it cannot add a header or a line of its own.
    return " ".join(text.split())


def compose(mail: InviteMail, *, sender: str) -> EmailMessage:
    """The invite as a plain-text message from `sender`."""
    organisation = _one_line(mail.organisation)
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = f"You are invited to join {organisation}"
    message.set_content(
        "\n".join(
            [
                f"You have been invited to join {organisation} as {_one_line(mail.role)}.",
                "",
                f"To accept, sign in as {mail.to} and open this link (it works once, until {mail.expires}):",
                "",
                mail.link,
                "",
                "If you did not expect this invitation, you can ignore this mail.",
            ]
        )
    )
    return message


def send(message: EmailMessage, *, host: str, port: int, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
    """Hand `message` to the SMTP server at `host:port`; raise MailNotSent, with a one-line cause, if it fails."""
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise MailNotSent(f"{host}:{port}: {type(exc).__name__}: {first_line}") from exc
