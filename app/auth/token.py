"""Layer 1 of authentication: is this a genuine, current Clerk session token for this app?

Verification as Clerk's SDKs do it, only stricter: RS256 alone, the issuer checked, `exp`, `sub` and
`iat` required, 5 s of clock leeway, `azp` checked whenever authorized parties are configured, and a
`pending` session (signed in, but no organisation chosen yet) refused. The key is the PEM in
`CLERK_JWT_KEY` (networkless) or the one the token's `kid` names in the JWKS at `CLERK_JWKS_URL`
(see `app.auth.keys`).

A valid token is parsed once, by `jwt.decode`. Before it, only the header segment (a hundred bytes or so)
is read, to refuse a wrong `alg`, `typ` or `cat` and to pick the key (on a key-cache miss, and on a refusal,
the header is read once more). Any refusal made on that reading first
checks that PyJWT can parse the whole token, and says `malformed` when it cannot: the reasons are those of
a verifier that parses everything before judging anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from app.auth.keys import KeySource, KeysUnavailable, StaticKey, UnknownKey
from app.faults import Fault

__all__ = [
    "ALGORITHMS",
    "LEEWAY_SECONDS",
    "MAX_ID_LENGTH",
    "InvalidToken",
    "OrgClaim",
    "SessionClaims",
    "TokenVerifier",
    "plain_id",
]

# Only the algorithm Clerk signs with: never HS256 (the public key would become a shared secret) nor "none".
ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 5
SESSION_CATEGORY = "cl_B7d4PD111AAA"
MAX_ID_LENGTH = 255
MAX_TOKEN_LENGTH = 8 * 1024
# A handshake carries a session token or two (suffixed and not) among its directives: a few kilobytes.
MAX_HANDSHAKE_LENGTH = 32 * 1024
MAX_HANDSHAKE_DIRECTIVES = 32
# One Set-Cookie value: a cookie name (an RFC 6265 token), `=`, then no control character (no CR, LF or NUL).
_SET_COOKIE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[^\x00-\x08\x0a-\x1f\x7f]{0,8192}")


class InvalidToken(Exception):
    """A refused token; `reason` is a short code a client may see (never the token or key material)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OrgClaim:
    """The organisation a session has active, as the token states it (v2 `o` or v1 `org_*`)."""

    external_id: str
    slug: str | None
    role: str | None = None
    """The organisation role the token states (`admin`). Roles come from the governance tables: only the
    `role_claim_trusted` fault reads this."""


@dataclass(frozen=True)
class SessionClaims:
    """What the app takes from a verified session token."""

    subject: str
    issued_at: int
    session_id: str | None
    org: OrgClaim | None
    email: str | None = None
    """The `email` claim of Clerk's session-token customisation (`{"email": "{{user.primary_email_address}}"}`),
    lower case: what names a platform admin. None when the instance does not add it."""


