"""The fault matrix: the harness, run as users run it, against the reference app with each fault switch on.

Every row names the checks that must turn NO, and the checks that must stay YES (those the fault cannot
plausibly reach). A check in neither set may follow the fault (for instance, with roles unreadable the
owner cannot build the world, so checks that need the world go NO too); the row says why.
The healthy app answers all YES.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.checks.catalogue import CATALOGUE
from tests.harness.report_support import junit_agrees, validate_report

pytestmark = pytest.mark.e2e

ALL = frozenset(c.id for c in CATALOGUE)
RUN_TIMEOUT = 240
SEED = 20261126


@dataclass(frozen=True)
class Row:
    faults: str
    must_be_no: frozenset[str]
    stays_yes: frozenset[str]
    why: str
    scenarios: str | None = None  # a -k expression: rows about the fuzzer and the schema skip the browser
    named: str | tuple[str, ...] | None = None  # evidence of the first NO check must say this (each of these)


BROWSER = "dashboard"  # the browser scenarios deciding M1, O2 and O6
BROWSER_CHECKS = frozenset({"M1", "O2", "O6"})
FUZZ = "fuzz or tenancy"  # the scenarios deciding M3, O4, M4, I3, C2 and O1's fuzzed half
FUZZ_CHECKS = frozenset({"M3", "O4", "M4", "I3", "C2"})


def _fuzz_row(faults: str, must_be_no: set[str], why: str) -> Row:
    return Row(faults, frozenset(must_be_no), FUZZ_CHECKS - must_be_no, why, FUZZ)


ROWS = [
    Row(
        "redirect_to_sign_in_on_denied",
        frozenset({"O2"}),
        ALL - {"O2", "O6"},
        "only the denied page changes: it is also what a non-admin gets on /admin",
        named="O2 member without access: loop",
    ),
    Row(
        "user_role_query_uses_clerk_id",
        frozenset({"O1", "M2", "M1"}),
        frozenset(),
        "roles are unreadable: every role-dependent answer fails, and no owner can build the world",
    ),
    Row("skip_role_seed", frozenset({"O3", "M2"}), frozenset({"O1"}), "no roles: nobody may do anything"),
    Row(
        "user_role_query_uses_clerk_id,redirect_to_sign_in_on_denied",
        frozenset({"M1", "O1", "M2", "O2"}),
        frozenset(),
        "the incident's chain: roles unreadable -> denied -> sign-in -> dashboard",
    ),
    Row(
        "first_user_not_admin",
        frozenset({"M2"}),
        frozenset({"M1", "O1", "O3"}),
        "no admin in any organisation, so nobody can add the members the world needs",
    ),
    Row("default_allow", frozenset({"M3", "O4"}), frozenset({"M1", "M2", "O1", "O3", "M4", "C2"}), "the policy allows"),
    Row("no_org_scope", frozenset(), ALL, "the repository stops scoping, and row-level security holds: I3"),
    _fuzz_row("no_org_scope,no_rls", {"M4", "I3", "C2"}, "both walls down: org1 reads, lists and deletes org2's data"),
    _fuzz_row("no_rls", {"C2"}, "the second wall is missing, the first still holds"),
    _fuzz_row("list_ignores_org", {"M4", "I3"}, "lists, search, export and counts show other orgs' records"),
    _fuzz_row("cross_org_reference", {"M4", "I3"}, "a deal in org1 may point at org2's contact"),
    _fuzz_row("mass_assign_org_id", {"M4", "I3"}, "an org_id in a body is honoured"),
    _fuzz_row("existence_oracle", {"M4"}, "another org's id answers 403, a random one 404"),
    # Its cross-organisation writes reach members too: a Manager acting in the other organisation by the header
    # regrants that organisation's members, so the role matrix (M3, O4) may turn NO beside it; C2 must not.
    Row(
        "org_header_switches_org",
        frozenset({"M4", "I3"}),
        frozenset({"C2"}),
        "X-Org-Id switches the active organisation",
        FUZZ,
    ),
    _fuzz_row("viewer_can_write", {"M3", "O4"}, "a Viewer may write"),
    Row("sql_error_leaks", frozenset({"O1"}), FUZZ_CHECKS, "a malformed id answers 500 with SQL text", FUZZ),
    *[
        Row(fault, frozenset({"C1"}), frozenset(), why, "authentication", named)
        for fault, why, named in [
            ("accept_alg_none", "an unsigned token is let in", "accepted forgery (alg_none)"),
            ("hs256_key_confusion", "the public key is an HMAC secret", "accepted forgery (hs256_with_public_key)"),
            ("skip_azp_check", "another origin's session is let in", "accepted forgery (foreign_azp)"),
            ("exp_not_required", "a token that never expires is let in", "accepted forgery (missing_exp)"),
            ("trust_jwk_header", "the token's own key verifies it", "accepted forgery (embedded_jwk)"),
            ("ignore_pending_status", "a pending session is let in", "accepted forgery (pending_session)"),
            (
                "jwks_refetch_every_unknown_kid",
                "each forged kid is one more fetch of the issuer's JWKS",
                "forged kids made the target fetch its JWKS",
            ),
            ("refusals_not_logged", "refusals leave no line in the log", "refusals not in the server log"),
            ("role_claim_trusted", "the token's role claim is believed", "session claiming the admin role (v2)"),
            ("provision_before_verify", "a forged sub becomes a user, then is refused", "refused forgeries left"),
            (
                "webhook_signature_unchecked",
                "anyone may post user.deleted",
                "a user.deleted signed with another secret was not refused",
            ),
            (
                "deleted_user_accepted",
                "user.deleted is recorded and ignored",
                "a deleted user's valid session token answered 200",
            ),
        ]
    ],
    *[
        Row(fault, frozenset(no), frozenset(yes), why, BROWSER, named)
        for fault, no, yes, why, named in [
            (
                "server_redirect_loop",
                {"M1"},
                {"O6"},
                "302 ping-pong between dashboard and sign-in (the denied member's dashboard too)",
                "server-side loop /dashboard -> /sign-in -> /dashboard",
            ),
            (
                "handshake_loop",
                {"M1"},
                set(),
                "every page load goes round Clerk's handshake",
                "v2 token: handshake loop",
            ),
            ("dashboard_crash", {"M1"}, {"O6"}, "the dashboard answers 500, for everyone", "v2 token: server error"),
            (
                "dashboard_landmark_missing",
                {"M1"},
                {"O2", "O6"},
                "the dashboard renders without its landmark",
                "v2 token: landmark missing",
            ),
            ("admin_emails_ignored", {"O6"}, {"M1", "O2"}, "anyone signed in opens /admin", "opens /admin: loaded"),
            (
                "expired_token_loops",
                {"M1"},
                {"O2", "O6"},
                "an expired token is sent to sign-in, which sends it back",
                "mixed loop /dashboard -> /sign-in -> /dashboard",
            ),
        ]
    ],
    Row(
        "active_org_cached_per_session",
        frozenset({"M4"}),
        frozenset(),
        "a session keeps the organisation it first came with: switched to org2, it is served org1's data",
        "active_org",
        (
            "with org2 active it answered 200 naming organisation",  # the API half
            "with org2 active (switches to org2) the dashboard does not name it",  # the browser half
        ),
    ),
    Row(
        "org_claim_trusted_without_membership",
        frozenset({"C1", "M4"}),
        frozenset(),
        "a session naming another organisation joins it",
        "authentication or fuzz",
    ),
    Row(
        "provision_not_transactional",
        frozenset({"I1"}),
        frozenset(),
        "a first login commits as it goes: torn midway, it leaves a user whose own workspace refuses them",
        "first_logins",
        ("a first login that failed midway (500) left sys_external_identity 1", "the next one answered 403"),
    ),
    Row(
        "provision_race",
        frozenset({"I1"}),
        frozenset(),
        "check-then-insert without constraints: racing first requests make several users of one",
        "first_logins",
        "the race left",  # more rows than a first login alone leaves
    ),
    Row(
        "last_admin_removable",
        frozenset({"C3"}),
        frozenset(),
        "nothing keeps an organisation's last member manager: the sole Admin removes itself, or its own role",
        "last_member_manager",
        (
            "the organisation's only Admin removes itself (204)",
            "the organisation's only Admin takes its own role away (200)",
        ),
    ),
    *[
        Row(fault, frozenset({"O5"}), frozenset(), why, "invite_lets", named)
        for fault, why, named in [
            ("invite_reusable", "an accepted invite accepts again", "a used invite accepted again"),
            ("invite_not_bound_to_email", "any signed-in user may accept", "another address accepted the invite"),
            ("invite_never_expires", "expiry is not checked", "an invite accepted after it expired"),
            ("invite_cross_org", "an org_id in the body is honoured, unchecked", "org1 admin invited into org2"),
            (
                "invite_role_escalation",
                "the invited role is not held to the inviter's own",
                "a Manager invited an Admin (201), and the invitee joined as ['Admin']",
            ),
        ]
    ],
    *[
        Row(fault, frozenset({"I2"}), frozenset(), why, "sync_makes", named)
        for fault, why, named in list[tuple[str, str, str | tuple[str, ...]]](
            [
                (
                    "webhook_not_idempotent",
                    "organization.created inserts every time it is delivered",
                    "organisations hold more rows than one delivered once",
                ),
                (
                    "membership_before_org_dropped",
                    "a membership that overtakes its organisation is dropped",
                    "a member refused",
                ),
                (
                    "stale_update_applied",
                    "an older update wins, and a late one revives a deleted organisation",
                    ("not Clerk's last name", "signed in to a deleted organisation"),
                ),
            ]
        )
    ],
]
FUZZ_CASES = "4"  # fewer generated cases than a real run: each fault shows on the first


def _run(tmp_path: Path, postgres_server: str, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    env = {**os.environ, "DATABASE_URL": postgres_server}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--seed", str(SEED), "--report-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
        check=False,
    )
    path = tmp_path / "report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    if report is not None:
        validate_report(report)
    return done.returncode, report, done.stdout + done.stderr


def _answers(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["answer"] for c in report["checks"]}


def _evidence(report: dict[str, Any], check_id: str) -> list[str]:
    return next(c["evidence"] for c in report["checks"] if c["id"] == check_id)


def _finding_details(report: dict[str, Any], check_id: str) -> list[str]:
    return [f["detail"] for c in report["checks"] if c["id"] == check_id for f in c["findings"]]


def test_healthy_app_answers_all_yes(tmp_path: Path, postgres_server: str) -> None:
    code, report, output = _run(tmp_path, postgres_server)
    assert report is not None, output
    assert _answers(report) == dict.fromkeys(ALL, "YES"), json.dumps(report, indent=1)[:4000]
    assert code == 0 and report["answer"] == "YES" and report["seed"] == SEED
    assert all(_evidence(report, c) for c in ALL)
    assert (tmp_path / "report.md").read_text().startswith("# iam-harness: YES")
    junit_agrees(tmp_path, report)
    assert f"seed {SEED}" in output


@pytest.mark.parametrize("row", ROWS, ids=[r.faults for r in ROWS])
def test_fault_turns_its_checks_no(tmp_path: Path, postgres_server: str, row: Row) -> None:
    scope = ("-k", row.scenarios) if row.scenarios else ()
    code, report, output = _run(tmp_path, postgres_server, "--faults", row.faults, "--fuzz-cases", FUZZ_CASES, *scope)
    assert report is not None, output
    junit_agrees(tmp_path, report)
    answers = _answers(report)
    if not row.must_be_no and not row.scenarios:  # a fault the second wall must absorb: every check stays YES
        assert code == 0 and set(answers.values()) == {"YES"}, json.dumps(report, indent=1)[:4000]
        return
    assert code == 1 and report["answer"] == "NO", output[-3000:]
    assert {c for c in row.must_be_no if answers[c] != "NO"} == set(), json.dumps(report, indent=1)[:4000]
    assert {c for c in row.stays_yes if answers[c] != "YES"} == set(), json.dumps(report, indent=1)[:4000]
    for check_id in row.must_be_no:
        assert any("repro: pytest " in line for line in _evidence(report, check_id)), f"{check_id} has no repro line"
    first = sorted(row.must_be_no)[0] if row.must_be_no else None
    evidence = [*_evidence(report, first), *_finding_details(report, first)] if first else []
    for named in (row.named,) if isinstance(row.named, str) else row.named or ():
        assert any(named in line for line in evidence), named + "\n" + "\n".join(evidence)[-3000:]


def test_role_query_fault_is_quoted_from_the_server_log_only(tmp_path: Path, postgres_server: str) -> None:
    _, report, output = _run(
        tmp_path, postgres_server, "--faults", "user_role_query_uses_clerk_id", "-k", "first_login"
    )
    assert report is not None, output
    o1 = _evidence(report, "O1")
    assert any(line.startswith("server log:") and "22P02" in line for line in o1), o1
    responses = [line for line in o1 if not line.startswith("server log:")]
    assert any(" -> 500" in line for line in responses), o1
    assert not any("22P02" in line or "psycopg" in line.lower() for line in responses), o1


def test_incident_chain_names_the_loop_and_links_its_evidence(tmp_path: Path, postgres_server: str) -> None:
    """The incident: roles unreadable, so the owner is denied, and the denied page sends to sign-in. The report
    names the client-side loop with its cycle and links its timeline picture, screenshot and trace."""
    faults = "user_role_query_uses_clerk_id,redirect_to_sign_in_on_denied"
    _, report, output = _run(tmp_path, postgres_server, "--faults", faults, "-k", "owner_opens_dashboard and v2")
    assert report is not None, output
    m1 = _evidence(report, "M1")
    assert any("client-side loop /dashboard -> /sign-in -> /dashboard, period" in line for line in m1), m1
    (check,) = [c for c in report["checks"] if c["id"] == "M1"]
    kinds = {a["kind"] for a in check["artifacts"]}
    assert kinds == {"timeline", "timeline data", "screenshot", "trace"}, check["artifacts"]
    for artifact in check["artifacts"]:
        assert (tmp_path / artifact["path"]).stat().st_size > 0, artifact
    svg = next(a["path"] for a in check["artifacts"] if a["kind"] == "timeline")
    assert "<svg" in (tmp_path / svg).read_text() and f"]({svg})" in (tmp_path / "report.md").read_text().replace(
        "<", ""
    ).replace(">", "")


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (("--faults", "Not-A-Fault"), 2, "--faults"),
        (("--config", "no-such-file.toml"), 2, "no-such-file.toml"),
        (("--faults", "no_such_fault"), 2, "no_such_fault"),
        (("--seed", "abc"), 2, "--seed"),
        (("--target", "http://127.0.0.1:9"), 3, "127.0.0.1:9"),
    ],
)
def test_usage_errors_and_unreachable_targets(
    tmp_path: Path, postgres_server: str, args: tuple[str, ...], code: int, named: str
) -> None:
    got, _, output = _run(tmp_path, postgres_server, *args)
    assert got == code, output[-2000:]
    assert named in output
    assert "Traceback" not in output
