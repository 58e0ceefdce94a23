"""A Clerk-shaped issuer: RSA-2048 keys, their JWKS, and session tokens minted as Clerk mints them.

Claims follow Clerk's session-token docs. v2: `azp, exp (iat + 60 s), fva, iat, iss, nbf (iat - 10), sid,
sub, v: 2, sts` and, when an organisation is active, `o: {id, slg, rol, per, fpm}` with `rol` unprefixed and
permissions in Clerk's encoding (names in `per`, features in `fea`, bitmaps in `fpm`); a pending session has no
`o`; optional `pla` (billing) and `act` (impersonation). v1: no `v` or `sts`, and `org_id`, `org_role`
(`org:admin`), `org_slug`, `org_permissions` instead of `o`. Header `{alg: RS256, kid, typ: JWT}`, with
`cat: cl_B7d4PD111AAA` (the session category) where asked.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import string
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "CLIENT_UAT_COOKIE",
    "DEV_BROWSER_COOKIE",
    "SESSION_CATEGORY",
    "SESSION_COOKIE",
    "ActiveOrg",
    "Issuer",
    "SessionToken",
    "clerk_id",
    "cookie_suffix",
    "is_development",
    "load_private_pem",
    "new_key",
    "private_pem",
    "publishable_key",
]

_ALPHABET = string.ascii_letters + string.digits
DEFAULT_TTL = 60
NBF_SKEW = 10
SESSION_CATEGORY = "cl_B7d4PD111AAA"
KEY_SIZE = 2048  # Clerk's JS SDK loads a PEM jwtKey by stripping a fixed 2048-bit header: no other size works
# Clerk's key builder (`buildPublishableKey` in @clerk/shared) gives `pk_test_` to hosts of this shape only.
DEVELOPMENT_HOST = re.compile(r"^(([a-z]+)-){2}([0-9]{1,2})\.clerk\.accounts([a-z.]*)(dev|com)$", re.IGNORECASE)
# Clerk's browser cookies, by the names its SDKs read them.
SESSION_COOKIE = "__session"
CLIENT_UAT_COOKIE = "__client_uat"
DEV_BROWSER_COOKIE = "__clerk_db_jwt"


def clerk_id(prefix: str, rng: random.Random) -> str:
    """An id shaped like Clerk's: `<prefix>_2` followed by 26 base62 characters (27 after the underscore)."""
    return f"{prefix}_2" + "".join(rng.choice(_ALPHABET) for _ in range(26))


def new_key() -> rsa.RSAPrivateKey:
    """A signing key as Clerk's: RSA-2048, e = 65537."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def publishable_key(issuer_url: str) -> str:
    """The publishable key naming the issuer's frontend API, as Clerk's key builder makes it: `pk_test_` for a
    development host of Clerk's generated shape (`happy-hippo-12.clerk.accounts.dev`), `pk_live_` for any other,
    then base64 of `<host>$` without padding."""
    host = urlsplit(issuer_url).netloc
    kind = "pk_test_" if DEVELOPMENT_HOST.match(host) else "pk_live_"
    return kind + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")


def is_development(publishable: str) -> bool:
    """Whether a publishable key is a development instance's (its browsers need the dev-browser cookie)."""
    return publishable.startswith("pk_test_")


