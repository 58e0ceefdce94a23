"""Settings refuse every unsafe combination with one line naming the variable."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.config import AppMode, Settings, SettingsError, load_settings
from app.faults import Fault, parse_faults
from tests.app.support import ADMIN_EMAIL, APP_VARS, ISSUER, WEBHOOK_SECRET, app_environment, public_pem, run_app

JWKS_URL = "https://example.clerk.accounts.dev/.well-known/jwks.json"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey) -> pytest.MonkeyPatch:
    """A complete, valid production environment; tests change one variable at a time."""
    for name in APP_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@localhost/app")
    monkeypatch.setenv("CLERK_JWT_KEY", public_pem(signing_key))
    monkeypatch.setenv("CLERK_ISSUER", ISSUER)
    monkeypatch.setenv("ADMIN_EMAILS", ADMIN_EMAIL)
    return monkeypatch


def refusal(**overrides: str) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_valid_environment_is_read(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLERK_AUTHORIZED_PARTIES", "https://app.example.com, http://localhost:3000")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://app@localhost/app"
    assert settings.clerk_authorized_parties == ("https://app.example.com", "http://localhost:3000")
    assert settings.app_mode is AppMode.PRODUCTION
    assert settings.app_faults == frozenset()
    assert settings.database_app_role == "iam_app"
    assert "app@localhost" not in repr(settings)  # the URL may carry a password: never in a repr


def test_faults_are_refused_outside_test_mode(env: pytest.MonkeyPatch) -> None:
    env.setenv("APP_FAULTS", "default_allow")
    message = refusal()
    assert "APP_FAULTS" in message and "APP_MODE=test" in message


def test_faults_are_accepted_in_test_mode(env: pytest.MonkeyPatch) -> None:
    env.setenv("APP_MODE", "test")
    env.setenv("APP_FAULTS", "default_allow, no_org_scope")
    assert load_settings().app_faults == {Fault.DEFAULT_ALLOW, Fault.NO_ORG_SCOPE}


def test_an_unknown_fault_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("APP_MODE", "test")
    env.setenv("APP_FAULTS", "default_allow,no_such_fault")
    message = refusal()
    assert "APP_FAULTS" in message and "no_such_fault" in message


@pytest.mark.parametrize("variable", ["CLERK_ISSUER", "DATABASE_URL"])
def test_required_settings_are_named_when_missing(env: pytest.MonkeyPatch, variable: str) -> None:
    env.delenv(variable)
    assert refusal() == f"{variable} is required"


@pytest.mark.parametrize("blank", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_a_key_source_is_required_and_both_are_named(env: pytest.MonkeyPatch, blank: str | None) -> None:
    if blank is None:
        env.delenv("CLERK_JWT_KEY")
    else:
        env.setenv("CLERK_JWT_KEY", blank)
        env.setenv("CLERK_JWKS_URL", blank)
    message = refusal()
    assert message.startswith("CLERK_JWT_KEY or CLERK_JWKS_URL is required"), message


def test_both_key_sources_are_refused_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLERK_JWKS_URL", JWKS_URL)
    message = refusal()
    assert message.startswith("CLERK_JWT_KEY and CLERK_JWKS_URL are both set"), message


def test_a_jwks_url_alone_is_read(env: pytest.MonkeyPatch) -> None:
    env.delenv("CLERK_JWT_KEY")
    env.setenv("CLERK_JWKS_URL", f"  {JWKS_URL} ")
    settings = load_settings()
    assert (settings.clerk_jwks_url, settings.clerk_jwt_key) == (JWKS_URL, None)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.clerk.accounts.dev/.well-known/jwks.json",
        "file:///etc/jwks.json",
        "auth.example.com/.well-known/jwks.json",
        "https:///.well-known/jwks.json",
        "javascript:alert(1)",
        "https://example.clerk.accounts.dev:99999/.well-known/jwks.json",
    ],
)
def test_a_jwks_url_without_http_scheme_or_host_is_refused(env: pytest.MonkeyPatch, url: str) -> None:
    env.delenv("CLERK_JWT_KEY")
    env.setenv("CLERK_JWKS_URL", url)
    message = refusal()
    assert message.startswith("CLERK_JWKS_URL: must be an http(s) URL"), message
    assert url not in message  # a URL may carry credentials: never echoed


@pytest.mark.parametrize(
    ("url", "mode", "accepted"),
    [
        ("http://example.clerk.accounts.dev/.well-known/jwks.json", "production", False),
        ("http://user:pw@keys.example.com/jwks.json", "production", False),
        ("http://127.0.0.1:8787/.well-known/jwks.json", "production", True),
        ("http://[::1]:8787/.well-known/jwks.json", "production", True),
        ("http://localhost:8787/.well-known/jwks.json", "production", True),
        ("http://example.clerk.accounts.dev/.well-known/jwks.json", "test", True),
        (JWKS_URL, "production", True),
    ],
)
def test_keys_travel_over_https_outside_test_mode_and_loopback(
    env: pytest.MonkeyPatch, url: str, mode: str, accepted: bool
) -> None:
    env.delenv("CLERK_JWT_KEY")
    env.setenv("CLERK_JWKS_URL", url)
    env.setenv("APP_MODE", mode)
    if accepted:
        assert load_settings().clerk_jwks_url == url
        return
    message = refusal()
    assert message == "CLERK_JWKS_URL must be https unless APP_MODE=test or its host is loopback", message


def test_blank_issuer_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLERK_ISSUER", "  ")
    assert refusal().startswith("CLERK_ISSUER:")


@pytest.mark.parametrize(
    "key",
    [
        "not a pem",
        public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
    ],
    ids=["garbage", "rsa-1024"],
)
def test_unusable_keys_are_refused(env: pytest.MonkeyPatch, key: str) -> None:
    env.setenv("CLERK_JWT_KEY", key)
    assert refusal().startswith("CLERK_JWT_KEY:")


def test_a_non_rsa_key_is_refused(env: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env.setenv("CLERK_JWT_KEY", pem)
    assert "RSA" in refusal()


def test_a_one_line_pem_is_accepted(env: pytest.MonkeyPatch, signing_key: rsa.RSAPrivateKey) -> None:
    env.setenv("CLERK_JWT_KEY", public_pem(signing_key).replace("\n", "\\n"))
    assert (load_settings().clerk_jwt_key or "").startswith("-----BEGIN PUBLIC KEY-----\n")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://app@localhost/app"),
        ("APP_MODE", "staging"),
        ("CLERK_AUTHORIZED_PARTIES", "app.example.com"),
        ("DATABASE_APP_ROLE", "iam_app; DROP TABLE crm_contacts"),
        ("DATABASE_APP_ROLE", "Postgres"),
        ("DATABASE_APP_ROLE", ""),
    ],
)
def test_malformed_values_are_refused_by_name(env: pytest.MonkeyPatch, variable: str, value: str) -> None:
    env.setenv(variable, value)
    assert refusal().startswith(f"{variable}:")


def test_settings_object_refuses_faults_in_production(signing_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="APP_FAULTS is refused unless APP_MODE=test"):
        Settings(
            database_url="postgresql://x@localhost/y",
            clerk_jwt_key=public_pem(signing_key),
            clerk_issuer=ISSUER,
            app_faults=frozenset({Fault.SKIP_ROLE_SEED}),
        )


def test_parse_faults() -> None:
    assert parse_faults("") == frozenset()
    assert parse_faults(" first_user_not_admin ,, ") == {Fault.FIRST_USER_NOT_ADMIN}
    assert parse_faults(["skip_role_seed"]) == {Fault.SKIP_ROLE_SEED}
    with pytest.raises(ValueError, match="'nope'"):
        parse_faults("nope")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"APP_FAULTS": "default_allow"}, "error: APP_FAULTS is refused unless APP_MODE=test"),
        ({"CLERK_WEBHOOK_SECRET": "whsec_!!"}, "error: CLERK_WEBHOOK_SECRET: must look like whsec_<base64>"),
        ({"ADMIN_EMAILS": ""}, "error: ADMIN_EMAILS is required when APP_MODE=production"),
        (
            {"APP_PROVISIONING_FAILS_FOR": "user_2x"},
            "error: APP_PROVISIONING_FAILS_FOR is refused unless APP_MODE=test",
        ),
    ],
    ids=[
        "faults-outside-test-mode",
        "malformed-webhook-secret",
        "no-platform-admin",
        "provisioning-fails-outside-test",
    ],
)
@pytest.mark.e2e  # the app's command line in a subprocess
def test_serve_with_a_refused_setting_exits_2_with_one_line(
    signing_key: rsa.RSAPrivateKey, variables: dict[str, str], message: str
) -> None:
    environment = app_environment(
        DATABASE_URL="postgresql://app@localhost/app", CLERK_JWT_KEY=public_pem(signing_key), CLERK_ISSUER=ISSUER,
        **{"ADMIN_EMAILS": ADMIN_EMAIL, **variables},
    )  # fmt: skip
    done = run_app("serve", environment)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message), done.stderr
    assert "\n" not in done.stderr.strip() and done.stdout == ""


def test_a_webhook_secret_is_optional_and_blank_is_unset(env: pytest.MonkeyPatch) -> None:
    assert load_settings().clerk_webhook_secret is None
    env.setenv("CLERK_WEBHOOK_SECRET", "  ")
    assert load_settings().clerk_webhook_secret is None
    env.setenv("CLERK_WEBHOOK_SECRET", f" {WEBHOOK_SECRET} ")
    settings = load_settings()
    assert settings.clerk_webhook_secret == WEBHOOK_SECRET
    assert WEBHOOK_SECRET not in repr(settings)  # a secret: never in a repr


@pytest.mark.parametrize(
    "secret",
    [
        WEBHOOK_SECRET.removeprefix("whsec_"),  # the prefix dropped
        "sk_test_" + WEBHOOK_SECRET.removeprefix("whsec_"),  # another Clerk secret pasted by mistake
        "whsec_",
        "whsec_not base64!",
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # URL-safe alphabet: not svix's
        "whsec_" + base64.b64encode(b"short").decode(),
    ],
    ids=["no-prefix", "other-secret", "prefix-only", "not-base64", "urlsafe", "too-short"],
)
def test_a_malformed_webhook_secret_is_refused_by_name_without_echoing_it(env: pytest.MonkeyPatch, secret: str) -> None:
    env.setenv("CLERK_WEBHOOK_SECRET", secret)
    message = refusal()
    assert message.startswith("CLERK_WEBHOOK_SECRET: "), message
    assert secret == "whsec_" or secret not in message


def test_an_unpadded_webhook_secret_is_accepted(env: pytest.MonkeyPatch) -> None:
    unpadded = "whsec_" + base64.b64encode(b"\x01" * 25).decode().rstrip("=")
    env.setenv("CLERK_WEBHOOK_SECRET", unpadded)
    assert load_settings().clerk_webhook_secret == unpadded


def test_admin_emails_are_trimmed_and_lower_case(env: pytest.MonkeyPatch) -> None:
    env.setenv("ADMIN_EMAILS", " Ops@Example.COM , second@example.org,, ")
    assert load_settings().admin_emails == {"ops@example.com", "second@example.org"}


@pytest.mark.parametrize("blank", [None, "", " , "], ids=["unset", "empty", "only-commas"])
def test_production_refuses_to_start_without_admin_emails(env: pytest.MonkeyPatch, blank: str | None) -> None:
    if blank is None:
        env.delenv("ADMIN_EMAILS")
    else:
        env.setenv("ADMIN_EMAILS", blank)
    message = refusal()
    assert message.startswith("ADMIN_EMAILS is required when APP_MODE=production"), message


def test_test_mode_allows_no_platform_admin(env: pytest.MonkeyPatch) -> None:
    env.delenv("ADMIN_EMAILS")
    env.setenv("APP_MODE", "test")
    assert load_settings().admin_emails == frozenset()


def test_an_admin_email_without_at_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("ADMIN_EMAILS", "ops@example.com,ops")
    assert refusal() == "ADMIN_EMAILS: 'ops' is not an email address"


def test_provisioning_failures_are_test_mode_only(env: pytest.MonkeyPatch) -> None:
    env.setenv("APP_PROVISIONING_FAILS_FOR", "user_2a, user_2b")
    assert refusal() == "APP_PROVISIONING_FAILS_FOR is refused unless APP_MODE=test"
    env.setenv("APP_MODE", "test")
    assert load_settings().app_provisioning_fails_for == {"user_2a", "user_2b"}


@pytest.mark.parametrize(
    ("value", "host"),
    [
        (None, urlsplit(ISSUER).netloc),
        ("https://clerk.example.com", "clerk.example.com"),
        ("clerk.example.com", "clerk.example.com"),
        ("https://127.0.0.1:8443/", "127.0.0.1:8443"),
    ],
    ids=["the-issuers", "url", "bare-host", "with-port"],
)
def test_the_frontend_api_is_the_issuers_host_unless_set(env: pytest.MonkeyPatch, value: str | None, host: str) -> None:
    if value is not None:
        env.setenv("CLERK_FRONTEND_API", value)
    assert load_settings().frontend_api_host == host


def test_a_frontend_api_that_is_no_url_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLERK_FRONTEND_API", "ftp://clerk.example.com")
    assert refusal().startswith("CLERK_FRONTEND_API: must be the URL of the frontend API")
