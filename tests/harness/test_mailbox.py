"""The run's mail server: what a target sends over SMTP arrives as files any process of the run can read."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from harness.target.mailbox import read_mail, serving


def test_mail_sent_over_smtp_is_kept_and_read_back() -> None:
    with serving() as box:
        assert box.host == "127.0.0.1"
        assert read_mail(box.directory) == []
        for n in (1, 2):
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "app@example.org", f"to{n}@example.org", f"hi {n}"
            message.set_content(f"https://app.example/invites/accept?token=t{n}\n")
            with smtplib.SMTP(box.host, box.port, timeout=5) as smtp:
                smtp.send_message(message, to_addrs=[f"to{n}@example.org", "cc@example.org"])
        mail = read_mail(box.directory)
        directory = box.directory
    assert [m.recipients for m in mail] == [
        ("to1@example.org", "cc@example.org"),
        ("to2@example.org", "cc@example.org"),
    ]
    assert [m.message["Subject"] for m in mail] == ["hi 1", "hi 2"]
    assert "token=t2" in mail[1].text
    assert not directory.exists()  # the mailbox is gone with the run
