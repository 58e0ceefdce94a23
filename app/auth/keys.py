"""Where the session-token keys come from: one PEM from settings, or Clerk's JWKS fetched by URL and cached.

The JWKS is fetched with a short timeout and cached for its `Cache-Control: max-age` (bounded). A token
naming a `kid` the cache does not hold may refetch it, but at most once a minute, whatever the kid: a
forged kid is free to mint, so without that limit every forged token would cost the issuer a request.
Concurrent requests wait on one lock while one of them fetches, so a cold cache costs one fetch, not one
per thread. A key that cannot be had (issuer down, unusable JWKS) refuses the token, as
`keys_unavailable`: a 401 like any other refusal, never a server error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "DEFAULT_CACHE_SECONDS",
    "FETCH_TIMEOUT_SECONDS",
    "MAX_CACHE_SECONDS",
    "MIN_CACHE_SECONDS",
    "MIN_KEY_BITS",
    "RETRY_AFTER_FAILURE_SECONDS",
    "UNKNOWN_KID_REFETCH_SECONDS",
    "Clock",
    "JwksKeys",
    "KeySource",
    "KeysUnavailable",
    "StaticKey",
    "UnknownKey",
    "cache_seconds",
    "key_source",
    "usable_keys",
]

log = logging.getLogger("app.keys")

FETCH_TIMEOUT_SECONDS = 5.0
DEFAULT_CACHE_SECONDS = 300.0  # when the JWKS response says nothing of its freshness
MIN_CACHE_SECONDS = 60.0  # a `max-age=0` (or `no-store`) issuer still gets at most one routine fetch a minute
MAX_CACHE_SECONDS = 3600.0  # a removed (compromised) key stops verifying within the hour, whatever the issuer said
UNKNOWN_KID_REFETCH_SECONDS = 60.0
RETRY_AFTER_FAILURE_SECONDS = 10.0
MIN_KEY_BITS = 2048  # Clerk signs with RSA-2048; a smaller key is a misconfiguration, never a real instance
MAX_JWKS_BYTES = 256 * 1024

Clock = Callable[[], float]
"""Seconds on a monotonic scale (`time.monotonic`); tests pass their own to move time without sleeping."""


class UnknownKey(LookupError):
    """No trusted key matches the token; `reason` is `unknown_kid` or `missing_kid`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The keys cannot be had right now (the JWKS could not be fetched or held no usable key)."""


class KeySource(Protocol):
    """Gives the RSA public key that should have signed a token, by the token's `kid`."""

    def cached(self, kid: str | None) -> RSAPublicKey | None:
        """The key for `kid` if it is at hand now, without any network; None otherwise."""
        ...

    def key_for(self, kid: str | None) -> RSAPublicKey:
        """The key for `kid`, fetching keys if the policy allows; raise UnknownKey or KeysUnavailable."""
        ...


class StaticKey:
    """One key from settings (`CLERK_JWT_KEY`): Clerk's networkless verification, which ignores `kid`."""

    def __init__(self, public_key_pem: str) -> None:
        key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, RSAPublicKey):
            raise ValueError("the session token key must be an RSA public key")
        self._key = key

    def cached(self, kid: str | None) -> RSAPublicKey:
        """The one key, whatever the kid."""
        return self._key

    def key_for(self, kid: str | None) -> RSAPublicKey:
        """The one key, whatever the kid."""
        return self._key


@dataclass(frozen=True)
class _Snapshot:
    """One fetched JWKS: its usable keys, and until when (clock time) they may be used."""

    keys: tuple[tuple[str | None, RSAPublicKey], ...]
    by_kid: Mapping[str, RSAPublicKey]
    expires_at: float

    @classmethod
    def of(cls, keys: list[tuple[str | None, RSAPublicKey]], expires_at: float) -> _Snapshot:
        by_kid: dict[str, RSAPublicKey] = {}
        for kid, key in keys:
            if kid is not None:
                by_kid.setdefault(kid, key)  # the first entry of a kid wins
        return cls(keys=tuple(keys), by_kid=by_kid, expires_at=expires_at)

    def find(self, kid: str | None) -> RSAPublicKey | None:
        if kid is None:
            # A token without a kid is matched only when there is no choice to make.
            return self.keys[0][1] if len(self.keys) == 1 else None
        return self.by_kid.get(kid)


