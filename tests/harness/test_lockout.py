"""C3 proven in-process on a small wiki unlike the reference app: spaces keyed by Clerk organisation, people by
short string handles (`p-17`), its own role names (`owner`, `editor`, `reader`), a who-am-I of its own
(`GET /v1/self` -> `{"handle", "space", "grants"}`), people removed by `DELETE /v1/people/{id}` and regranted by
`PATCH /v1/people/{id}` with `{"grants": [...]}`; and the ways such an app lets a space lose its last owner."""

from __future__ import annotations

import itertools
import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import pytest

from harness.checks.findings import FindingKind
from harness.checks.judged import Judged
from harness.checks.lockout import last_manager_stays
from harness.clerk.issuer import Issuer
from harness.config.model import load_config
from harness.errors import ConfigError
from tests.harness.clerk_fake import FakeClerkTarget

OWNER, EDITOR, READER = "owner", "editor", "reader"
_PERSON = "/v1/people/"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(
        issuer_url="https://iam-harness-12.clerk.accounts.dev",
        authorized_party="http://wiki.test",
        rng=random.Random(3),
    )


@dataclass
class Wiki:
    """Spaces by Clerk organisation id; in each, handle -> grants; handles by Clerk user id."""

    issuer: Issuer
    flaws: frozenset[str] = frozenset()
    spaces: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(10))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.issuer.keys[-1][1].public_key(), algorithms=["RS256"])
        except jwt.PyJWTError:
            return httpx.Response(401, json={"message": "sign in"})
        space_id = str((claims.get("o") or {}).get("id") or "")
        with self.lock:
            me = self.handles.setdefault(str(claims["sub"]), f"p-{next(self.numbers)}")
            if space_id and space_id not in self.spaces:
                self.spaces[space_id] = {me: [OWNER]}  # a new space's first person owns it
            people = self.spaces.get(space_id)
            if people is None or me not in people:
                return httpx.Response(403, json={"message": "not in this space"})
            return self._route(request, people, me)

    def _route(self, request: httpx.Request, people: dict[str, list[str]], me: str) -> httpx.Response:
        path, method = request.url.path, request.method
        if method == "GET" and path == "/v1/self":
            return httpx.Response(200, json={"handle": me, "space": "s", "grants": list(people[me])})
        if OWNER not in people[me]:
            return httpx.Response(403, json={"message": "owners only"})
        if method == "POST" and path == "/v1/people":
            body = json.loads(request.content)
            handle = self.handles.setdefault(str(body["clerk"]), f"p-{next(self.numbers)}")
            people[handle] = list(body["grants"])
            return httpx.Response(201, json={"handle": handle})
        if not path.startswith(_PERSON) or path[len(_PERSON) :] not in people:
            return httpx.Response(404, json={"message": "nobody"})
        who = path[len(_PERSON) :]
        others = [h for h, grants in people.items() if h != who and OWNER in grants]
        if method == "DELETE":
            if "remove_noop" in self.flaws:
                return httpx.Response(204)
            if "crashes" in self.flaws and who == me:  # it checks nothing, and falls over on the way
                return httpx.Response(500, json={"message": "oops"})
            if not others and "owner_leaves" not in self.flaws:
                return httpx.Response(409, json={"message": "a space keeps an owner"})
            del people[who]
            return httpx.Response(204)
        if method == "PATCH":
            grants = list(json.loads(request.content)["grants"])
            if OWNER not in grants and not others and "owner_demotes" not in self.flaws:
                return httpx.Response(409, json={"message": "a space keeps an owner"})
            people[who] = grants
            return httpx.Response(200, json={"handle": who, "grants": grants})
        return httpx.Response(405, json={"message": "no"})


