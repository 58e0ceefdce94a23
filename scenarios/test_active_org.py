"""M4 across a switch of the active organisation: a user in two organisations switches, and sees only the active
one's data, on the API and on its pages.

The requests and the judging of the API half live in harness.checks.switching. The browser half opens the
dashboard with org1 active and switches twice in the same browser (the session cookie replaced, the page opened
again, as Clerk's script does): each stretch must load and show nothing of the other organisation's records; where
the dashboard names its organisation, each stretch must name the active one.
"""

from __future__ import annotations

import random

import pytest

from fixtures.browsing import Browsing
from harness.browser.model import Phase, Verdict
from harness.checks.judged import Judged
from harness.checks.switching import SWITCHES, active_org_switch, member_of_both
from harness.clerk.issuer import Issuer
from harness.config.model import IdentityConfig, PagesConfig
from harness.config.placeholders import run_values
from harness.engine.exchange import lookup
from harness.engine.guard import GuardedTransport
from harness.engine.world import World
from harness.report.evidence import Evidence, conclude
from harness.target.running import Target


@pytest.mark.decides("M4")
def test_switching_the_active_organisation_shows_only_its_data(
    target: Target, world: World, issuer: Issuer, harness_seed: int, transport: GuardedTransport, evidence: Evidence
) -> None:
    """One session switches org1 -> org2 -> org1: who-am-I names the active organisation each time, its records
    read back, the other's are refused."""
    assert not world.problems, world.incomplete()
    rng = random.Random(f"switch-api-{harness_seed}")
    conclude(active_org_switch(target, world, issuer, rng, run_values(harness_seed), transport), evidence)


@pytest.mark.decides("M4")
def test_switching_the_active_organisation_in_the_browser_shows_only_its_data(
    browsing: Browsing,
    pages: PagesConfig,
    identity: IdentityConfig,
    target: Target,
    world: World,
    issuer: Issuer,
    harness_seed: int,
    transport: GuardedTransport,
    evidence: Evidence,
) -> None:
    """The dashboard, opened with org1 active and switched to org2 and back in the same browser, loads each time
    and shows nothing of the other organisation's records; where it names its organisation, it names the active one."""
    assert not world.problems, world.incomplete()
    judged = Judged(("M4",))
    rng = random.Random(f"switch-browser-{harness_seed}")
    user = member_of_both(target, world, issuer, rng, run_values(harness_seed), judged, transport)
    if user is None:
        conclude(judged, evidence)
        pytest.fail("no user in both organisations to switch")  # conclude fails first: `judged` says why
    names = _names(target, world, identity, transport)
    jars = {key: browsing.jar(session) for key, session in user.sessions.items()}
    steps = tuple(browsing.reopen(jars[key], pages.dashboard, f"switches to {key}") for key in SWITCHES[1:])
    name = "M4 switching the active organisation"
    seen = browsing.open(name, pages.dashboard, jars[SWITCHES[0]], browsing.dashboard, steps)
    # Where the dashboard names its organisation (the first stretch shows org1's name), each stretch must name the
    # active one; the other's name is not looked for, since a switcher listing the user's organisations names both.
    if not seen.phases or names.get(SWITCHES[0], "\0") not in seen.phases[0].text:
        names = {}
    evidence.add(
        f"{name}: the dashboard names its organisation ({', '.join(names.values())}): each stretch must name it"
        if names
        else f"{name}: the dashboard does not name its organisation: only the other's records are looked for"
    )
    problems = [p for key, phase in zip(SWITCHES, seen.phases, strict=False) for p in _shown(world, names, key, phase)]
    if len(seen.phases) < len(SWITCHES):
        problems.append(f"stopped after {len(seen.phases)} of {len(SWITCHES)} stretches: {seen.verdict}")
    for line in judged.evidence:
        evidence.add(line)
    browsing.record(name, seen, evidence, good=not problems)
    assert not problems, f"{name}: " + "; ".join(problems)
    evidence.add(f"{name}: each stretch loaded and showed only its active organisation's data")


def _names(target: Target, world: World, identity: IdentityConfig, transport: GuardedTransport) -> dict[str, str]:
    """Each organisation's name as its owner's who-am-I gives it; kept only when the names tell them apart."""
    found: dict[str, str] = {}
    for key in SWITCHES[:2]:
        with world.org(key).owner.caller(target.base_url, transport) as owner:
            me = owner.call("GET", identity.me)
        named = lookup(me.json(), identity.org_name) if me.ok else None
        if isinstance(named, str) and len(named.strip()) >= 3:
            found[key] = named
    one, two = found.get("org1", ""), found.get("org2", "")
    return found if one and two and one not in two and two not in one else {}


def _shown(world: World, names: dict[str, str], key: str, phase: Phase) -> list[str]:
    """What is wrong with one stretch of the visit, `key` active."""
    other = "org2" if key == "org1" else "org1"
    if phase.verdict is not Verdict.LOADED:
        return [f"with {key} active ({phase.label}) the dashboard did not load: {phase.verdict}"]
    problems = []
    if leaked := sorted(m for m in world.markers(other) if phase.holds(m)):
        problems.append(f"with {key} active ({phase.label}) the dashboard shows {other}'s {', '.join(leaked[:3])}")
    if names and names[key] not in phase.text:
        problems.append(f"with {key} active ({phase.label}) the dashboard does not name it ({names[key]!r})")
    return problems
