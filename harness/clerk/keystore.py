"""The issuer's keys, kept in one folder per user so that every command of the harness agrees on them.

`iam-harness token mint`, `iam-harness issuer pem`, the JWKS server and the embedded target all load the
same keys from `$IAM_HARNESS_HOME/keys.json`, else from the user's cache directory (`~/.cache/iam-harness` on
Linux), never from the current directory: private keys must not land in whatever project a command runs in,
nor differ with where it runs. `iam-harness issuer rotate` starts the next key, the old one staying in the
JWKS until retired. The file holds private keys: it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

import platformdirs
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.clerk.issuer import Issuer, load_private_pem, private_pem
from harness.errors import ConfigError

__all__ = ["HOME_ENV", "KeyStore", "default_home"]

HOME_ENV = "IAM_HARNESS_HOME"
APP_NAME = "iam-harness"


def default_home() -> Path:
    """Where the keys live: `$IAM_HARNESS_HOME`, else the user's cache directory for iam-harness."""
    return Path(os.environ.get(HOME_ENV) or platformdirs.user_cache_dir(APP_NAME))


class KeyStore:
    """Signing keys on disk, oldest first; the last one signs."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or default_home()
        self.path = self.home / "keys.json"

    def issuer(self, *, issuer_url: str, authorized_party: str, rng: random.Random) -> Issuer:
        """An issuer signing with the stored keys; the first use creates one key."""
        keys = self._read()
        if not keys:
            fresh = Issuer(issuer_url=issuer_url, authorized_party=authorized_party, rng=rng)
            self._write(fresh)
            return fresh
        return Issuer(issuer_url=issuer_url, authorized_party=authorized_party, rng=rng, keys=keys)

    def save(self, issuer: Issuer) -> None:
        """Store the issuer's keys (after a rotation or a retirement)."""
        self._write(issuer)

    def _read(self) -> list[tuple[str, rsa.RSAPrivateKey]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return [(entry["kid"], load_private_pem(entry["pem"])) for entry in document["keys"]]
        except FileNotFoundError:
            return []
        except (NotADirectoryError, PermissionError) as exc:  # the home itself is no place for keys
            raise self._unusable(exc) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the key file {self.path} is unreadable ({exc}); move it away to start afresh") from None

    def _write(self, issuer: Issuer) -> None:
        document = {"keys": [{"kid": kid, "pem": private_pem(key)} for kid, key in issuer.keys]}
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".keys-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)  # atomic: a concurrent reader sees the old file or the new, never half
        except OSError as exc:
            raise self._unusable(exc) from None

    def _unusable(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot keep the signing keys in {self.home} ({exc.strerror or exc}); set IAM_HARNESS_HOME to a "
            "directory this user can write"
        )
