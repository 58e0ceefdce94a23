"""Starting a run's target: plan it (embedded or at a URL), make the issuer it will trust, start it, stop it.

The pytest plugin and the CLI's `plan` command start targets the same way, through `launch`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.clerk.issuer import Issuer
from harness.clerk.keystore import KeyStore
from harness.config.model import TargetConfig
from harness.target.running import EmbeddedTarget, RemoteTarget, Target, origin_of

__all__ = ["launch"]


@contextmanager
def launch(
    config: TargetConfig,
    where: str,
    *,
    faults: tuple[str, ...],
    log_path: Path,
    seed: int,
    planned: Callable[[str], None] | None = None,
) -> Iterator[tuple[Target, Issuer]]:
    """Start the target `where` names (`embedded`, or a base URL) and yield it with its issuer; stop it after.

    `planned` hears the target's description before it starts, so that a failure to start can name it.
    """
    target: EmbeddedTarget | RemoteTarget
    if where == "embedded":
        target = EmbeddedTarget(config, faults=faults, log_path=log_path)
    else:
        target = RemoteTarget(where, config)
    # The project's stored key: tokens from `iam-harness token mint` work on the embedded target too.
    issuer = KeyStore().issuer(
        issuer_url=config.issuer, authorized_party=origin_of(target.base_url), rng=random.Random(seed)
    )
    if planned is not None:
        planned(target.description)
    with target.running(issuer) as running:
        yield running, issuer
