"""The one placeholder syntax of a target config: `{name}`, filled from values the harness knows at that point.

Which names a field may use depends on where it is (the sets below); the config reader refuses any other name
at load time, so a template filled later never meets a name it cannot fill. `{{` and `}}` stand for literal
braces.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CANARY",
    "CONFIG_DIR",
    "EMBEDDED",
    "MEMBERS",
    "RUN",
    "SETUP",
    "fill_template",
    "placeholders_in",
    "run_values",
    "unknown_placeholders",
]

# `{{`, `}}`, or one placeholder; whatever is between the braces is its name (a name the reader then checks).
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")

CONFIG_DIR = frozenset({"config_dir"})
EMBEDDED = (
    frozenset(
        {
            "python",
            "host",
            "port",
            "database_url",
            "jwt_key",
            "jwks_url",
            "issuer",
            "authorized_party",
            "webhook_secret",
            "faults",
            "smtp_host",
            "smtp_port",
        }
    )
    | CONFIG_DIR
)
RUN = frozenset({"run", "secret"})  # the run values: known before anything is sent, the same for one seed
SETUP = RUN | {"marker"}  # `[[setup]]`, a principal's `login` and `headers`
MEMBERS = RUN | {"sub", "roles", "role"}  # `[members] body`
INVITE = RUN | {"email", "role", "org"}  # `[invites] body`: the address, the role's name, the organisation's id
ACCEPT = RUN | {"token"}  # `[invites] accept_body`
# A canary's create path and body, plus the keys of canaries declared before it: `{marker}` is content, which must
# never show outside its organisation; `{handle}` an identifier, which a public operation may show to anyone.
CANARY = RUN | {"marker", "handle"}


def placeholders_in(template: Any) -> set[str]:
    """Every placeholder name used anywhere in a template (strings, and lists and tables of them)."""
    if isinstance(template, str):
        return {m.group(1) for m in _TOKEN.finditer(template) if m.group(1) is not None}
    if isinstance(template, Mapping):
        return {name for value in template.values() for name in placeholders_in(value)}
    if isinstance(template, list | tuple):
        return {name for value in template for name in placeholders_in(value)}
    return set()


def unknown_placeholders(template: Any, allowed: Iterable[str]) -> list[str]:
    """The placeholder names a template uses that `allowed` does not list, sorted."""
    return sorted(placeholders_in(template) - set(allowed))


def fill_template(template: Any, values: Mapping[str, Any]) -> Any:
    """A template with its `{name}` placeholders filled, recursively through lists and tables.

    A string that is one placeholder whole takes the value as it is (so `"{roles}"` can become a list and
    `"{role}"` null); inside a longer string a value is written as text (null as nothing, lists and tables as
    JSON). A placeholder with no value is left as it is, so a caller can tell what it could not fill.
    """
    if isinstance(template, str):
        whole = _TOKEN.fullmatch(template)
        if whole is not None and whole.group(1) is not None and whole.group(1) in values:
            return values[whole.group(1)]
        return _TOKEN.sub(lambda m: _text(m, values), template)
    if isinstance(template, Mapping):
        return {key: fill_template(value, values) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [fill_template(value, values) for value in template]
    return template


def _text(match: re.Match[str], values: Mapping[str, Any]) -> str:
    name = match.group(1)
    if name is None:
        return match.group(0)[0]  # `{{` -> `{`, `}}` -> `}`
    if name not in values:
        return match.group(0)
    value = values[name]
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def run_values(seed: int) -> dict[str, str]:
    """The run values for one seed: `{run}` (unique to the run), `{secret}` (a password), `{marker}` (text to
    find again). Derived from the seed, so the same seed reproduces the same users."""
    rng = random.Random(f"{seed}|run-values")
    run = f"{rng.getrandbits(40):010x}"
    # A password most sign-up policies accept: upper and lower case, digits and a symbol, 24 characters.
    secret = "Pw-" + "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(18))
    return {"run": run, "secret": secret + "-9", "marker": f"run{run}"}
