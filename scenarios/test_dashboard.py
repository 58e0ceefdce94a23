"""M1 and O2: what a real browser sees when a signed-in user opens the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from harness.browser.driver import visit
from harness.config.model import PagesConfig
from harness.engine.guard import GuardedTransport
from harness.engine.world import World
from harness.report.evidence import Evidence
from harness.target.running import Target


def _landmarks(pages: PagesConfig) -> dict[str, str]:
    return {"dashboard": pages.dashboard_landmark, "access-denied": pages.denied_landmark}


@pytest.mark.decides("M1")
def test_owner_opens_dashboard_without_a_loop(
    target: Target,
    world: World,
    pages: PagesConfig,
    chromium: Browser,
    evidence: Evidence,
    report_dir: Path,
    transport: GuardedTransport,
) -> None:
    """The organisation's owner, signed in, opens the dashboard: it renders and settles, with no redirect loop."""
    owner = world.org("org1").owner
    trace = report_dir / "traces" / "m1-owner-dashboard.zip"
    seen = visit(
        chromium,
        target.base_url + pages.dashboard,
        cookies=owner.credentials.cookies(),
        landmarks=_landmarks(pages),
        trace_path=trace,
        forbids=transport.forbids if transport.guards else None,
    )
    evidence.add(f"{owner.name} opened {pages.dashboard}: {seen.trail()}")
    if seen.loop is not None:
        evidence.add(f"browser trace: {trace} (open with `playwright show-trace`)")
        pytest.fail(f"redirect loop: {seen.loop}")
    if "dashboard" not in seen.landmarks:
        evidence.add(f"browser trace: {trace} (open with `playwright show-trace`)")
        shown = ", ".join(seen.landmarks) or "no known landmark"
        pytest.fail(f"the dashboard never loaded: settled on {seen.final_path} showing {shown} {seen.error or ''}")
    trace.unlink(missing_ok=True)  # a trace is kept only as the repro of a NO
    evidence.add(f"dashboard landmark {pages.dashboard_landmark} shown on {seen.final_path}; no loop")


@pytest.mark.decides("O2")
def test_user_without_access_sees_error_page_not_sign_in(
    target: Target,
    world: World,
    pages: PagesConfig,
    chromium: Browser,
    evidence: Evidence,
    report_dir: Path,
    transport: GuardedTransport,
) -> None:
    """A signed-in member without access to the dashboard sees the access-denied page and is never sent to sign-in."""
    member = world.org("org1").member_without_role
    assert member is not None, world.incomplete()
    trace = report_dir / "traces" / "o2-denied-dashboard.zip"
    seen = visit(
        chromium,
        target.base_url + pages.dashboard,
        cookies=member.credentials.cookies(),
        landmarks=_landmarks(pages),
        trace_path=trace,
        forbids=transport.forbids if transport.guards else None,
    )
    evidence.add(f"{member.name} opened {pages.dashboard}: {seen.trail()}")
    sent_to_sign_in = [n for n in seen.navigations if n.path == pages.sign_in]
    if seen.loop is not None or sent_to_sign_in:
        evidence.add(f"browser trace: {trace} (open with `playwright show-trace`)")
        what = f"redirect loop: {seen.loop}" if seen.loop else f"sent to {pages.sign_in}"
        pytest.fail(f"a signed-in user without access was {what}")
    if "access-denied" not in seen.landmarks:
        evidence.add(f"browser trace: {trace} (open with `playwright show-trace`)")
        shown = ", ".join(seen.landmarks) or "no known landmark"
        pytest.fail(f"no access-denied page: settled on {seen.final_path} showing {shown}")
    trace.unlink(missing_ok=True)
    evidence.add(f"access-denied landmark shown on {seen.final_path}; never sent to {pages.sign_in}")