class TokenVerifier:
    """Verifies session tokens against the keys of one source (a PEM, or a JWKS URL) and one issuer."""

    def __init__(
        self,
        *,
        issuer: str,
        public_key_pem: str | None = None,
        keys: KeySource | None = None,
        authorized_parties: tuple[str, ...] = (),
        faults: frozenset[Fault] = frozenset(),
    ) -> None:
        if public_key_pem is not None and keys is None:
            keys = StaticKey(public_key_pem)
        elif keys is None or public_key_pem is not None:
            raise ValueError("give exactly one of public_key_pem and keys")
        self._keys = keys
        self._faults = faults  # test mode only (see app.config): each brings back one verification bug
        self._issuer = issuer
        self._authorized_parties = frozenset(authorized_parties)
        self._required = ["sub", "iat"] if Fault.EXP_NOT_REQUIRED in faults else ["exp", "sub", "iat"]
        self._options: jwt.types.Options = {"require": self._required}

    def verify(self, token: str) -> SessionClaims:
        """The claims of a valid session token; raise InvalidToken(reason) for anything else."""
        # Real session tokens are about a kilobyte; refusing huge ones before any parsing keeps a forged
        # 64 KiB cookie from costing more than a length check.
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("too_large")
        header = self._check_header(token)
        try:
            claims: dict[str, Any] = self._decode(token, header)
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("not_yet_valid") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong_issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing_{exc.claim}") from None
        except jwt.InvalidAudienceError:
            # Session tokens carry no audience; a token made for some audience (a JWT template's, say)
            # is not a session, even when the same instance key signed it.
            raise InvalidToken("audience_not_allowed") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("algorithm_not_allowed") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad_signature") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed") from None
        # PyJWT turns a numeric string into a NumericDate; RFC 7519 says a number, so anything else is refused.
        for name in ("exp", "nbf", "iat"):
            if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], int | float)):
                raise InvalidToken(f"invalid_{name}")
        if Fault.SKIP_AZP_CHECK not in self._faults:
            self._check_authorized_party(claims)
        return SessionClaims(
            subject=self._subject(claims),
            issued_at=int(claims["iat"]),
            session_id=claims["sid"] if isinstance(claims.get("sid"), str) else None,
            org=self._org(claims),
            email=claims["email"].strip().lower() if plain_id(claims.get("email")) else None,
        )

    def may_fetch(self, token: str) -> bool:
        """Whether verifying `token` could fetch keys: its `kid`'s key is not at hand (cheap to ask; for a caller
        that keeps network I/O off its event loop). A token whose header does not even read fetches nothing."""
        header = _read_header(token)
        if header is None:
            return False
        kid = header.get("kid")
        return (kid is None or isinstance(kid, str)) and self._keys.cached(kid) is None

    def verify_handshake(self, token: str) -> tuple[str, ...]:
        """The Set-Cookie directives of a handshake token; raise InvalidToken(reason) for anything else.

        Verified as Clerk's SDKs verify it: RS256, `typ` JWT when given, signed by the instance key its `kid` names
        (the keys session tokens are verified with), and no claim read but `handshake`: Clerk's frontend API puts
        no `exp` in it. No fault switch opens anything here. Each directive must be one `name=value; ...` header
        line, so that a directive can never split the answer's headers.
        """
        if len(token) > MAX_HANDSHAKE_LENGTH:
            raise InvalidToken("too_large")
        header = self._parses(token)
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm_not_allowed")
        if "typ" in header and header["typ"] != "JWT":
            raise InvalidToken("wrong_type")
        unchecked: jwt.types.Options = {
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_iss": False,
            "verify_aud": False,
            "verify_sub": False,
            "verify_jti": False,
        }
        try:
            payload: dict[str, Any] = jwt.decode(
                token, self._key(token, header), algorithms=ALGORITHMS, options=unchecked
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad_signature") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed") from None
        directives = payload.get("handshake")
        if (
            not isinstance(directives, list)
            or len(directives) > MAX_HANDSHAKE_DIRECTIVES
            or not all(isinstance(item, str) and _SET_COOKIE.fullmatch(item) for item in directives)
        ):
            raise InvalidToken("invalid_handshake")
        return tuple(directives)

    def _unverified(self, token: str, checks: jwt.types.Options) -> dict[str, Any]:
        """The claims with every check but the signature's (the faulty paths, whose signature was judged elsewhere)."""
        claims: dict[str, Any] = jwt.decode(
            token, options={**checks, "verify_signature": False}, issuer=self._issuer, leeway=LEEWAY_SECONDS
        )
        return claims

    def _decode(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        alg = str(header.get("alg"))
        if alg in ALGORITHMS and not ("jwk" in header and Fault.TRUST_JWK_HEADER in self._faults):
            # The healthy path: the one parse of the whole token, with the signature and every claim checked.
            decoded: dict[str, Any] = jwt.decode(
                token,
                self._key(token, header),
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options=self._options,
            )
            return decoded
        return self._decode_faulty(token, header, alg)

    def _decode_faulty(self, token: str, header: dict[str, Any], alg: str) -> dict[str, Any]:
        """The paths only a fault switch opens (`_check_header` refused anything else)."""
        self._parses(token)
        checks: jwt.types.Options = {
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_iss": True,
            "require": self._required,
        }
        if alg.lower() == "none" and Fault.ACCEPT_ALG_NONE in self._faults:
            return self._unverified(token, checks)
        if alg == "HS256" and Fault.HS256_KEY_CONFUSION in self._faults:
            # The historical bug: the public key's PEM used as an HMAC secret.
            pem = self._key(token, header).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            signing_input, _, signature = token.rpartition(".")
            expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(base64.urlsafe_b64encode(expected).rstrip(b"=").decode(), signature):
                raise jwt.InvalidSignatureError("bad HMAC")
            return self._unverified(token, checks)
        key = jwt.PyJWK(header["jwk"]).key  # `trust_jwk_header`: the token's own key, so anyone's signature verifies
        decoded: dict[str, Any] = jwt.decode(
            token, key, algorithms=ALGORITHMS, issuer=self._issuer, leeway=LEEWAY_SECONDS, options=self._options
        )
        return decoded

    def _key(self, token: str, header: dict[str, Any]) -> RSAPublicKey:
        """The key the token's `kid` names: from the cache, else (for a token that parses) from the key source."""
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            self._refuse(token, "malformed")  # PyJWT refuses such a kid too
        key = self._keys.cached(kid)
        if key is not None:
            return key
        # Nothing is fetched for a token that does not even parse.
        self._parses(token)
        try:
            return self._keys.key_for(kid)
        except UnknownKey as exc:
            raise InvalidToken(exc.reason) from None
        except KeysUnavailable:
            raise InvalidToken("keys_unavailable") from None

    def _check_header(self, token: str) -> dict[str, Any]:
        header = _read_header(token)
        if header is None:
            header = self._parses(token)
        alg = str(header.get("alg"))
        allowed = (alg.lower() == "none" and Fault.ACCEPT_ALG_NONE in self._faults) or (
            alg == "HS256" and Fault.HS256_KEY_CONFUSION in self._faults
        )
        if alg not in ALGORITHMS and not allowed:
            self._refuse(token, "algorithm_not_allowed")
        if "typ" in header and header["typ"] != "JWT":
            self._refuse(token, "wrong_type")
        # Clerk marks machine tokens with another category; only a session token may open a session.
        if "cat" in header and header["cat"] != SESSION_CATEGORY:
            self._refuse(token, "not_a_session_token")
        return header

    @staticmethod
    def _parses(token: str) -> dict[str, Any]:
        """The header as PyJWT parses it, with the whole token; InvalidToken("malformed") if it cannot."""
        try:
            header: dict[str, Any] = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed") from None
        return header

    def _refuse(self, token: str, reason: str) -> NoReturn:
        """Refuse for `reason`, or as `malformed` when the whole token does not parse (that comes first)."""
        self._parses(token)
        raise InvalidToken(reason)

    def _check_authorized_party(self, claims: dict[str, Any]) -> None:
        # As Clerk's SDKs: azp is checked only when authorized parties are configured; then it must be
        # present and match one of them exactly (no prefix or suffix matching).
        if not self._authorized_parties:
            return
        azp = claims.get("azp")
        if not isinstance(azp, str) or not azp:
            raise InvalidToken("missing_azp")
        if azp not in self._authorized_parties:
            raise InvalidToken("unauthorized_party")

    def _subject(self, claims: dict[str, Any]) -> str:
        sub = claims.get("sub")
        if not plain_id(sub):
            raise InvalidToken("invalid_subject")
        # Signed in but still choosing or creating an organisation: not a session the app may serve yet.
        if claims.get("sts") == "pending" and Fault.IGNORE_PENDING_STATUS not in self._faults:
            raise InvalidToken("session_pending")
        return sub

    @staticmethod
    def _org(claims: dict[str, Any]) -> OrgClaim | None:
        org = claims.get("o")
        if org is not None:
            if not isinstance(org, dict):
                raise InvalidToken("invalid_org_claim")
            org_id, slug, role = org.get("id"), org.get("slg"), org.get("rol")
        else:
            org_id, slug, role = claims.get("org_id"), claims.get("org_slug"), claims.get("org_role")
        if org_id is None:
            return None
        if not plain_id(org_id):
            raise InvalidToken("invalid_org_claim")
        return OrgClaim(
            external_id=org_id,
            slug=slug if plain_id(slug) else None,
            role=role.removeprefix("org:") if plain_id(role) else None,
        )


def plain_id(value: Any) -> TypeGuard[str]:
    """A non-blank string of at most MAX_ID_LENGTH characters, without NUL, that is text: JSON's `\\ud800` (a lone
    surrogate) decodes to a string no database, log or page can hold."""
    if not (isinstance(value, str) and value.strip() and len(value) <= MAX_ID_LENGTH and "\x00" not in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_header(token: str) -> dict[str, Any] | None:
    """The header segment alone, decoded leniently; None when it does not decode (PyJWT then says why)."""
    segment, dot, _ = token.partition(".")
    if not dot:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    return header if isinstance(header, dict) else None
