"""The embedded reference app as the benchmarks start it: its shipped config, a fresh log, an issuer of the seed."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from harness.clerk.issuer import Issuer
from harness.config.model import TargetConfig, load_config
from harness.config.reference import default_config_path
from harness.target.running import EmbeddedTarget, origin_of

__all__ = ["reference_app"]


def reference_app(seed: int) -> tuple[TargetConfig, EmbeddedTarget, Issuer]:
    """The reference app's config, the (not yet started) embedded target and the issuer it will trust."""
    config = load_config(default_config_path())
    target = EmbeddedTarget(config, faults=(), log_path=Path(tempfile.mkdtemp()) / "app.log")
    issuer = Issuer(issuer_url=config.issuer, authorized_party=origin_of(target.base_url), rng=random.Random(seed))
    return config, target, issuer
