"""Where the issuer's keys live: `$IAM_HARNESS_HOME`, else the user's cache directory; never the current one."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from harness.clerk.keystore import HOME_ENV, KeyStore


def test_keys_live_in_the_users_cache_unless_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(HOME_ENV, raising=False)
    assert KeyStore().path == Path(platformdirs.user_cache_dir("iam-harness")) / "keys.json"
    assert not KeyStore().home.is_relative_to(tmp_path)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "elsewhere"))
    assert KeyStore().path == tmp_path / "elsewhere" / "keys.json"
