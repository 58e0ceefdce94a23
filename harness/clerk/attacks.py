"""The attack catalogue: every forged, stale and malformed token a target must refuse with 401.

Each entry is named, says what it forges and where the attack comes from (RFC 8725, OWASP ASVS 5.0
chapter V9, a CVE), and builds its token from a valid session the harness minted. Entries are plain
functions registered by a decorator, as checks are.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness.clerk.explain import decode_segment
from harness.clerk.issuer import ActiveOrg, Issuer, new_key

__all__ = [
    "CATALOGUE",
    "WEAK_SECRETS",
    "Attack",
    "Forge",
    "Probe",
    "common_secrets",
    "crack",
    "login_forgeries",
    "parse_jwt",
]

OVERSIZED = 64 * 1024


@dataclass(frozen=True)
class Forge:
    """What an attack builds from: the issuer the target trusts, a victim's identity and the time."""

    issuer: Issuer
    sub: str
    org: ActiveOrg | None
    now: int
    listener: str  # a loopback URL that counts requests: `jku`/`x5u` must never be fetched

    def valid_claims(self) -> dict[str, Any]:
        """The claims of a valid session of the victim."""
        return dict(self.issuer.mint(self.sub, org=self.org, now=self.now).claims)

    def signed(self, claims: dict[str, Any], **header: Any) -> str:
        """Claims signed properly with the trusted key (header fields added or replaced)."""
        return jwt.encode(
            claims, self.issuer.keys[-1][1], algorithm="RS256", headers={"kid": self.issuer.kid, "typ": "JWT", **header}
        )

    def valid(self) -> str:
        """A valid token of the victim."""
        return self.signed(self.valid_claims())


@dataclass(frozen=True)
class Probe:
    """A forged token, as sent."""

    attack: str
    token: str


@dataclass(frozen=True)
class Attack:
    """One catalogue entry."""

    name: str
    source: str
    doc: str
    build: Callable[[Forge], str]
    statuses: frozenset[int] = frozenset({401})  # what counts as refused


CATALOGUE: list[Attack] = []


