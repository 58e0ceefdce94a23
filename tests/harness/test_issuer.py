"""The token minter: Clerk v2 session tokens, verifiable with the issuer's key and nothing else."""

from __future__ import annotations

import base64
import random
import re

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id, cookie_suffix, publishable_key

ISS = "https://iam-harness-12.clerk.accounts.dev"
AZP = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(issuer_url=ISS, authorized_party=AZP, rng=random.Random(7))


def test_header_is_clerks(issuer: Issuer) -> None:
    token = issuer.mint("user_2abc")
    header = jwt.get_unverified_header(token.jwt)
    assert header == {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}
    assert re.fullmatch(r"ins_[A-Za-z0-9]{27}", issuer.kid)


def test_v2_claims_with_active_org(issuer: Issuer) -> None:
    org = ActiveOrg(id="org_2xyz", slug="acme", role="admin", permissions=("org:sys_memberships:read",))
    token = issuer.mint("user_2abc", org=org, now=1_700_000_000)
    claims = jwt.decode(token.jwt, issuer.public_pem, algorithms=["RS256"], issuer=ISS, options={"verify_exp": False})
    assert claims["v"] == 2 and claims["sts"] == "active" and claims["sub"] == "user_2abc"
    assert claims["azp"] == AZP and claims["iss"] == ISS
    assert (
        claims["iat"] == 1_700_000_000 and claims["exp"] == claims["iat"] + 60 and claims["nbf"] == claims["iat"] - 10
    )
    assert claims["fva"] == [0, -1] and claims["sid"].startswith("sess_")
    assert claims["o"] == {"id": "org_2xyz", "slg": "acme", "rol": "admin", "per": "read", "fpm": "1"}
    assert claims["fea"] == "o:sys_memberships"
    assert "org_id" not in claims  # v1 claims are not mixed into a v2 token


def test_v2_permissions_in_clerks_encoding(issuer: Issuer) -> None:
    """Names in `per`, features in `fea`, one bitmap per feature in `fpm` (bit i: the feature grants name i)."""
    keys = ("org:contacts:read", "org:contacts:manage", "org:deals:read", "org:billing:manage")
    claims = issuer.mint("user_2abc", org=ActiveOrg("org_2xyz", "acme", "admin", keys)).claims
    assert claims["o"]["per"] == "read,manage"
    assert claims["fea"] == "o:contacts,o:deals,o:billing"
    assert claims["o"]["fpm"] == "3,1,2"
    assert "per" not in issuer.mint("user_2abc", org=ActiveOrg("org_2xyz", "acme")).claims["o"]


@pytest.mark.parametrize("key", ["read", "contacts:read", "user:contacts:read", "org:contacts", "org:a:b:c"])
def test_a_permission_not_of_clerks_shape_is_refused(issuer: Issuer, key: str) -> None:
    with pytest.raises(ValueError, match="org:<feature>:<name>"):
        issuer.mint("user_2abc", org=ActiveOrg("org_2xyz", "acme", "admin", (key,)))


def test_a_pending_session_has_no_active_organisation(issuer: Issuer) -> None:
    claims = issuer.mint("user_2abc", org=ActiveOrg("org_2xyz", "acme"), status="pending").claims
    assert claims["sts"] == "pending" and "o" not in claims and "fea" not in claims
    with pytest.raises(ValueError, match="active or pending"):
        issuer.mint("user_2abc", status="ended")


def test_no_org_claim_without_active_org(issuer: Issuer) -> None:
    assert "o" not in issuer.mint("user_2abc").claims


def test_other_key_does_not_verify(issuer: Issuer) -> None:
    other = Issuer(issuer_url=ISS, authorized_party=AZP, rng=random.Random(8))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(issuer.mint("user_2abc").jwt, other.public_pem, algorithms=["RS256"])


def test_jwks_matches_signing_key(issuer: Issuer) -> None:
    (key,) = issuer.jwks["keys"]
    assert key["kid"] == issuer.kid and key["alg"] == "RS256" and key["kty"] == "RSA"
    public = jwt.PyJWK(key).key
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert base64.urlsafe_b64decode(key["e"] + "==") == (65537).to_bytes(3, "big")
    assert jwt.decode(issuer.mint("user_2abc").jwt, public, algorithms=["RS256"])["sub"] == "user_2abc"


