"""A loopback stand-in for Clerk's frontend API: the handshake, answered as Clerk answers it, offline.

When a page load of a Clerk-guarded app cannot be resolved (an expired token, `__client_uat` newer than the
token, a development browser without its cookie), Clerk's middleware sends the browser to
`https://<frontend API>/v1/client/handshake?redirect_url=...`. Clerk knows the browser by its `__client` cookie
on the frontend API's host, mints a fresh session token and sends the browser back to `redirect_url` with
`__clerk_handshake`: a JWT signed by the instance's key whose `handshake` claim lists the Set-Cookie directives
the app applies (`__session`, `__client_uat`, and `__clerk_db_jwt` for a development instance; suffixed too
when the app asked for suffixed cookies). A browser Clerk does not know gets directives that sign it out.

The browser reaches this server under the frontend API's own host name (`--host-resolver-rules`) and trusts its
certificate by its key's hash alone (`--ignore-certificate-errors-spki-list`): nothing else is trusted.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import random
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.clerk.issuer import (
    CLIENT_UAT_COOKIE,
    DEV_BROWSER_COOKIE,
    SESSION_COOKIE,
    ActiveOrg,
    Issuer,
    clerk_id,
    cookie_suffix,
)
from harness.clerk.jwks import in_thread

__all__ = ["CLIENT_COOKIE", "HANDSHAKE_PATH", "Client", "FrontendApi", "Handshake", "serving"]

HANDSHAKE_PATH = "/v1/client/handshake"
CLIENT_COOKIE = "__client"  # how Clerk's frontend API knows a browser: a cookie on its own host
HANDSHAKE_PARAM = "__clerk_handshake"
MAX_HANDSHAKES = 1000  # a looping browser is stopped by the driver long before; this bounds the record


@dataclass(frozen=True)
class Client:
    """A browser Clerk knows: its user and the organisation active in its session."""

    sub: str
    org: ActiveOrg | None
    version: int = 2
    claims: tuple[tuple[str, str], ...] = ()  # custom session-token claims (Clerk's session-token customisation)


@dataclass(frozen=True)
class Handshake:
    """One handshake the stand-in answered: for which client, why the app asked, and whether it signed in."""

    client: str | None
    reason: str
    redirect_url: str
    signed_in: bool


class FrontendApi(ThreadingHTTPServer):
    """Answers `/v1/client/handshake` for the issuer's instance over HTTPS on loopback."""

    daemon_threads = True

    def __init__(self, issuer: Issuer, port: int = 0) -> None:
        self.issuer = issuer
        self.host = urlsplit(issuer.issuer_url).hostname or "clerk.invalid"
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()
        self.handshakes: list[Handshake] = []
        super().__init__(("127.0.0.1", port), _Handler)
        key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _certificate(self.host, key)
        spki = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spki_hash = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="iam-harness-fapi-") as folder:
            cert, pem = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
            pem.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            context.load_cert_chain(cert, pem)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def browser_args(self) -> list[str]:
        """What Chromium needs to reach this server as the frontend API and trust its certificate (only it)."""
        return [
            f"--host-resolver-rules=MAP {self.host} 127.0.0.1:{self.port}",
            f"--ignore-certificate-errors-spki-list={self.spki_hash}",
        ]

    @property
    def origin(self) -> str:
        return f"https://{self.host}"

    def register(self, client: Client) -> str:
        """Know a browser by a new `__client` id; the driver sets it as a cookie on the frontend API's host."""
        with self._lock:
            client_id = clerk_id("client", random.Random(f"{self.host}:{len(self._clients)}"))
            self._clients[client_id] = client
            return client_id

    def forget(self, client_id: str) -> None:
        """Sign a browser out at Clerk: its next handshake clears its session."""
        with self._lock:
            self._clients.pop(client_id, None)

    def answer(self, query: dict[str, list[str]], cookies: SimpleCookie) -> tuple[str, Handshake]:
        """The Location a handshake request is sent to, and what it did."""
        redirect_url = query.get("redirect_url", [""])[0]
        reason = query.get("__clerk_hs_reason", [""])[0]
        suffixed = query.get("suffixed_cookies", ["false"])[0] == "true"
        morsel = cookies.get(CLIENT_COOKIE)
        client_id = morsel.value if morsel is not None else None
        with self._lock:
            client = self._clients.get(client_id) if client_id else None
        directives = self._directives(client, suffixed)
        token = jwt.encode(
            {"handshake": directives},
            self.issuer.keys[-1][1],
            algorithm="RS256",
            headers={"kid": self.issuer.kid, "typ": "JWT"},
        )
        done = Handshake(client_id, reason, redirect_url, client is not None)
        with self._lock:
            if len(self.handshakes) < MAX_HANDSHAKES:
                self.handshakes.append(done)
        return _with_param(redirect_url, HANDSHAKE_PARAM, token), done

    def _directives(self, client: Client | None, suffixed: bool) -> list[str]:
        attributes = "Path=/; SameSite=Lax"
        if client is None:
            pairs = [(SESSION_COOKIE, "", "; Max-Age=0"), (CLIENT_UAT_COOKIE, "0", "")]
        else:
            token = self.issuer.mint(client.sub, org=client.org, version=client.version, extra=dict(client.claims))
            pairs = [(SESSION_COOKIE, token.jwt, ""), (CLIENT_UAT_COOKIE, str(token.claims["iat"]), "")]
        if self.issuer.dev_browser is not None:
            pairs.append((DEV_BROWSER_COOKIE, self.issuer.dev_browser, ""))
        found = [f"{name}={value}; {attributes}{extra}" for name, value, extra in pairs]
        if suffixed:
            suffix = cookie_suffix(self.issuer.publishable_key)
            found += [f"{name}_{suffix}={value}; {attributes}{extra}" for name, value, extra in pairs]
        return found


class _Handler(BaseHTTPRequestHandler):
    server: FrontendApi

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != HANDSHAKE_PATH:
            self.send_error(404)
            return
        query = parse_qs(parts.query)
        if not query.get("redirect_url", [""])[0].startswith(("http://", "https://")):
            self.send_error(400, "redirect_url must be an absolute http(s) URL")
            return
        location, _ = self.server.answer(query, SimpleCookie(self.headers.get("Cookie", "")))
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in (parts.query, urlencode({name: value})) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _certificate(host: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


@contextmanager
def serving(issuer: Issuer, port: int = 0) -> Iterator[FrontendApi]:
    """The stand-in on a loopback thread for as long as the block runs."""
    with in_thread(FrontendApi(issuer, port), "clerk-frontend-api") as server:
        yield server
