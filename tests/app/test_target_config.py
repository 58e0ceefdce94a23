"""The config file the app ships for iam-harness (`app/iam-harness.toml`) says what the app does."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import app
from tests.app.support import Minter, TestClient, clerk_id

CONFIG: dict[str, Any] = tomllib.loads((Path(app.__file__).parent / "iam-harness.toml").read_text())
ENV: dict[str, str] = CONFIG["embedded"]["env"]


def landmark(selector: str) -> str:
    """`[data-testid=x]` as the page's HTML carries it."""
    found = re.fullmatch(r"\[data-testid=([\w-]+)\]", selector)
    assert found is not None, selector
    return f'data-testid="{found.group(1)}"'


def test_the_embedded_app_is_given_the_platform_admin_and_failing_user_the_config_names() -> None:
    assert ENV["ADMIN_EMAILS"] == CONFIG["admin"]["email"]
    assert CONFIG["admin"]["claim"] == "email"  # the claim the app reads
    assert ENV["APP_PROVISIONING_FAILS_FOR"] == CONFIG["pages"]["failing_user"]
    assert ENV["APP_MODE"] == "test"  # APP_PROVISIONING_FAILS_FOR is refused otherwise


def test_the_landmarks_the_config_names_are_on_the_pages(
    make_client: Callable[..., TestClient], minter: Minter
) -> None:
    client = make_client(admin_emails=ENV["ADMIN_EMAILS"], app_provisioning_fails_for=ENV["APP_PROVISIONING_FAILS_FOR"])
    admin = CONFIG["admin"]
    opened = client.get(admin["page"], headers=minter.browser(clerk_id("user"), **{admin["claim"]: admin["email"]}))
    assert opened.status_code == 200 and landmark(admin["landmark"]) in opened.text
    pages = CONFIG["pages"]
    failed = client.get(pages["dashboard"], headers=minter.browser(pages["failing_user"]))
    assert failed.status_code == 500 and landmark(pages["error_landmark"]) in failed.text
    shown = client.get(pages["dashboard"], headers=minter.browser(clerk_id("user")))
    assert shown.status_code == 200 and landmark(pages["dashboard_landmark"]) in shown.text
