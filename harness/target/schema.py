"""The target's OpenAPI schema: from the config's local `schema_file`, else read anonymously from the target."""

from __future__ import annotations

from typing import Any

import httpx

from harness.config.model import TargetConfig, load_schema_file
from harness.errors import TargetUnreachable

__all__ = ["read_schema"]

SCHEMA_TIMEOUT = 10.0


def read_schema(config: TargetConfig, base_url: str, transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """The OpenAPI document; TargetUnreachable naming the answer when the target serves none (ConfigError when
    the local file is unusable)."""
    if config.schema_file is not None:
        return load_schema_file(config)
    url = base_url.rstrip("/") + str(config.schema)
    try:
        with httpx.Client(transport=transport, timeout=SCHEMA_TIMEOUT) as client:
            answer = client.get(url)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"no OpenAPI schema at {url}: no answer ({type(exc).__name__})") from None
    try:
        document = answer.json()
    except ValueError:
        document = None
    if answer.status_code != 200 or not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        excerpt = " ".join(answer.text.split())[:200]
        raise TargetUnreachable(f"no OpenAPI schema at {url}: {answer.status_code} {excerpt}".rstrip())
    return document