CONFIG = """
[target]
schema = "/v1/openapi.json"
health = "/v1/ping"

[identity]
me = "/v1/self"
user_id = "handle"
org_id = "space"
org_name = "space"
roles = "grants"
personal_org_name = "Scratch"

[roles]
admin = "owner"
other = ["editor"]
read_only = ["reader"]

[members]
add = "POST /v1/people"
body = { clerk = "{sub}", grants = "{roles}" }
remove = "DELETE /v1/people/{id}"
set_roles = "PATCH /v1/people/{id}"
roles_body = { grants = "{roles}" }

[[canaries]]
key = "pages"
param = "page_id"
create = "POST /v1/pages"
body = { title = "{marker}" }
id = "id"
read = "GET /v1/pages/{id}"
"""


def _judge(tmp_path: Path, issuer: Issuer, flaws: frozenset[str] = frozenset(), config: str = CONFIG) -> Judged:
    path = tmp_path / "wiki.toml"
    path.write_text(config, encoding="utf-8")
    target = FakeClerkTarget(issuer, load_config(path), base_url="http://wiki.test")
    wiki = Wiki(issuer, flaws)
    return last_manager_stays(target, issuer, random.Random(11), {}, httpx.MockTransport(wiki.handle))


def test_a_space_that_keeps_its_owner_is_clean_and_says_each_step(tmp_path: Path, issuer: Issuer) -> None:
    judged = _judge(tmp_path, issuer)
    assert judged.ok, judged.findings
    assert judged.checks == ("C3",)
    control = next(line for line in judged.evidence if line.startswith("control:"))
    assert "sets its roles to ['editor'] (200, then ['editor']), removes it (204, then who-am-I 403)" in control
    assert "the organisation's only owner removes itself: 409; then who-am-I 200, roles ['owner']" in judged.evidence
    assert "the organisation's only owner takes its own role away: 409; then who-am-I 200, roles ['owner']" in (
        judged.evidence
    )


@pytest.mark.parametrize(
    ("flaw", "kinds", "said"),
    [
        ("owner_leaves", [FindingKind.LOCKOUT], "only owner removes itself (204): who-am-I then 403, roles None"),
        (
            "owner_demotes",
            [FindingKind.LOCKOUT],
            "only owner takes its own role away (200): who-am-I then 200, roles []",
        ),
        # a removal that answers 204 and does nothing would make every refusal look like a pass: never one
        ("remove_noop", [FindingKind.NOT_EXERCISED], "removing a member did not take: DELETE /v1/people/p-12 -> 204"),
        ("crashes", [FindingKind.SERVER_ERROR], "the only admin removes itself: DELETE /v1/people/p-10 -> 500"),
    ],
)
def test_each_way_of_losing_the_last_owner_is_found(
    tmp_path: Path, issuer: Issuer, flaw: str, kinds: list[FindingKind], said: str
) -> None:
    judged = _judge(tmp_path, issuer, frozenset({flaw}))
    assert [f.kind for f in judged.findings] == kinds, judged.findings
    assert said in judged.findings[0].detail
    assert all(f.checks == ("C3",) for f in judged.findings)


def test_without_remove_and_set_roles_it_decides_nothing(tmp_path: Path, issuer: Issuer) -> None:
    config = CONFIG.replace('remove = "DELETE /v1/people/{id}"\n', "")
    judged = _judge(tmp_path, issuer, config=config)
    assert judged.ok and judged.inapplicable is not None and "remove and set_roles" in judged.inapplicable


@pytest.mark.parametrize(
    ("replaced", "by", "said"),
    [
        (
            'remove = "DELETE /v1/people/{id}"',
            'remove = "DELETE /v1/people/me"',
            "[members] remove: must name the member",
        ),
        ('roles_body = { grants = "{roles}" }\n', "", "[members] roles_body: required with set_roles"),
        ('roles_body = { grants = "{roles}" }', 'roles_body = { grants = "all" }', "[members] roles_body: must carry"),
    ],
)
def test_a_members_section_that_cannot_name_the_member_or_its_roles_is_refused(
    tmp_path: Path, replaced: str, by: str, said: str
) -> None:
    path = tmp_path / "wiki.toml"
    path.write_text(CONFIG.replace(replaced, by), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert said in str(raised.value)