def cookie_suffix(publishable: str) -> str:
    """The suffix of Clerk's per-instance cookie names: 8 characters of base64url(SHA-1(publishable key))."""
    digest = hashlib.sha1(publishable.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode()[:8]


@dataclass(frozen=True)
class ActiveOrg:
    """The organisation a session has active, as Clerk's `o` claim states it."""

    id: str
    slug: str
    role: str = "admin"
    permissions: tuple[str, ...] = ()  # whole keys, `org:<feature>:<name>`, as an app checks them

    def encoded(self) -> tuple[str, str, str]:
        """The permissions as a v2 token carries them: `per` (the names), `fpm` (one bitmap per feature, bit i set
        when the feature grants name i) and the features for `fea` (`o:<feature>`, in the bitmaps' order).
        Clerk's SDKs rebuild `org:<feature>:<name>` from the three; a key not of that shape cannot be encoded."""
        names: list[str] = []
        grants: dict[str, set[str]] = {}
        for key in self.permissions:
            scope, _, rest = key.partition(":")
            feature, _, name = rest.partition(":")
            if scope != "org" or not feature or not name or ":" in name or "," in key:
                raise ValueError(f"a Clerk organisation permission is org:<feature>:<name>, not {key!r}")
            if name not in names:
                names.append(name)
            grants.setdefault(feature, set()).add(name)
        bitmaps = [sum(1 << i for i, name in enumerate(names) if name in granted) for granted in grants.values()]
        return ",".join(names), ",".join(map(str, bitmaps)), ",".join(f"o:{f}" for f in grants)

    def claim(self) -> dict[str, str]:
        """The v2 `o` claim: role without the `org:` prefix, permission names in `per` and their per-feature
        bitmaps in `fpm` (the features go in the token's `fea`; see `encoded`)."""
        found = {"id": self.id, "slg": self.slug, "rol": self.role}
        if self.permissions:
            found["per"], found["fpm"], _ = self.encoded()
        return found

    def v1_claims(self) -> dict[str, Any]:
        """The v1 claims: `org_role` with the `org:` prefix, permissions as a list."""
        role = self.role if self.role.startswith("org:") else f"org:{self.role}"
        return {"org_id": self.id, "org_role": role, "org_slug": self.slug, "org_permissions": list(self.permissions)}


@dataclass(frozen=True)
class SessionToken:
    """A minted session token and the ways a browser or API client presents it."""

    jwt: str
    claims: dict[str, Any] = field(hash=False)
    publishable_key: str | None = None  # the instance's, where known: it names the cookie suffix and the key type
    dev_browser: str | None = None  # the development browser's token (`__clerk_db_jwt`), development keys only

    @property
    def suffix(self) -> str | None:
        """Clerk's per-instance cookie suffix, where the publishable key is known."""
        return cookie_suffix(self.publishable_key) if self.publishable_key else None

    @property
    def headers(self) -> dict[str, str]:
        """As an API client sends it."""
        return {"Authorization": f"Bearer {self.jwt}"}

    @property
    def cookies(self) -> dict[str, str]:
        """Clerk's whole cookie jar of a signed-in browser: `__session`, `__client_uat` (not later than the token's
        `iat`) and, for a development key, `__clerk_db_jwt`, each also under its suffixed name as Clerk sets them.
        Without the dev-browser cookie `@clerk/backend` sends every page load of a development instance to the
        handshake (`dev-browser-missing`)."""
        found = {SESSION_COOKIE: self.jwt, CLIENT_UAT_COOKIE: str(self.claims["iat"])}
        if self.dev_browser is not None:
            found[DEV_BROWSER_COOKIE] = self.dev_browser
        if self.suffix:
            found |= {f"{name}_{self.suffix}": value for name, value in list(found.items())}
        return found


class Issuer:
    """Holds signing keys (the newest signs; every one not retired is in the JWKS) and mints session tokens."""

    def __init__(
        self,
        *,
        issuer_url: str,
        authorized_party: str,
        rng: random.Random,
        private_pem: str | None = None,
        kid: str | None = None,
        keys: list[tuple[str, rsa.RSAPrivateKey]] | None = None,
    ) -> None:
        self.issuer_url = issuer_url
        self.authorized_party = authorized_party
        self._rng = rng
        # A development browser is one per client; the harness's browsers share one, as one Clerk client would.
        self.dev_browser = clerk_id("dvb", rng) if is_development(publishable_key(issuer_url)) else None
        if keys:
            self._keys = list(keys)
        elif private_pem is not None:
            self._keys = [(kid or self._new_kid(), load_private_pem(private_pem))]
        else:
            self._keys = [(kid or self._new_kid(), new_key())]

    def _new_kid(self) -> str:
        return "ins_" + "".join(self._rng.choice(_ALPHABET) for _ in range(27))

    @property
    def kid(self) -> str:
        """The id of the key that signs new tokens."""
        return self._keys[-1][0]

    @property
    def keys(self) -> list[tuple[str, rsa.RSAPrivateKey]]:
        """Every key not retired, oldest first; the last one signs."""
        return list(self._keys)

    def rotate(self) -> str:
        """Start signing with a new key; the old ones stay in the JWKS until retired. Returns the new kid."""
        self._keys.append((self._new_kid(), new_key()))
        return self.kid

    def retire(self, kid: str) -> None:
        """Take a key out of the JWKS (never the one that signs)."""
        if kid == self.kid:
            raise ValueError("the signing key cannot be retired; rotate first")
        self._keys = [(k, key) for k, key in self._keys if k != kid]

    @property
    def publishable_key(self) -> str:
        """The publishable key of this issuer's frontend API."""
        return publishable_key(self.issuer_url)

    @property
    def private_pem(self) -> str:
        """The signing key, so that parallel workers of one run sign with the same key the target trusts."""
        return private_pem(self._keys[-1][1])

    @property
    def public_pem(self) -> str:
        """The PEM an app verifying networkless trusts (Clerk's `CLERK_JWT_KEY`)."""
        return (
            self._keys[-1][1]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def jwks(self) -> dict[str, Any]:
        """The JWKS document an app fetching keys by URL reads."""
        return {"keys": [_jwk(kid, key) for kid, key in self._keys]}

    def mint(
        self,
        sub: str,
        *,
        org: ActiveOrg | None = None,
        ttl: int = DEFAULT_TTL,
        now: int | None = None,
        status: str = "active",
        version: int = 2,
        category: bool = False,
        sid: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SessionToken:
        """Mint a session token for `sub` (v2 unless `version=1`), with `org` active when given, in session `sid`
        (a new one when None; one session keeps its id when the user switches the active organisation); `extra`
        adds claims such as `pla`, `fea` or `act`."""
        iat = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "azp": self.authorized_party,
            "exp": iat + ttl,
            "fva": [0, -1],
            "iat": iat,
            "iss": self.issuer_url,
            "nbf": iat - NBF_SKEW,
            "sid": sid or clerk_id("sess", self._rng),
            "sub": sub,
        }
        if status not in {"active", "pending"}:
            raise ValueError(f"a session's status is active or pending, not {status!r}")
        if status == "pending":
            org = None  # a pending session has not chosen an organisation yet: it has none active
        if version == 2:
            claims |= {"sts": status, "v": 2}
            if org is not None:
                claims["o"] = org.claim()
                if org.permissions:
                    claims["fea"] = org.encoded()[2]
        elif version == 1:
            if org is not None:
                claims |= org.v1_claims()
        else:
            raise ValueError(f"Clerk session tokens are version 1 or 2, not {version}")
        claims |= extra or {}
        header = {"kid": self.kid, "typ": "JWT"} | ({"cat": SESSION_CATEGORY} if category else {})
        token = jwt.encode(claims, self._keys[-1][1], algorithm="RS256", headers=header)
        return SessionToken(
            jwt=token, claims=claims, publishable_key=self.publishable_key, dev_browser=self.dev_browser
        )


def load_private_pem(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM; anything else is refused."""
    loaded = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("the issuer's key must be an RSA private key")
    return loaded


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": _b64uint(numbers.n), "e": _b64uint(numbers.e)}


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
