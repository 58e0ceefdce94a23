"""A finding survives its JSON form: what a parallel worker sends is what the controller decides on."""

from __future__ import annotations

import json

import pytest

from harness.checks.findings import Finding, FindingKind
from harness.engine.exchange import Exchange

EXCHANGE = Exchange(
    method="GET",
    url="/api/contacts/7",
    status=200,
    text='{"name":   "canary-org2"}',
    curl='curl -X GET -H "Authorization: Bearer $IAM_TOKEN_ORG1_ADMIN" http://127.0.0.1:1/api/contacts/7',
    retried="ReadError: reset",
)


@pytest.mark.parametrize(
    "finding",
    [
        Finding(FindingKind.CROSS_ORG_READ, ("M4", "I3"), "GET /api/contacts/7", "org1 admin", "2xx", EXCHANGE, "id"),
        Finding(FindingKind.NOT_EXERCISED, ("M4",), "DELETE /api/x", "*", "no principal could call it"),
        Finding(
            FindingKind.BUDGET_EXHAUSTED,
            ("O1",),
            "GET /api/x",
            "org2 viewer",
            "no answer",
            Exchange("GET", "/api/x", 0, "", "", failure="ConnectError: refused"),
        ),
    ],
    ids=["with-exchange", "without-exchange", "unanswered"],
)
def test_from_json_rebuilds_what_to_json_wrote(finding: Finding) -> None:
    document = json.loads(json.dumps(finding.to_json()))
    again = Finding.from_json(document)
    assert again.to_json() == finding.to_json()
    assert again.kind is finding.kind and again.severity is finding.severity
    assert again.repro == finding.repro and again.line() == finding.line()


def test_from_json_keeps_the_excerpt_not_the_whole_body() -> None:
    long = Exchange("GET", "/x", 500, "x" * 1000, "curl http://h/x")
    again = Finding.from_json(Finding(FindingKind.SERVER_ERROR, ("O1",), "GET /x", "a", "5xx", long).to_json())
    assert again.exchange is not None and len(again.exchange.text) == 300 and again.exchange.status == 500


def test_from_json_refuses_an_unknown_kind() -> None:
    document = Finding(FindingKind.NOT_REFUSED, ("M3",), "GET /x", "a", "200").to_json() | {"kind": "Nonsense"}
    with pytest.raises(ValueError, match="Nonsense"):
        Finding.from_json(document)
