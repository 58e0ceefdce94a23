"""A Clerk-shaped issuer: an RSA-2048 key, its JWKS, and session tokens minted as Clerk mints them.

Claims follow Clerk's session-token docs (v2): `azp, exp (iat + 60 s), fva, iat, iss, nbf (iat - 10),
sid, sub, v, sts` and, when an organisation is active, `o: {id, slg, rol, per}` with `rol` unprefixed.
"""

from __future__ import annotations

import base64
import random
import string
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["ActiveOrg", "Issuer", "SessionToken", "clerk_id"]

_ALPHABET = string.ascii_letters + string.digits
DEFAULT_TTL = 60
NBF_SKEW = 10


def clerk_id(prefix: str, rng: random.Random) -> str:
    """An id shaped like Clerk's: `<prefix>_2` followed by 26 base62 characters (27 after the underscore)."""
    return f"{prefix}_2" + "".join(rng.choice(_ALPHABET) for _ in range(26))


@dataclass(frozen=True)
class ActiveOrg:
    """The organisation a session has active, as Clerk's `o` claim states it."""

    id: str
    slug: str
    role: str = "admin"
    permissions: tuple[str, ...] = ()

    def claim(self) -> dict[str, str]:
        """The v2 `o` claim: role without the `org:` prefix, permissions comma-joined."""
        return {"id": self.id, "slg": self.slug, "rol": self.role, "per": ",".join(self.permissions)}


@dataclass(frozen=True)
class SessionToken:
    """A minted session token and the ways a browser or API client presents it."""

    jwt: str
    claims: dict[str, Any] = field(hash=False)

    @property
    def headers(self) -> dict[str, str]:
        """As an API client sends it."""
        return {"Authorization": f"Bearer {self.jwt}"}

    @property
    def cookies(self) -> dict[str, str]:
        """As a browser holds it: `__session`, and `__client_uat` not later than the token's `iat`."""
        return {"__session": self.jwt, "__client_uat": str(self.claims["iat"])}


class Issuer:
    """Holds a signing key and mints Clerk v2 session tokens with it."""

    def __init__(
        self,
        *,
        issuer_url: str,
        authorized_party: str,
        rng: random.Random,
        private_pem: str | None = None,
        kid: str | None = None,
    ) -> None:
        self.issuer_url = issuer_url
        self.authorized_party = authorized_party
        self._rng = rng
        if private_pem is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            loaded = serialization.load_pem_private_key(private_pem.encode(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError("the issuer's key must be an RSA private key")
            self._key = loaded
        self.kid = kid or "ins_" + "".join(rng.choice(_ALPHABET) for _ in range(27))

    @property
    def private_pem(self) -> str:
        """The signing key, so that parallel workers of one run sign with the same key the target trusts."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def public_pem(self) -> str:
        """The PEM an app verifying networkless trusts (Clerk's `CLERK_JWT_KEY`)."""
        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def jwks(self) -> dict[str, Any]:
        """The JWKS document an app fetching keys by URL reads."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": _b64uint(numbers.n),
                    "e": _b64uint(numbers.e),
                }
            ]
        }

    def mint(
        self,
        sub: str,
        *,
        org: ActiveOrg | None = None,
        ttl: int = DEFAULT_TTL,
        now: int | None = None,
        status: str = "active",
    ) -> SessionToken:
        """Mint a v2 session token for `sub`, with `org` active when given."""
        iat = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "azp": self.authorized_party,
            "exp": iat + ttl,
            "fva": [0, -1],
            "iat": iat,
            "iss": self.issuer_url,
            "nbf": iat - NBF_SKEW,
            "sid": clerk_id("sess", self._rng),
            "sts": status,
            "sub": sub,
            "v": 2,
        }
        if org is not None:
            claims["o"] = org.claim()
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})
        return SessionToken(jwt=token, claims=claims)


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
