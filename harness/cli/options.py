"""Checks of command-line values shared by the commands: each refusal one line naming the option."""

from __future__ import annotations

from urllib.parse import urlsplit

from harness.errors import ConfigError

__all__ = ["http_url"]


def http_url(option: str, url: str, *, instead: str | None = None) -> str:
    """`url`, if it is an http(s) URL with a host (and a port, if any, that is one); else a ConfigError naming
    `option` (and `instead`, what else it may be)."""
    wanted = f"{instead} or an http(s) URL with a host" if instead else "an http(s) URL with a host"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        raise ConfigError(f"{option} {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{option} must be {wanted}, got {url!r}")
    return url
