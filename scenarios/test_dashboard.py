"""M1, O2 and O6 in a real browser: what a signed-in user sees when opening the target's pages.

Every visit ends in a named verdict (loaded, loop, handshake loop, error page, signed out, server error,
landmark missing, stuck) with its timeline, screenshot and, for a NO, its Playwright trace. The token shapes
tried are those behind Clerk's own redirect-loop reports: an expired session, a key rotated out, `__client_uat`
newer than the token, a clock ahead, a development browser without its cookie.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from fixtures.browsing import Browsing, Jar
from harness.browser.model import Fill, Verdict, Visit
from harness.clerk.issuer import DEV_BROWSER_COOKIE, Issuer, clerk_id, is_development
from harness.config.model import AdminConfig, PagesConfig, TargetConfig
from harness.engine.world import ClerkCredentials, Principal, World
from harness.report.evidence import Evidence, not_applicable
from harness.target.running import Target, try_start

REFUSAL_TIMEOUT = 20.0  # seconds a target refusing its settings may take to exit
ENDINGS = frozenset({Verdict.LOADED, Verdict.SIGNED_OUT, Verdict.ERROR_PAGE})  # no loop, no crash, no limbo


def _expect(browsing: Browsing, evidence: Evidence, name: str, seen: Visit, good: bool, why: str) -> None:
    browsing.record(name, seen, evidence, good=good)
    if not good:
        where = f"went round {seen.loop}" if seen.loop is not None else f"settled on {seen.final_path}"
        pytest.fail(f"{name}: {seen.verdict}: {why}; {where}")


def _clerk(who: Principal) -> ClerkCredentials:
    if not isinstance(who.credentials, ClerkCredentials):
        not_applicable(f"{who.name} signs in with the target's own login, not a Clerk session")
    return who.credentials


# Session tokens as a browser may hold them when it opens the dashboard: (name, jar builder).
Variant = Callable[[Browsing, ClerkCredentials, Issuer], Jar]
LOADS: dict[str, Variant] = {
    "v2 token": lambda b, c, i: b.jar(c),
    "v1 token": lambda b, c, i: b.jar(c, i.mint(c.sub, org=c.org, version=1)),
    "cookie jar only": lambda b, c, i: Jar(b.jar(c).cookies, {}),  # Clerk's frontend API does not know the browser
    "expired session token": lambda b, c, i: b.jar(c, i.mint(c.sub, org=c.org, now=int(time.time()) - 120)),
}


@pytest.mark.decides("M1")
@pytest.mark.parametrize("variant", list(LOADS))
def test_owner_opens_dashboard_without_a_loop(
    variant: str, browsing: Browsing, world: World, pages: PagesConfig, issuer: Issuer, evidence: Evidence
) -> None:
    """The organisation's owner opens the dashboard: it renders and settles, with no loop; an expired token is
    refreshed through Clerk's handshake (the stand-in answers it), not sent round."""
    owner = world.nth(0).owner
    jar = LOADS[variant](browsing, _clerk(owner), issuer) if variant != "v2 token" else browsing.jar(owner.credentials)
    seen = browsing.open(f"M1 owner dashboard, {variant}", pages.dashboard, jar, browsing.dashboard)
    good = seen.verdict is Verdict.LOADED
    _expect(browsing, evidence, f"M1 owner dashboard, {variant}", seen, good, "the dashboard never loaded")


@pytest.mark.decides("M1")
def test_owner_signs_in_on_the_sign_in_form_and_lands_on_the_dashboard(
    browsing: Browsing, world: World, pages: PagesConfig, evidence: Evidence
) -> None:
    """Signed out, the owner opens the dashboard, is sent to sign-in, types their login into the target's own
    form and is sent on without a loop (wherever the target sends a signed-in visitor); the dashboard, opened
    again, then loads."""
    owner = world.nth(0).owner
    form = _form(browsing, owner)
    name = "M1 owner signs in on the form"
    again = browsing.reopen(browsing.signed_out(), pages.dashboard, "opens the dashboard again")
    seen = browsing.open(name, pages.dashboard, browsing.signed_out(), browsing.dashboard, (form, again))
    if len(seen.phases) < 2:
        _expect(browsing, evidence, name, seen, False, f"no sign-in form ({form.fields[0][0]}) to type into")
    good = len(seen.phases) == 3 and seen.phases[1].verdict in ENDINGS and seen.verdict is Verdict.LOADED
    _expect(browsing, evidence, name, seen, good, "signed in, the dashboard never loaded")


