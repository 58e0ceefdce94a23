"""The project's stored keys, and `token decode`'s explanation of what a token breaks."""

from __future__ import annotations

import base64
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from harness.clerk.attacks import CATALOGUE
from harness.clerk.explain import explain
from harness.clerk.issuer import Issuer
from harness.clerk.keystore import HOME_ENV, KeyStore
from harness.cli.main import main
from harness.errors import ConfigError

ISS = "https://iam-harness-12.clerk.accounts.dev"
NOW = 1_800_000_000


def _issuer(store: KeyStore) -> Issuer:
    return store.issuer(issuer_url=ISS, authorized_party="http://127.0.0.1", rng=random.Random(1))


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}."


def test_keys_persist_privately_and_rotate(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "home")
    first = _issuer(store)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert _issuer(store).public_pem == first.public_pem  # another command, the same key
    old = first.kid
    new = first.rotate()
    store.save(first)
    again = _issuer(store)
    assert again.kid == new and [kid for kid, _ in again.keys] == [old, new]


def test_unreadable_key_file_is_named(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"keys\.json is unreadable"):
        _issuer(store)


def test_valid_token_breaks_nothing(tmp_path: Path) -> None:
    issuer = _issuer(KeyStore(tmp_path))
    assert explain(issuer.mint("user_2abc", now=NOW).jwt, now=NOW, issuer=issuer).broken == ()


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda i: i.mint("user_2abc", now=NOW - 120).jwt, "expired 60 s ago"),
        (lambda i: i.mint("user_2abc", now=NOW + 60).jwt, "not valid for another 50 s"),
        (lambda i: _unsigned({"alg": "none", "typ": "JWT"}, {"sub": "user_2x", "exp": NOW + 60}), "alg 'none'"),
        (lambda i: _unsigned({"alg": "NoNe"}, {"sub": "user_2x", "exp": NOW + 60}), "an unsigned token"),
        (lambda i: i.mint("", now=NOW).jwt, "sub must be a non-empty string"),
        (lambda i: i.mint("user_2abc", now=NOW, status="pending").jwt, "sts pending"),
        (lambda i: "a.b", "3 dot-separated segments"),
        (lambda i: "!!.??.x", "not base64url-encoded JSON"),
        (lambda i: jwt.encode({"sub": "u", "exp": NOW + 9}, "s" * 32, algorithm="HS256"), "alg 'HS256' is not allowed"),
    ],
)
def test_broken_rules_are_named(tmp_path: Path, make: object, rule: str) -> None:
    issuer = _issuer(KeyStore(tmp_path))
    token = make(issuer)  # type: ignore[operator]
    assert any(rule in broken for broken in explain(token, now=NOW, issuer=issuer).broken)


def test_foreign_signature_is_named(tmp_path: Path) -> None:
    issuer = _issuer(KeyStore(tmp_path / "a"))
    forger = Issuer(issuer_url=ISS, authorized_party="http://127.0.0.1", rng=random.Random(2), kid=issuer.kid)
    broken = explain(forger.mint("user_2abc", now=NOW).jwt, now=NOW, issuer=issuer).broken
    assert broken == ("the signature does not verify with the key its kid names",)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {HOME_ENV: str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env={**os.environ, **env}, check=False
    )


@pytest.mark.e2e  # the CLI in subprocesses
def test_cli_mint_pem_and_decode_agree(tmp_path: Path) -> None:
    token = _cli(tmp_path, "token", "mint", "--sub", "user_2abc", "--org", "org_2x").stdout.strip()
    pem = _cli(tmp_path, "issuer", "pem").stdout
    assert jwt.decode(token, pem, algorithms=["RS256"], issuer=ISS)["o"]["id"] == "org_2x"
    decoded = _cli(tmp_path, "token", "decode", token)
    assert decoded.returncode == 0 and "valid: breaks no rule" in decoded.stdout
    stale = _cli(tmp_path, "token", "decode", _unsigned({"alg": "none"}, {"sub": "x", "exp": 1}))
    assert stale.returncode == 1 and "alg 'none'" in stale.stdout and "expired" in stale.stdout
    curl = _cli(tmp_path, "token", "mint", "--sub", "user_2abc", "--curl", "http://127.0.0.1:8000/api/me").stdout
    assert curl.startswith("curl -sS http://127.0.0.1:8000/api/me -H 'Authorization: Bearer ")
    bad = _cli(tmp_path, "token", "mint", "--sub", "user_2abc", "--ttl", "0")
    assert bad.returncode == 2 and "--ttl" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.e2e  # the CLI in a subprocess
