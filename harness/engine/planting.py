"""Planting a record: created by an organisation's owner as its config says, its id found, read back; adding a
member the same way.

The world plants each organisation's canaries and scratch records this way before anything is fuzzed; the
fuzzer plants a scratch record again when one is gone (deleted by an earlier probe, or with its parent), so
that every probe of an operation addresses a record that exists when it is sent.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from harness.config.model import CanaryConfig, MembersConfig
from harness.config.placeholders import fill_template, placeholders_in
from harness.engine.exchange import Caller, Exchange, lookup
from harness.engine.world import Canary

__all__ = ["Planted", "add_member", "id_text", "plant", "role_values"]


@dataclass(frozen=True)
class Planted:
    """What planting one record gave: the record, or why there is none."""

    canary: Canary | None
    problem: str | None = None


def plant(
    org: str,
    owner: Caller,
    resource: CanaryConfig,
    rng: random.Random,
    run: Mapping[str, str],
    ids: Mapping[str, str],
    *,
    scratch: bool,
    fresh: Callable[[], None] = lambda: None,
) -> Planted:
    """Create one record of `resource` as `owner`, every string field carrying a marker unique to it; `ids` are the
    ids of the organisation's records of the resources declared before it (`{contacts}` in a path or body);
    `fresh` is called before each request (to present a new token when the one presented is old)."""
    kind = "scratch" if scratch else "canary"
    marker = f"{kind}{org}x{rng.getrandbits(48):012x}"
    handle = f"h{kind}{org}x{rng.getrandbits(48):012x}"
    values = {**run, **ids, "marker": marker, "handle": handle}
    # An id goes into a path as one segment, whatever it holds (a title may have spaces).
    in_path = {**values, **{key: quote(value, safe="") for key, value in ids.items()}}
    if missing := sorted(placeholders_in(resource.create.path) - set(values)):
        return Planted(None, f"{org}: no {resource.key} {kind}: {resource.create} names {missing[0]}, not planted")
    create_path = str(fill_template(resource.create.path, in_path))
    body = fill_template(resource.body, values)
    fresh()
    created = owner.call(resource.create.method, create_path, body)
    record_id = _record_id(resource, created, body) if created.ok else None
    if record_id is None:
        return Planted(None, f"{org} admin could not create a {resource.key} {kind}: {_no_id(resource, created)}")
    read_path = str(fill_template(resource.read.path, {**in_path, "id": quote(record_id, safe="")}))
    fresh()
    read = owner.call(resource.read.method, read_path)
    if not read.ok or marker not in read.text:
        return Planted(None, f"{org} admin could not read back its {resource.key} {kind}: {read.line()}")
    handles = (handle,) if "handle" in placeholders_in(resource.body) else ()
    return Planted(Canary(org, resource.key, marker, record_id, read_path, read.json(), handles=handles))


def role_values(roles: list[str]) -> dict[str, Any]:
    """What `[members]` templates are filled with for a member holding `roles`: `{roles}` the list, `{role}` the
    first (null for none)."""
    return {"roles": roles, "role": roles[0] if roles else None}


def add_member(owner: Caller, members: MembersConfig, sub: str, role: str | None, run: Mapping[str, str]) -> Exchange:
    """`owner` adds the Clerk user `sub` to its organisation with `role` (None: with no role), as [members] says:
    `{role}` is the one role (null for none), `{roles}` a list of them (empty for none)."""
    member = {**run, "sub": sub, **role_values([role] if role else [])}
    path = str(fill_template(members.add.path, member))
    return owner.call(members.add.method, path, fill_template(members.body, member))


def _record_id(resource: CanaryConfig, created: Exchange, sent: Any) -> str | None:
    """The created record's id, where the config says to find it."""
    source = resource.id_source
    if source.kind == "sent":
        return id_text(lookup(sent, source.path))
    if source.kind == "location":
        location = next((v for k, v in created.headers.items() if k.lower() == "location"), "")
        segment = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        return unquote(segment) or None
    return id_text(lookup(created.json(), source.path))


def _no_id(resource: CanaryConfig, created: Exchange) -> str:
    if not created.ok:
        return created.line()
    source = resource.id_source
    place = {"json": f"no id at {source.path!r}", "location": "no Location header", "sent": "no id sent"}[source.kind]
    return f"{created.line()} ({place})"


def id_text(value: Any) -> str | None:
    """An id as text: a non-empty string or an integer (never a boolean), else None."""
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None