@pytest.mark.decides("M1")
def test_a_wrong_password_stays_on_sign_in_without_a_loop(
    browsing: Browsing, world: World, pages: PagesConfig, evidence: Evidence
) -> None:
    """A mistyped password on the target's own form leaves the browser on sign-in (or an error page): never a
    loop, never a crash, never the dashboard."""
    owner = world.nth(0).owner
    _form(browsing, owner)  # N/A unless the owner signs in on the target's own form
    assert pages.sign_in_form is not None
    secret = next((n for n in pages.sign_in_form.fields.values() if "pass" in n.lower()), None)
    if secret is None:
        not_applicable("the sign-in form types no password")
    wrong = browsing.form(owner.credentials, wrong=secret)
    assert wrong is not None
    name = "M1 wrong password on the form"
    again = browsing.reopen(browsing.signed_out(), pages.dashboard, "opens the dashboard")
    seen = browsing.open(name, pages.sign_in, browsing.signed_out(), None, (wrong, again))
    stayed = len(seen.phases) == 3 and seen.phases[1].verdict in {Verdict.SIGNED_OUT, Verdict.ERROR_PAGE}
    good = stayed and seen.verdict is Verdict.SIGNED_OUT  # and no session came of it: the dashboard sends to sign-in
    _expect(browsing, evidence, name, seen, good, "a wrong password should leave the browser signed out, on sign-in")


def _form(browsing: Browsing, who: Principal) -> Fill:
    form = browsing.form(who.credentials)
    if form is None:
        if browsing.pages.sign_in_form is None:
            not_applicable("the config gives no [pages.sign_in_form]")
        not_applicable(f"{who.name} does not sign in on the target's own form (a Clerk session, or another login)")
    return form


@pytest.mark.decides("M1")
def test_sign_in_and_dashboard_send_on_once(
    browsing: Browsing, world: World, pages: PagesConfig, evidence: Evidence
) -> None:
    """Signed out, the dashboard sends to sign-in once and stays there; signed in, sign-in sends on to the
    dashboard once and it loads."""
    out = browsing.open("M1 signed out opens dashboard", pages.dashboard, browsing.signed_out(), None)
    to_sign_in = [n for n in out.navigations if n.path == pages.sign_in]
    good = out.verdict is Verdict.SIGNED_OUT and len(to_sign_in) == 1
    browsing.record("M1 signed out opens dashboard", out, evidence, good=good)
    owner = world.nth(0).owner
    back = browsing.open(
        "M1 signed in opens sign-in", pages.sign_in, browsing.jar(owner.credentials), browsing.dashboard
    )
    to_dashboard = [n for n in back.navigations if n.path == pages.dashboard]
    back_good = back.verdict is Verdict.LOADED and len(to_dashboard) == 1
    browsing.record("M1 signed in opens sign-in", back, evidence, good=back_good)
    if not good:
        pytest.fail(f"signed out, {pages.dashboard} ended {out.verdict} after {len(to_sign_in)} visit(s) to sign-in")
    if not back_good:
        pytest.fail(f"signed in, {pages.sign_in} ended {back.verdict} after {len(to_dashboard)} visit(s) to dashboard")


def _rotated_out(b: Browsing, c: ClerkCredentials, i: Issuer) -> Jar:
    gone = Issuer(issuer_url=i.issuer_url, authorized_party=i.authorized_party, rng=random.Random(c.sub))
    return Jar(b.jar(c, gone.mint(c.sub, org=c.org)).cookies, {})  # Clerk no longer knows this browser either


def _uat_newer(b: Browsing, c: ClerkCredentials, i: Issuer) -> Jar:
    jar = b.jar(c, i.mint(c.sub, org=c.org, now=int(time.time()) - 30))
    later = str(int(time.time()))
    return Jar({k: later if k.startswith("__client_uat") else v for k, v in jar.cookies.items()}, jar.identity)


CAUSES: dict[str, Variant] = {
    "expired session, unknown to Clerk": lambda b, c, i: Jar(
        b.jar(c, i.mint(c.sub, org=c.org, now=int(time.time()) - 600)).cookies, {}
    ),
    "token signed by a rotated-out key": _rotated_out,
    "__client_uat newer than the token": _uat_newer,
    "clock 10 s ahead": lambda b, c, i: b.jar(c, i.mint(c.sub, org=c.org, now=int(time.time()) + 10)),
    "development key without __clerk_db_jwt": lambda b, c, i: b.jar(c, drop=(DEV_BROWSER_COOKIE,)),
}


@pytest.mark.decides("M1")
@pytest.mark.parametrize("cause", list(CAUSES))
def test_clerk_loop_causes_end_without_a_loop(
    cause: str, browsing: Browsing, world: World, pages: PagesConfig, issuer: Issuer, evidence: Evidence
) -> None:
    """The causes of Clerk's own loop reports each end on sign-in, the dashboard or an error page: never a loop,
    never a crash."""
    if cause.startswith("development key") and not is_development(issuer.publishable_key):
        not_applicable("the instance's publishable key is a production key: no development browser")
    owner = world.nth(0).owner
    jar = CAUSES[cause](browsing, _clerk(owner), issuer)
    seen = browsing.open(f"M1 {cause}", pages.dashboard, jar, browsing.dashboard)
    _expect(browsing, evidence, f"M1 {cause}", seen, seen.verdict in ENDINGS, "expected sign-in, dashboard or error")