class JwksKeys:
    """The keys of a JWKS URL (`CLERK_JWKS_URL`), fetched on demand and cached."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = time.monotonic,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        refetch_every_unknown_kid: bool = False,
    ) -> None:
        self._url = url
        self._clock = clock
        self._timeout = timeout
        # One client for the app's life: fetches are few, and only ever one at a time (under the lock).
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._refetch_every_unknown_kid = refetch_every_unknown_kid  # the `jwks_refetch_every_unknown_kid` fault
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._last_attempt: float | None = None
        self._last_failed = False

    def cached(self, kid: str | None) -> RSAPublicKey | None:
        """The key for `kid` from a fresh cache, without a lock or the network; None otherwise."""
        snapshot = self._snapshot  # one read: another thread may swap it at any time
        if snapshot is None or self._clock() >= snapshot.expires_at:
            return None
        return snapshot.find(kid)

    def key_for(self, kid: str | None) -> RSAPublicKey:
        """The key for `kid`: from the cache, else from one fetch if the refetch policy allows it."""
        with self._lock:  # one fetch at a time; the threads waiting here then find its result
            now = self._clock()
            snapshot = self._snapshot
            fetched = False
            if snapshot is None or now >= snapshot.expires_at:
                if not self._may_retry(now):
                    raise KeysUnavailable("the last fetch failed moments ago")
                snapshot, fetched = self._refresh(now), True
            key = snapshot.find(kid)
            if key is not None:
                return key
            if kid is None:
                raise UnknownKey("missing_kid")
            if not fetched and self._may_refetch_for_unknown_kid(now):
                key = self._refresh(now).find(kid)
                if key is not None:
                    return key
            raise UnknownKey("unknown_kid")

    def _may_retry(self, now: float) -> bool:
        last = self._last_attempt
        return last is None or not self._last_failed or now - last >= RETRY_AFTER_FAILURE_SECONDS

    def _may_refetch_for_unknown_kid(self, now: float) -> bool:
        if self._refetch_every_unknown_kid:
            return True  # the bug: every forged kid costs the issuer a request
        # Once a minute in all, counted from the last fetch of any cause: a kid missing from keys fetched
        # less than a minute ago is almost surely forged, and a genuine rotation is picked up a minute later.
        last = self._last_attempt
        return last is None or now - last >= UNKNOWN_KID_REFETCH_SECONDS

    def _refresh(self, now: float) -> _Snapshot:
        """Fetch the JWKS and cache it; raise KeysUnavailable (and log why) when that fails."""
        self._last_attempt = now
        self._last_failed = True
        try:
            document, cache_control = self._fetch()
            keys = usable_keys(document)
        except Exception as exc:
            # Whatever went wrong (network, status, size, JSON, keys), the answer is the same refusal. The URL
            # and the error go to the server log only; the client learns `keys_unavailable`.
            log.warning("jwks fetch failed url=%s error=%s", self._url, _one_line(exc))
            raise KeysUnavailable("the JWKS could not be fetched") from None
        self._last_failed = False
        self._snapshot = _Snapshot.of(keys, expires_at=now + cache_seconds(cache_control))
        log.info("jwks fetched url=%s keys=%d", self._url, len(keys))
        return self._snapshot

    def _fetch(self) -> tuple[Any, str | None]:
        """The JSON document at the URL and its Cache-Control header."""
        with self._client.stream("GET", self._url, headers={"Accept": "application/json"}) as response:
            if response.status_code != httpx.codes.OK:
                raise ValueError(f"answered {response.status_code}")
            # httpx's timeout bounds each read; a deadline bounds them all, so a dripping server cannot
            # hold the lock (and every request waiting on it) for long.
            deadline = time.monotonic() + self._timeout
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise ValueError(f"the JWKS took longer than {self._timeout:g} s to arrive")
            return json.loads(body), response.headers.get("Cache-Control")


def key_source(*, jwt_key: str | None, jwks_url: str | None, refetch_every_unknown_kid: bool = False) -> KeySource:
    """The key source the settings name: the PEM if given, else the JWKS URL (settings require exactly one)."""
    if jwt_key is not None:
        return StaticKey(jwt_key)
    if jwks_url is None:
        raise ValueError("neither a PEM nor a JWKS URL was given")
    return JwksKeys(jwks_url, refetch_every_unknown_kid=refetch_every_unknown_kid)


def usable_keys(document: Any) -> list[tuple[str | None, RSAPublicKey]]:
    """The keys of a JWKS document that may verify RS256 session tokens, with their kids; raise ValueError if none.

    Only RSA keys for signatures (`use` absent or `sig`) and for RS256 (`alg` absent or `RS256`), of
    2048 bits or more, as public keys: an entry carrying private material is a leak, never a key to trust.
    """
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS (no `keys` list)")
    found: list[tuple[str | None, RSAPublicKey]] = []
    for entry in _candidates(entries):
        try:
            key = jwt.PyJWK(entry).key
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if isinstance(key, RSAPublicKey) and key.key_size >= MIN_KEY_BITS:
            found.append((entry.get("kid"), key))
    if not found:
        raise ValueError("the JWKS holds no RSA key usable for RS256 signatures")
    return found


def _candidates(entries: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "d" in entry:
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
            continue
        kid = entry.get("kid")
        if kid is None or (isinstance(kid, str) and kid):
            yield entry


def cache_seconds(cache_control: str | None) -> float:
    """How long to keep a JWKS: its `max-age`, within MIN_CACHE_SECONDS..MAX_CACHE_SECONDS; the default if absent."""
    seconds = DEFAULT_CACHE_SECONDS
    for directive in (cache_control or "").split(","):
        name, _, value = directive.strip().lower().partition("=")
        if name in {"no-store", "no-cache"}:
            return MIN_CACHE_SECONDS
        if name == "max-age":
            try:
                seconds = float(min(int(value.strip().strip('"')), int(MAX_CACHE_SECONDS)))
            except ValueError:
                continue
    return min(max(seconds, MIN_CACHE_SECONDS), MAX_CACHE_SECONDS)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