def test_delivery_as_header_and_cookies(issuer: Issuer) -> None:
    token = issuer.mint("user_2abc")
    assert token.headers == {"Authorization": f"Bearer {token.jwt}"}
    assert token.cookies["__session"] == token.jwt
    assert int(token.cookies["__client_uat"]) <= token.claims["iat"]


def test_the_cookie_jar_is_clerks_whole_jar_for_the_key_type() -> None:
    """A development key's jar holds the dev-browser cookie too; every cookie also under its suffixed name."""
    dev = Issuer(issuer_url=ISS, authorized_party=AZP, rng=random.Random(5)).mint("user_2abc")
    suffix = cookie_suffix(publishable_key(ISS))
    names = {"__session", "__client_uat", "__clerk_db_jwt"}
    assert set(dev.cookies) == names | {f"{name}_{suffix}" for name in names}
    assert re.fullmatch(r"dvb_2[A-Za-z0-9]{26}", dev.cookies["__clerk_db_jwt"])
    assert dev.cookies[f"__clerk_db_jwt_{suffix}"] == dev.cookies["__clerk_db_jwt"]
    live_iss = "https://clerk.iam-harness.example"
    live = Issuer(issuer_url=live_iss, authorized_party=AZP, rng=random.Random(5)).mint("user_2abc")
    live_suffix = cookie_suffix(publishable_key(live_iss))
    assert set(live.cookies) == {"__session", "__client_uat", f"__session_{live_suffix}", f"__client_uat_{live_suffix}"}


def test_clerk_ids_are_shaped_and_seeded() -> None:
    a, b = clerk_id("user", random.Random(1)), clerk_id("user", random.Random(1))
    assert a == b and re.fullmatch(r"user_2[A-Za-z0-9]{26}", a)
    assert clerk_id("user", random.Random(2)) != a


def test_v1_claims(issuer: Issuer) -> None:
    org = ActiveOrg(id="org_2xyz", slug="acme", role="admin", permissions=("org:sys_memberships:read",))
    claims = issuer.mint("user_2abc", org=org, version=1).claims
    assert "v" not in claims and "sts" not in claims and "o" not in claims
    assert claims["org_id"] == "org_2xyz" and claims["org_role"] == "org:admin" and claims["org_slug"] == "acme"
    assert claims["org_permissions"] == ["org:sys_memberships:read"]


def test_session_category_header(issuer: Issuer) -> None:
    assert jwt.get_unverified_header(issuer.mint("user_2abc", category=True).jwt)["cat"] == "cl_B7d4PD111AAA"


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("happy-hippo-12.clerk.accounts.dev", "pk_test_"),
        ("iam-harness-12.clerk.accounts.dev", "pk_test_"),
        ("iam-harness.clerk.accounts.dev", "pk_live_"),  # not of the generated shape: Clerk's builder says live
        ("happy-hippo-123.clerk.accounts.dev", "pk_live_"),
        ("clerk.example.com", "pk_live_"),
    ],
)
def test_publishable_key_type_as_clerks_key_builder_gives_it(host: str, kind: str) -> None:
    assert publishable_key(f"https://{host}").startswith(kind)


def test_publishable_key_and_cookie_suffix() -> None:
    assert publishable_key("https://iam-harness-12.clerk.accounts.dev").startswith("pk_test_")
    live = publishable_key("https://clerk.example.com")
    assert live.startswith("pk_live_")
    assert base64.b64decode(live.removeprefix("pk_live_") + "==") == b"clerk.example.com$"
    suffix = cookie_suffix(live)
    assert len(suffix) == 8


def test_rotation_keeps_old_key_in_jwks_until_retired(issuer: Issuer) -> None:
    rotating = Issuer(issuer_url=ISS, authorized_party=AZP, rng=random.Random(9))
    old = rotating.kid
    old_token = rotating.mint("user_2abc").jwt
    new = rotating.rotate()
    assert jwt.get_unverified_header(rotating.mint("user_2abc").jwt)["kid"] == new
    assert {k["kid"] for k in rotating.jwks["keys"]} == {old, new}
    keys = {k["kid"]: jwt.PyJWK(k).key for k in rotating.jwks["keys"]}
    assert jwt.decode(old_token, keys[old], algorithms=["RS256"])["sub"] == "user_2abc"
    rotating.retire(old)
    assert [k["kid"] for k in rotating.jwks["keys"]] == [new]
    with pytest.raises(ValueError, match="rotate first"):
        rotating.retire(new)