@pytest.mark.decides("O2")
def test_user_without_access_sees_error_page_not_sign_in(
    browsing: Browsing, world: World, pages: PagesConfig, evidence: Evidence
) -> None:
    """A signed-in member without access to a page (the dashboard, or the config's denied_page) sees the
    access-denied page, never sign-in. Where the config gives the target's own sign-in form, they sign in on it
    the way a person does (sent to sign-in, then on), and open the page again if sign-in sent them elsewhere."""
    member = world.nth(0).principal(pages.denied_role) if pages.denied_role else world.nth(0).member_without_role
    assert member is not None, world.incomplete()
    page = pages.denied_page or pages.dashboard
    name = "O2 member without access"
    form = browsing.form(member.credentials)
    if form is None:
        seen = browsing.open(name, page, browsing.jar(member.credentials), None)
        sent = [n for n in seen.navigations if n.path == pages.sign_in]
    else:
        again = browsing.reopen(browsing.signed_out(), page, f"opens {page} again")  # wherever sign-in sent them
        seen = browsing.open(name, page, browsing.signed_out(), None, (form, again))
        signed_in_at = seen.phases[1].at_ms if len(seen.phases) > 1 else float("inf")
        after = [n for n in seen.navigations if n.at_ms >= signed_in_at][1:]  # past the form's own submission
        sent = [n for n in after if n.path == pages.sign_in]
    good = seen.verdict is Verdict.ERROR_PAGE and not sent and (form is None or len(seen.phases) == 3)
    why = f"sent to {pages.sign_in} {len(sent)} time(s)" if sent else "no access-denied page"
    _expect(browsing, evidence, name, seen, good, why)


@pytest.mark.decides("O2")
def test_failed_provisioning_shows_an_error_page_with_a_reference(
    browsing: Browsing, pages: PagesConfig, issuer: Issuer, evidence: Evidence
) -> None:
    """A user whose provisioning fails server-side sees the error page (with its reference), not a loop."""
    if pages.failing_user is None or pages.error_landmark is None:
        not_applicable("the config names no failing_user and error_landmark under [pages]")
    who = ClerkCredentials(issuer, pages.failing_user, None)
    seen = browsing.open("O2 provisioning fails", pages.dashboard, browsing.jar(who), None)
    good = seen.verdict in {Verdict.ERROR_PAGE, Verdict.SERVER_ERROR} and "error-page" in seen.landmarks
    _expect(browsing, evidence, "O2 provisioning fails", seen, good, "no error page with a reference")


@pytest.mark.decides("O6")
def test_platform_admin_opens_admin_and_nobody_else_does(
    browsing: Browsing, world: World, admin: AdminConfig, issuer: Issuer, evidence: Evidence
) -> None:
    """The platform admin the target lists opens the admin page; the organisations' owners and members do not
    (and are not sent round a loop)."""
    landmark = ("platform-admin", admin.landmark)
    staff = ClerkCredentials(issuer, clerk_id("user", random.Random(admin.email)), None)
    token = issuer.mint(staff.sub, extra={admin.claim: admin.email})
    seen = browsing.open("O6 platform admin", admin.page, browsing.jar(staff, token), landmark)
    _expect(browsing, evidence, "O6 platform admin", seen, seen.verdict is Verdict.LOADED, "no admin page")
    for who in (world.nth(0).owner, world.nth(1).owner):
        name = f"O6 {who.name} opens {admin.page}"
        other = browsing.open(name, admin.page, browsing.jar(who.credentials), landmark)
        refused = other.verdict in {Verdict.ERROR_PAGE, Verdict.SIGNED_OUT}
        _expect(
            browsing, evidence, name, other, refused, "someone not listed as platform admin was let in or sent round"
        )


@pytest.mark.decides("O6")
def test_production_refuses_to_start_without_its_admin_list(
    target_config: TargetConfig, target: Target, admin: AdminConfig, issuer: Issuer, evidence: Evidence
) -> None:
    """Started with the settings the config says it must refuse (production mode, no admin list), the target
    does not start, and says why."""
    if not admin.refuses or target_config.embedded is None or not target.description.startswith("embedded"):
        not_applicable("only a target the harness starts itself, with [admin] refuses, can be started this way")
    attempt = try_start(target_config, target, issuer, admin.refuses, REFUSAL_TIMEOUT)
    settings = ", ".join(f"{k}={v!r}" for k, v in admin.refuses.items())
    evidence.add(f"started with {settings}: {'it started' if attempt.started else f'exit {attempt.exit_code}'}")
    evidence.add(f"its output: {attempt.output or '(none)'}")
    if attempt.started:
        pytest.fail(f"the target started with {settings}")
    if admin.says and admin.says not in attempt.output:
        pytest.fail(f"the target refused to start but did not say {admin.says}: {attempt.output}")
