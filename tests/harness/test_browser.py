"""Loop detection over recorded navigations (the browser itself is exercised by the fault matrix)."""

from __future__ import annotations

from harness.browser.driver import Navigation, find_loop


def _navs(*steps: tuple[str, float]) -> list[Navigation]:
    return [Navigation(path, at) for path, at in steps]


def test_two_step_cycle_seen_twice_is_a_loop() -> None:
    navs = _navs(("/dashboard", 0), ("/sign-in", 410), ("/dashboard", 430), ("/sign-in", 840), ("/dashboard", 860))
    loop = find_loop(navs)
    assert loop is not None
    assert loop.cycle == ("/dashboard", "/sign-in")
    assert loop.period_ms == 430
    assert str(loop) == "/dashboard -> /sign-in -> /dashboard, period 430 ms"


def test_cycle_seen_once_is_not_yet_a_loop() -> None:
    assert find_loop(_navs(("/dashboard", 0), ("/sign-in", 400), ("/dashboard", 420))) is None


def test_plain_redirect_chain_is_not_a_loop() -> None:
    assert find_loop(_navs(("/", 0), ("/sign-in", 10), ("/dashboard", 500), ("/dashboard/settings", 900))) is None


def test_page_reloading_itself_is_a_loop() -> None:
    loop = find_loop(_navs(("/dashboard", 0), ("/dashboard", 300), ("/dashboard", 600)))
    assert loop is not None and loop.cycle == ("/dashboard",) and loop.period_ms == 300


def test_loop_after_a_detour_is_found() -> None:
    navs = _navs(("/", 0), ("/a", 1), ("/b", 2), ("/c", 3), ("/a", 4), ("/b", 5), ("/c", 6), ("/a", 7))
    loop = find_loop(navs)
    assert loop is not None and loop.cycle == ("/a", "/b", "/c")
