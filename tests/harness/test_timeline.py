"""The visit timeline: a well-formed, escaped SVG with a row per place, a dot per navigation and styled arrows."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.browser.model import Initiator, Loop, LoopKind, Navigation, Verdict, Visit
from harness.browser.timeline import MAX_ROWS, timeline_svg

APP = "http://127.0.0.1:8000"
NS = "{http://www.w3.org/2000/svg}"
H, S, C = Initiator.HARNESS, Initiator.SERVER, Initiator.SCRIPT


def _visit(navs: list[Navigation], verdict: Verdict = Verdict.LOADED, loop: Loop | None = None) -> Visit:
    final = navs[-1].url if navs else APP + "/"
    elapsed = navs[-1].at_ms + 100 if navs else 5000.0
    return Visit(APP + "/dashboard", tuple(navs), verdict, loop, (), final, elapsed)


def _svg(visit: Visit) -> ET.Element:
    return ET.fromstring(timeline_svg(visit).encode())


def _all(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(NS + tag) if cls in e.get("class", "").split()]


def _texts(root: ET.Element) -> list[str]:
    """What each <text> shows, its <title> tooltip left out."""
    return [(t.text or "") + "".join(c.tail or "" for c in t) for t in root.iter(NS + "text")]


def _titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(NS + "title")]


def test_a_ping_pong_loop_shows_two_rows_three_dots_and_a_redirect_and_a_script_arrow() -> None:
    navs = [
        Navigation(APP + "/dashboard", 0, 307, H),
        Navigation(APP + "/sign-in", 12, 200, S),
        Navigation(APP + "/dashboard?r=1", 420, None, C),
    ]
    cycle = ("127.0.0.1:8000/dashboard", "127.0.0.1:8000/sign-in")
    loop = Loop(cycle, ("127.0.0.1:8000",), 420, LoopKind.MIXED, 420)
    root = _svg(_visit(navs, Verdict.LOOP, loop))

    rows = _all(root, "g", "row")
    assert [_titles(r) for r in rows] == [[cycle[0]], [cycle[1]]]
    assert all("loop" in r.get("class", "").split() for r in rows)
    dots = _all(root, "circle", "dot")
    assert [d.get("class") for d in dots] == ["dot harness", "dot server", "dot script"]
    assert len({d.get("fill") for d in dots}) == 3
    ys = [float(d.get("cy", "")) for d in dots]
    assert ys[0] == ys[2] != ys[1]  # back on the first row: a zigzag
    xs = [float(d.get("cx", "")) for d in dots]
    assert xs[0] < xs[1] < xs[2]
    assert (dots[2].findtext(NS + "title") or "").startswith(APP + "/dashboard?r=1\n+420 ms, status -, script")

    redirect, client = _all(root, "line", "arrow")
    assert "redirect" in redirect.get("class", "") and redirect.get("stroke-dasharray") is None
    assert "client" in client.get("class", "") and client.get("stroke-dasharray")
    texts = _texts(root)
    assert "verdict: loop" in texts and str(loop) in texts
    assert {"307", "200", "-"} <= set(texts)


def test_a_hostile_url_is_escaped_and_comes_back_whole_in_a_title() -> None:
    url = APP + '/x?a=<script>&b="'
    svg = timeline_svg(_visit([Navigation(url, 0, 200, H)]))
    assert "<script>" not in svg and "&lt;script&gt;&amp;b=" in svg
    root = ET.fromstring(svg.encode())
    assert not list(root.iter("script")) and not list(root.iter(NS + "script"))
    assert any(t.startswith(url + "\n") for t in _titles(root))
    assert len(_all(root, "circle", "dot")) == 1 and not _all(root, "line", "arrow")


def test_no_navigation_says_so() -> None:
    root = _svg(_visit([], Verdict.STUCK))
    assert "no navigation" in _texts(root)
    assert not _all(root, "circle", "dot") and not _all(root, "g", "row")
    assert float(root.get("height", "")) > 0 and root.get("width") == "960"


def test_sixty_navigations_over_thirty_places_cap_the_rows() -> None:
    navs = [Navigation(f"{APP}/p{i % 30}", i * 50, 302, S if i else H) for i in range(60)]
    root = _svg(_visit(navs))
    rows = _all(root, "g", "row")
    assert len(rows) == MAX_ROWS + 1
    assert _texts(rows[-1]) == ["+10 more"]
    assert _titles(rows[-1])[0].splitlines() == [f"127.0.0.1:8000/p{i}" for i in range(20, 30)]
    assert len(_all(root, "circle", "dot")) == 60 and len(_all(root, "line", "arrow")) == 59
    bottom = max(float(r.find(NS + "rect").get("y", "")) for r in rows)  # type: ignore[union-attr]
    assert all(float(d.get("cy", "")) < bottom + 24 for d in _all(root, "circle", "dot"))
    ticks = [t.text for t in root.iter(NS + "text") if t.get("text-anchor") == "middle"]
    assert ticks[0] == "0" and "1 s" in ticks and len(ticks) <= 9
