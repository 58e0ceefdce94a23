"""`iam-harness token ...` and `iam-harness issuer ...`: tokens and keys for engineers reproducing an auth bug.

iam-harness token mint --sub user_2... [--org org_2...] [--role admin] [--v1] [--ttl 60] [--curl URL]
iam-harness token decode TOKEN
iam-harness token attacks
iam-harness issuer pem | jwks | rotate | serve --port N
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import shlex
import threading
import time
from typing import Any

from harness.clerk.attacks import CATALOGUE, WEAK_SECRETS
from harness.clerk.explain import explain
from harness.clerk.issuer import ActiveOrg, Issuer
from harness.clerk.jwks import JWKS_PATH, serving
from harness.clerk.keystore import KeyStore
from harness.cli.options import http_url
from harness.config.model import DEFAULT_ISSUER
from harness.errors import ConfigError
from harness.target.running import origin_of

__all__ = ["add_commands", "run_command"]

DEFAULT_AZP = "http://127.0.0.1"


def add_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add the `token` and `issuer` commands to the CLI's subparsers."""
    token = commands.add_parser("token", help="mint or explain Clerk-shaped session tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, parser_class=parser_class)
    mint = token_commands.add_parser("mint", help="print a session token signed with the project's key")
    mint.add_argument("--sub", required=True, help="the Clerk user id (user_...)")
    mint.add_argument("--org", help="the active organisation's Clerk id (org_...)")
    mint.add_argument("--slug", default="acme", help="the active organisation's slug")
    mint.add_argument("--role", default="admin", help="the organisation role, without the org: prefix")
    mint.add_argument("--permission", action="append", default=[], help="an organisation permission (repeatable)")
    mint.add_argument("--v1", action="store_true", help="a version 1 token (org_* claims, no v or sts)")
    mint.add_argument("--ttl", type=int, default=60, help="seconds until exp (default 60, as Clerk's)")
    mint.add_argument("--pending", action="store_true", help="sts: pending (signed in, no organisation chosen yet)")
    mint.add_argument("--cat", action="store_true", help="add Clerk's session category header (cat: cl_B7d4PD111AAA)")
    mint.add_argument("--curl", metavar="URL", help="print a ready curl line for URL instead of the bare token")
    mint.add_argument("--issuer", default=DEFAULT_ISSUER, help=f"the iss claim (default {DEFAULT_ISSUER})")
    mint.add_argument("--azp", default=None, help="the azp claim (default: the --curl URL's origin)")
    token_commands.add_parser("attacks", help="list the attack catalogue: each forgery, what it forges, its source")
    decode = token_commands.add_parser("decode", help="explain a token: its claims and every rule it breaks")
    decode.add_argument("token")
    decode.add_argument("--issuer", default=DEFAULT_ISSUER, help="the iss the token should carry")
    issuer = commands.add_parser("issuer", help="the project's signing keys")
    issuer_commands = issuer.add_subparsers(dest="issuer_command", required=True, parser_class=parser_class)
    issuer_commands.add_parser("pem", help="print the public key an app should trust (CLERK_JWT_KEY)")
    issuer_commands.add_parser("jwks", help="print the JWKS document")
    issuer_commands.add_parser("rotate", help="start signing with a new key (the old one stays in the JWKS)")
    serve = issuer_commands.add_parser("serve", help=f"serve the JWKS at http://127.0.0.1:PORT{JWKS_PATH}")
    serve.add_argument("--port", type=int, default=0, help="the port (default: a free one, printed)")


def run_command(args: argparse.Namespace) -> int:
    """Run a `token` or `issuer` command; return the exit code."""
    if getattr(args, "curl", None):
        http_url("--curl", args.curl)
    if getattr(args, "port", None) is not None and not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be from 0 to 65535, got {args.port}")
    store = KeyStore()
    azp = (
        args.azp if getattr(args, "azp", None) else origin_of(args.curl) if getattr(args, "curl", None) else DEFAULT_AZP
    )
    issuer = store.issuer(
        issuer_url=getattr(args, "issuer", DEFAULT_ISSUER),
        authorized_party=azp,
        rng=random.Random(secrets.randbits(64)),
    )
    if args.command == "token" and args.token_command == "mint":  # noqa: S105 (a command name)
        return _mint(args, issuer)
    if args.command == "token" and args.token_command == "attacks":  # noqa: S105 (a command name)
        _list_attacks()
        return 0
    if args.command == "token":
        explained = explain(args.token, now=int(time.time()), issuer=issuer)
        print("\n".join(explained.lines()))
        return 1 if explained.broken else 0
    if args.issuer_command == "pem":
        print(issuer.public_pem, end="")
    elif args.issuer_command == "jwks":
        print(json.dumps(issuer.jwks, indent=2))
    elif args.issuer_command == "rotate":
        old = issuer.kid
        store.save(issuer)
        new = issuer.rotate()
        store.save(issuer)
        print(f"now signing with {new}; {old} stays in the JWKS until retired")
    else:
        _serve(issuer, args.port)
    return 0


def _list_attacks() -> None:
    width = max(len(entry.name) for entry in CATALOGUE)
    print(f"{len(CATALOGUE)} forgeries of a Clerk session token, each to be refused with 401:")
    for entry in CATALOGUE:
        print(f"  {entry.name:<{width}}  {entry.doc} [{entry.source}]")
    print(
        "Beside them: a valid session naming an organisation its user is not in (403 or 404, never data), and a"
        " deleted user's still-valid session (after a signed user.deleted webhook; 401)."
    )
    print(
        "For a target's own login tokens (JWTs), each principal's token re-signed as it is and with `sub` swapped:"
        f" alg_none, empty_secret, {len(WEAK_SECRETS)} weak secrets (weak_secret:...), foreign_key;"
        " and the token's own HMAC secret tried against the weak secrets offline."
    )


def _mint(args: argparse.Namespace, issuer: Issuer) -> int:
    if not args.sub.strip():
        raise ConfigError("--sub must name a user (user_...)")
    if not 1 <= args.ttl <= 86_400:
        raise ConfigError(f"--ttl must be from 1 to 86400 seconds, got {args.ttl}")
    if args.pending and args.org:
        raise ConfigError("--pending and --org do not go together: a pending session has no organisation active yet")
    org = ActiveOrg(args.org, args.slug, args.role, tuple(args.permission)) if args.org else None
    try:
        token = issuer.mint(
            args.sub,
            org=org,
            ttl=args.ttl,
            version=1 if args.v1 else 2,
            status="pending" if args.pending else "active",
            category=args.cat,
        )
    except ValueError as exc:  # a permission not of Clerk's org:<feature>:<name> shape
        raise ConfigError(f"--permission: {exc}") from None
    if args.curl:
        print(shlex.join(["curl", "-sS", args.curl, "-H", f"Authorization: Bearer {token.jwt}"]))
    else:
        print(token.jwt)
    return 0


def _serve(issuer: Issuer, port: int) -> None:
    try:
        with serving(issuer, port) as server:
            print(f"serving {server.url} (Ctrl-C stops)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    except OSError as exc:  # the port taken, or not ours to listen on
        raise ConfigError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