def test_token_attacks_lists_every_catalogue_entry(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "harness", "token", "attacks"],
        env={**os.environ, HOME_ENV: str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ")]
    assert names == [entry.name for entry in CATALOGUE]
    assert f"{len(CATALOGUE)} forgeries" in listed and "weak secrets" in listed and "deleted user" in listed


def test_cli_mint_cat_pending_and_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cat` adds Clerk's session category; `--pending` has no organisation; permissions in Clerk's encoding."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert main(["token", "mint", "--sub", "user_2abc", "--cat"]) == 0
    assert jwt.get_unverified_header(capsys.readouterr().out.strip())["cat"] == "cl_B7d4PD111AAA"
    assert main(["token", "mint", "--sub", "user_2abc", "--pending"]) == 0
    pending = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert pending["sts"] == "pending" and "o" not in pending
    argv = ["token", "mint", "--sub", "user_2abc", "--org", "org_2x", "--permission", "org:deals:read"]
    assert main(argv) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["o"]["per"] == "read" and claims["o"]["fpm"] == "1" and claims["fea"] == "o:deals"
    assert main(["token", "mint", "--sub", "user_2abc", "--org", "org_2x", "--pending"]) == 2
    assert "pending session has no organisation" in capsys.readouterr().err
    assert main(["token", "mint", "--sub", "user_2abc", "--org", "org_2x", "--permission", "deals"]) == 2
    assert "org:<feature>:<name>" in capsys.readouterr().err


def _raw(payload: bytes) -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').decode().rstrip("=")
    return f"{head}.{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.c2ln"


@pytest.mark.parametrize(
    ("payload", "rule"),
    [
        (b'{"sub":"u","exp":1,"iat":1e400}', "iat must be a finite number (NumericDate), got inf"),
        (b'{"sub":"u","exp":-1e400}', "exp must be a finite number (NumericDate), got -inf"),
        (b'{"sub":"u","exp":Infinity}', "exp must be a finite number (NumericDate), got inf"),
        (b'{"sub":"u","exp":NaN}', "exp must be a finite number (NumericDate), got nan"),
        (b"[" * 5000 + b"]" * 5000, "malformed: a segment is not base64url-encoded JSON (nested too deep to read)"),
    ],
    ids=["iat-1e400", "exp--1e400", "exp-Infinity", "exp-NaN", "nested-5000"],
)
def test_numbers_no_clock_can_hold_and_deep_nesting_are_named_not_raised(payload: bytes, rule: str) -> None:
    explained = explain(_raw(payload), now=NOW)
    assert rule in explained.broken
    assert all(line.startswith(("header: ", "claims: ", "BROKEN: ")) for line in explained.lines())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["token", "mint", "--sub", "user_2x", "--curl", "http://[::1"], "--curl 'http://[::1' is not a URL"),
        (["token", "mint", "--sub", "user_2x", "--curl", "not-a-url"], "--curl must be an http(s) URL with a host"),
        (["issuer", "serve", "--port", "99999"], "--port must be from 0 to 65535, got 99999"),
    ],
)
def test_bad_token_and_issuer_options_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert main(args) == 2
    out = capsys.readouterr()
    assert out.err.strip() == f"iam-harness: {out.err.strip().removeprefix('iam-harness: ')}" and said in out.err
    assert out.out == ""


def test_a_key_home_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "file" / "keys"))  # under a file: no user can make it
    assert main(["issuer", "pem"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "set IAM_HARNESS_HOME to a directory" in err