def attack(
    source: str, statuses: frozenset[int] = frozenset({401})
) -> Callable[[Callable[[Forge], str]], Callable[[Forge], str]]:
    """Register a catalogue entry; its name is the function's, its doc the docstring."""

    def register(build: Callable[[Forge], str]) -> Callable[[Forge], str]:
        CATALOGUE.append(Attack(build.__name__, source, (build.__doc__ or "").strip(), build, statuses))
        return build

    return register


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _segment(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


def _payload_swapped(forge: Forge, payload: str) -> str:
    """A valid token of the victim with its payload segment replaced, the original signature kept."""
    head, _, signature = forge.valid().split(".")
    return f"{head}.{payload}.{signature}"


def _hmac(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{_b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


# -- algorithm and signature -----------------------------------------------------------------------------------


def _alg_none(casing: str) -> Callable[[Forge], str]:
    def build(forge: Forge) -> str:
        return _unsigned({"alg": casing, "typ": "JWT"}, forge.valid_claims())

    build.__name__ = f"alg_{casing}"
    build.__doc__ = f"alg {casing!r}, no signature: the unsigned token of RFC 7519 6.1 (RFC 8725 2.1, ASVS V9.1.2)"
    return build


for _casing in ("none", "None", "NONE", "nOnE"):
    attack("RFC 8725 2.1; CVE-2015-9235")(_alg_none(_casing))


@attack("RFC 8725 3.1")
def stripped_signature(forge: Forge) -> str:
    """A valid header and payload with the signature removed."""
    head, body, _ = forge.valid().split(".")
    return f"{head}.{body}."


@attack("RFC 8725 3.1")
def null_signature(forge: Forge) -> str:
    """A valid header and payload with a signature of zero bytes' worth (AAAA)."""
    head, body, _ = forge.valid().split(".")
    return f"{head}.{body}.AAAA"


@attack("ASVS V9.1.1")
def tampered_sub(forge: Forge) -> str:
    """The payload's `sub` swapped for another user's, the original signature kept."""
    return _payload_swapped(forge, _segment({**forge.valid_claims(), "sub": forge.sub[:-4] + "XXXX"}))


@attack("ASVS V9.1.1")
def tampered_org(forge: Forge) -> str:
    """The payload's active organisation swapped, the original signature kept."""
    claims = forge.valid_claims()
    claims["o"] = {**claims.get("o", {}), "id": "org_2" + "Z" * 26, "rol": "admin"}
    return _payload_swapped(forge, _segment(claims))


@attack("RFC 8725 2.1, 3.1; CVE-2016-10555")
def hs256_with_public_key(forge: Forge) -> str:
    """RS256 -> HS256 confusion: an HMAC keyed with the trusted RSA public key's PEM."""
    return _hmac(
        {"alg": "HS256", "typ": "JWT", "kid": forge.issuer.kid}, forge.valid_claims(), forge.issuer.public_pem.encode()
    )


@attack("RFC 8725 3.5")
def hs256_blank_secret(forge: Forge) -> str:
    """An HMAC with an empty secret."""
    return _hmac({"alg": "HS256", "typ": "JWT"}, forge.valid_claims(), b"")


def _other_alg(alg: str) -> Callable[[Forge], str]:
    def build(forge: Forge) -> str:
        if alg.startswith("ES"):
            return jwt.encode(
                forge.valid_claims(),
                ec.generate_private_key(ec.SECP256R1()),
                algorithm=alg,
                headers={"kid": forge.issuer.kid},
            )
        return jwt.encode(
            forge.valid_claims(), forge.issuer.keys[-1][1], algorithm=alg, headers={"kid": forge.issuer.kid}
        )

    build.__name__ = f"alg_{alg.lower()}"
    build.__doc__ = f"a real but not allowed algorithm, {alg}: only RS256 is (RFC 8725 3.1)"
    return build


for _alg in ("RS384", "PS256", "ES256"):
    attack("RFC 8725 3.1")(_other_alg(_alg))


@attack("CVE-2022-21449")
def es256_psychic_signature(forge: Forge) -> str:
    """ES256 with r = s = 0: the 'psychic signature' some verifiers accepted."""
    return _unsigned({"alg": "ES256", "typ": "JWT", "kid": forge.issuer.kid}, forge.valid_claims(), _b64(bytes(64)))


@functools.cache
def attacker_key() -> rsa.RSAPrivateKey:
    """The key every forgery that needs one signs with: made once per process (an RSA-2048 key costs a fifth of a
    second), and trusted by no target, since no issuer ever publishes it."""
    return new_key()


@attack("CVE-2018-0114; RFC 8725 3.10")
def embedded_jwk(forge: Forge) -> str:
    """Signed with the attacker's key, which the header's `jwk` carries."""
    attacker = attacker_key()
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    return jwt.encode(forge.valid_claims(), attacker, algorithm="RS256", headers={"jwk": public, "kid": "attacker"})


@attack("RFC 8725 3.10")
def jku_loopback(forge: Forge) -> str:
    """Signed with the attacker's key, its JWKS named by `jku` on a loopback listener (never to be fetched)."""
    return jwt.encode(
        forge.valid_claims(),
        attacker_key(),
        algorithm="RS256",
        headers={"jku": f"{forge.listener}/jwks.json", "kid": "attacker"},
    )


@attack("RFC 8725 3.10")
def x5u_loopback(forge: Forge) -> str:
    """Signed with the attacker's key, its certificate named by `x5u` on a loopback listener (never fetched)."""
    return jwt.encode(
        forge.valid_claims(),
        attacker_key(),
        algorithm="RS256",
        headers={"x5u": f"{forge.listener}/cert.pem", "kid": "attacker"},
    )


@attack("RFC 8725 3.10")
def foreign_key(forge: Forge) -> str:
    """A well-formed token signed by a key the target does not trust, under the trusted key's kid."""
    return jwt.encode(
        forge.valid_claims(), attacker_key(), algorithm="RS256", headers={"kid": forge.issuer.kid, "typ": "JWT"}
    )


@attack("RFC 8725 3.10")
def unknown_kid(forge: Forge) -> str:
    """Signed by an untrusted key under a kid nobody issued."""
    return jwt.encode(forge.valid_claims(), attacker_key(), algorithm="RS256", headers={"kid": "ins_" + "0" * 27})


def _kid_injection(name: str, kid: str) -> Callable[[Forge], str]:
    def build(forge: Forge) -> str:
        return jwt.encode(forge.valid_claims(), attacker_key(), algorithm="RS256", headers={"kid": kid})

    build.__name__ = f"kid_{name}"
    build.__doc__ = f"kid {kid!r}: a key id that reaches a file, a query or a shell where it should not"
    return build


for _name, _kid in (
    ("path_traversal", "../../../../../../dev/null"),
    ("sql", "x' UNION SELECT 'secret' --"),
    ("shell", "$(sleep 5)|sleep 5"),
):
    attack("RFC 8725 3.10; ASVS V9.1.1")(_kid_injection(_name, _kid))


# -- claims ------------------------------------------------------------------------------------------------------


def _claims(name: str, doc: str, change: Callable[[dict[str, Any], int], None], source: str = "RFC 7519 4.1") -> None:
    def build(forge: Forge) -> str:
        claims = forge.valid_claims()
        change(claims, forge.now)
        return forge.signed(claims)

    build.__name__, build.__doc__ = name, doc
    attack(source)(build)


_claims(
    "expired",
    "exp 60 s in the past, beyond the 5 s leeway",
    lambda c, now: c.update(exp=now - 60, iat=now - 120, nbf=now - 130),
)
_claims("nbf_in_future", "nbf 60 s in the future", lambda c, now: c.update(nbf=now + 60))
_claims("iat_in_future", "iat 60 s in the future", lambda c, now: c.update(iat=now + 60))
_claims("missing_exp", "no exp: a token that never expires", lambda c, now: c.pop("exp"))
_claims("missing_sub", "no sub", lambda c, now: c.pop("sub"))
_claims("empty_sub", "sub ''", lambda c, now: c.update(sub=""))
_claims("sub_not_string", "sub as a number", lambda c, now: c.update(sub=12345))
_claims("sub_null", "sub null", lambda c, now: c.update(sub=None))
_claims("exp_as_string", "exp as a string (a NumericDate must be a number)", lambda c, now: c.update(exp=str(now + 60)))
_claims("wrong_iss", "iss of another Clerk instance", lambda c, now: c.update(iss="https://evil.clerk.accounts.dev"))
_claims(
    "missing_azp", "no azp, where the target names its authorized parties", lambda c, now: c.pop("azp"), "Clerk azp"
)
_claims("foreign_azp", "azp of another origin", lambda c, now: c.update(azp="https://evil.example"), "Clerk azp")
_claims(
    "pending_session",
    "sts pending: signed in, but not yet allowed in",
    lambda c, now: c.update(sts="pending"),
    "Clerk sts",
)


@attack("Clerk token category")
def machine_token_category(forge: Forge) -> str:
    """A token of the machine category (cat cl_B7d4PD333AAA) passed off as a session."""
    return forge.signed(forge.valid_claims(), cat="cl_B7d4PD333AAA")


# -- shape -------------------------------------------------------------------------------------------------------


@attack("RFC 7515 7.1")
def two_segments(forge: Forge) -> str:
    """Only header and payload."""
    return ".".join(forge.valid().split(".")[:2])


@attack("RFC 7515 7.1")
def four_segments(forge: Forge) -> str:
    """A fourth segment appended."""
    return forge.valid() + ".AAAA"


@attack("RFC 7515 7.1")
def bad_base64(forge: Forge) -> str:
    """A payload that is not base64url."""
    return _payload_swapped(forge, "!!!not-base64!!!")


@attack("RFC 7515 7.1")
def not_json(forge: Forge) -> str:
    """A payload that decodes, but not to JSON."""
    return _payload_swapped(forge, _b64(b"not json at all"))


@attack("ASVS V9.1; resource exhaustion", statuses=frozenset({400, 401, 413, 431}))
def oversized(forge: Forge) -> str:
    """A 64 KiB token (a server may refuse the header itself: 400, 413 or 431 count as refused too)."""
    claims = {**forge.valid_claims(), "pad": "A" * OVERSIZED}
    return forge.signed(claims)


# -- a target's own login tokens ---------------------------------------------------------------------------------

# Secrets that tutorials, framework defaults and `.env.example` files leave in production.
WEAK_SECRETS = (
    "secret", "secret123", "secretkey", "secret_key", "secret-key", "mysecret", "supersecret", "s3cr3t",
    "changeme", "change-me", "changethis", "password", "passw0rd", "123456", "admin", "test", "dev",
    "development", "default", "key", "jwt", "jwt_secret", "jwt-secret", "jwtsecret", "your-256-bit-secret",
    "your_jwt_secret", "your-secret-key", "my-secret-key", "token", "auth",
)  # fmt: skip
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# What people append to or put before a word to make a "secret" (`appsecret`, `jwt-dragon`, `shadow123`).
_SECRET_AFFIXES = ("secret", "_secret", "-secret", "key", "_key", "123", "!", "2024", "2025", "2026")
_SECRET_PREFIXES = ("jwt_", "jwt-", "secret_", "my")
_AFFIXED_WORDS = 5000  # the most common words get the patterns too; all of them, only as they are


@functools.cache
def common_secrets() -> tuple[str, ...]:
    """Every secret the offline search tries, most likely first: the tutorial defaults above; the most common
    passwords as they are, capitalised and with the usual affixes; then the rest of zxcvbn's frequency lists
    (30,000 common passwords, 30,000 English words, 19,000 from film and television, names and surnames)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = [w for name in ("passwords", "english_wikipedia", "us_tv_and_film", "female_names", "male_names",
                            "surnames") for w in FREQUENCY_LISTS.get(name, [])]  # fmt: skip
    found: dict[str, None] = dict.fromkeys(WEAK_SECRETS)
    for word in words[:_AFFIXED_WORDS]:
        found.update(dict.fromkeys((word, word.capitalize())))
        found.update(dict.fromkeys(f"{word}{affix}" for affix in _SECRET_AFFIXES))
        found.update(dict.fromkeys(f"{prefix}{word}" for prefix in _SECRET_PREFIXES))
    found.update(dict.fromkeys(words))
    return tuple(found)


def parse_jwt(value: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The header and claims of a compact JWS, unverified; None for anything that is not one."""
    parts = value.split(".")
    if len(parts) != 3:  # header, payload, signature
        return None
    try:
        header, claims = decode_segment(parts[0]), decode_segment(parts[1])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict) or "alg" not in header:
        return None
    return header, claims


def crack(token: str) -> str | None:
    """The common secret an HMAC-signed token was signed with, if it is one of `common_secrets()` (offline, no
    request: about 150,000 HMACs, well under a second)."""
    parsed = parse_jwt(token)
    name = str(parsed[0].get("alg")) if parsed else ""
    if name not in _HMAC_HASHES:
        return None
    signing_input, _, encoded = token.rpartition(".")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    message, digest = signing_input.encode(), _HMAC_HASHES[name]
    for secret in ("", *common_secrets()):
        if hmac.digest(secret.encode(), message, digest) == signature:
            return secret
    return None


def login_forgeries(header: dict[str, Any], claims: dict[str, Any]) -> list[Probe]:
    """A target's own token (its header, and the claims it should carry), re-signed as an attacker can:
    unsigned with `none`, HMAC with an empty secret and with each weak secret, and RS256 with a foreign key."""
    alg = str(header.get("alg"))
    hmac_alg = alg if alg in _HMAC_HASHES else "HS256"
    digest = _HMAC_HASHES[hmac_alg]

    def signed_hmac(secret: str) -> str:
        signing_input = f"{_segment({**header, 'alg': hmac_alg})}.{_segment(claims)}"
        return f"{signing_input}.{_b64(hmac.new(secret.encode(), signing_input.encode(), digest).digest())}"

    probes = [
        Probe("alg_none", _unsigned({**header, "alg": "none"}, claims)),
        Probe("empty_secret", signed_hmac("")),
        *(Probe(f"weak_secret:{secret}", signed_hmac(secret)) for secret in WEAK_SECRETS),
    ]
    rsa_header = {k: v for k, v in header.items() if k not in {"alg", "typ"}}
    probes.append(Probe("foreign_key", jwt.encode(claims, attacker_key(), algorithm="RS256", headers=rsa_header)))
    return probes
