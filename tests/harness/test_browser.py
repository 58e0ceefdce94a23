"""Loop detection and verdicts over recorded navigations (the browser itself: tests/harness/test_browser_pages.py
and the fault matrix)."""

from __future__ import annotations

from harness.browser.driver import Landmarks, _runaway, classify, find_loop
from harness.browser.model import Initiator, LoopKind, Navigation, Verdict

APP = "http://127.0.0.1:8000"
FAPI = "https://iam-harness-12.clerk.accounts.dev"
S, C, H = Initiator.SERVER, Initiator.SCRIPT, Initiator.HARNESS
LANDMARKS = Landmarks(("dashboard", "[data-testid=dashboard]"), {"access-denied": "[data-testid=denied]"}, "/sign-in")


def _navs(*steps: tuple[str, float, Initiator]) -> list[Navigation]:
    return [Navigation(url if url.startswith("http") else APP + url, at, 200, who) for url, at, who in steps]


def test_two_step_cycle_seen_twice_is_a_client_side_loop() -> None:
    navs = _navs(("/dashboard", 0, H), ("/sign-in", 410, C), ("/dashboard", 430, C), ("/sign-in", 840, C))
    assert find_loop(navs) is None
    loop = find_loop([*navs, *_navs(("/dashboard", 860, C))])
    assert loop is not None
    assert loop.cycle == ("127.0.0.1:8000/dashboard", "127.0.0.1:8000/sign-in")
    assert loop.period_ms == 430 and loop.kind is LoopKind.CLIENT and loop.detected_ms == 860
    assert str(loop) == "client-side loop /dashboard -> /sign-in -> /dashboard, period 430 ms, through 127.0.0.1:8000"


def test_redirect_ping_pong_is_a_server_side_loop_and_a_mixed_one_is_mixed() -> None:
    server = find_loop(_navs(("/a", 0, H), ("/b", 5, S), ("/a", 9, S), ("/b", 14, S), ("/a", 18, S)))
    assert server is not None and server.kind is LoopKind.SERVER
    mixed = find_loop(_navs(("/d", 0, H), ("/s", 5, S), ("/d", 9, C), ("/s", 14, S), ("/d", 18, C)))
    assert mixed is not None and mixed.kind is LoopKind.MIXED


def test_plain_redirect_chain_and_one_handshake_round_are_not_loops() -> None:
    assert find_loop(_navs(("/", 0, H), ("/sign-in", 10, S), ("/dashboard", 500, C), ("/dashboard/x", 900, C))) is None
    handshake = f"{FAPI}/v1/client/handshake?redirect_url=x"
    one_round = _navs(("/dashboard", 0, H), (handshake, 5, S), ("/dashboard?__clerk_handshake=t", 9, S))
    assert find_loop([*one_round, *_navs(("/dashboard", 12, S))]) is None


def test_query_strings_do_not_hide_a_loop() -> None:
    loop = find_loop(_navs(("/d?n=1", 0, H), ("/d?n=2", 300, C), ("/d?n=3", 600, C)))
    assert loop is not None and loop.cycle == ("127.0.0.1:8000/d",) and loop.period_ms == 300


def test_loop_after_a_detour_is_found() -> None:
    steps = [("/", 0), ("/a", 1), ("/b", 2), ("/c", 3), ("/a", 4), ("/b", 5), ("/c", 6), ("/a", 7)]
    loop = find_loop(_navs(*((u, float(t), C) for u, t in steps)))
    assert loop is not None and [p.rsplit("/", 1)[1] for p in loop.cycle] == ["a", "b", "c"]


def test_navigations_without_a_clean_cycle_past_the_limit_are_a_runaway_loop() -> None:
    navs = _navs(*((f"/step/{i % 7}?{i}" if i % 3 else f"/other/{i % 5}", float(i * 10), C) for i in range(42)))
    loop = _runaway(navs)
    assert loop.kind is LoopKind.CLIENT and len(loop.cycle) > 1 and loop.detected_ms == 410


def _verdict(**seen: object) -> Verdict:
    given: dict[str, object] = {"identity_hosts": ("iam-harness-12.clerk.accounts.dev",), "status": 200}
    given |= {"visible": (), "landmarks": LANDMARKS, "final_path": "/dashboard", "settled": True} | seen
    return classify(None, **given)  # type: ignore[arg-type]


def test_verdicts_name_what_the_page_came_to() -> None:
    assert _verdict(visible=("dashboard",)) is Verdict.LOADED
    assert _verdict(visible=("access-denied",), status=403) is Verdict.ERROR_PAGE
    assert _verdict(status=500, visible=("dashboard",)) is Verdict.SERVER_ERROR
    assert _verdict(final_path="/sign-in") is Verdict.SIGNED_OUT
    assert _verdict() is Verdict.LANDMARK_MISSING
    assert _verdict(settled=False) is Verdict.STUCK


def test_a_loop_through_the_identity_providers_host_is_a_handshake_loop() -> None:
    handshake = f"{FAPI}/v1/client/handshake?redirect_url=x"
    rounds = [("/dashboard", 0.0, H)]
    for n in range(2):
        rounds += [(handshake, 10.0 + 30 * n, S), ("/dashboard?__clerk_handshake=t", 20.0 + 30 * n, S)]
        rounds += [("/dashboard", 30.0 + 30 * n, S)]
    loop = find_loop(_navs(*rounds))
    assert loop is not None and "iam-harness-12.clerk.accounts.dev" in loop.hosts
    ids = ("iam-harness-12.clerk.accounts.dev",)
    seen = {"status": 307, "visible": (), "landmarks": LANDMARKS, "final_path": "/dashboard", "settled": False}
    assert classify(loop, identity_hosts=ids, **seen) is Verdict.HANDSHAKE_LOOP  # type: ignore[arg-type]
    assert classify(loop, identity_hosts=(), **seen) is Verdict.LOOP  # type: ignore[arg-type]
