"""schemathesis as a conformance test of the reference app's own schema: every check, bounded and seeded, as a
signed-in Admin of an organisation of its own; no failure. Its config says what is deliberately beside the default
expectations, and why."""

from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from harness.clerk.issuer import ActiveOrg, Issuer, clerk_id
from harness.config.model import load_config
from harness.config.reference import default_config_path
from harness.target.running import EmbeddedTarget, origin_of

pytestmark = pytest.mark.e2e

CONFIG = (Path(__file__).parent / "app" / "schemathesis-conformance.toml").resolve()
MAX_EXAMPLES = "10"
SEED = "20261204"
RUN_TIMEOUT = 600


def test_schemathesis_finds_no_failure_in_the_apps_own_schema(tmp_path: Path) -> None:
    config = load_config(default_config_path())
    target = EmbeddedTarget(config, faults=(), log_path=Path(tempfile.mkdtemp(dir=tmp_path)) / "app.log")
    issuer = Issuer(issuer_url=config.issuer, authorized_party=origin_of(target.base_url), rng=random.Random(7))
    with target.running(issuer):
        rng = random.Random(7)
        admin = issuer.mint(clerk_id("user", rng), org=ActiveOrg(clerk_id("org", rng), "conformance"), ttl=3600)
        assert httpx.get(f"{target.base_url}/api/me", headers=admin.headers, timeout=10).status_code == 200
        done = subprocess.run(
            ["schemathesis", "--config-file", str(CONFIG), "run", f"{target.base_url}/openapi.json",
             "--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--workers", "1", "--no-color",
             "-H", f"Authorization: Bearer {admin.jwt}",
             "--exclude-path-regex", "^/webhooks/"],  # svix-signed deliveries only: C1 and I2 send those
            capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, cwd=tmp_path,  # its cache stays there
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout or " passed" in done.stdout, done.stdout[-3000:]
