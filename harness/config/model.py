"""The target config file (TOML): what the harness may know of a target beyond its schema and pages.

Every field is validated when the file is read; an error names the file, the table and the field.
Placeholders in templates: `{sub}` (a Clerk user id), `{roles}` (a list of role names), `{marker}` (a canary
marker), `{id}` (a record id), `{<key>}` (the id of the same organisation's canary of resource `<key>`);
in `[embedded]`: `{python}`, `{host}`, `{port}`, `{database_url}`, `{jwt_key}`, `{issuer}`,
`{authorized_party}`, `{faults}`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "CanaryConfig",
    "DatabaseConfig",
    "EmbeddedConfig",
    "FuzzConfig",
    "IdentityConfig",
    "MembersConfig",
    "OperationRef",
    "PagesConfig",
    "PrincipalConfig",
    "RolesConfig",
    "TargetConfig",
    "WebhooksConfig",
    "load_config",
]

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
DEFAULT_ISSUER = "https://iam-harness.clerk.accounts.dev"


@dataclass(frozen=True)
class OperationRef:
    """An operation named as `METHOD /path`."""

    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class PagesConfig:
    """The server-rendered pages a browser scenario opens, and the landmark that proves each rendered."""

    dashboard: str
    sign_in: str
    dashboard_landmark: str
    denied_landmark: str


@dataclass(frozen=True)
class IdentityConfig:
    """Where the target tells a caller who they are: the operation and the fields of its answer."""

    me: str
    user_id: str
    org_id: str
    org_name: str
    roles: str
    personal_org_name: str
    admin_role: str


@dataclass(frozen=True)
class RolesConfig:
    """Where the target lists its roles, which roles a fresh deploy must have, and which may only read."""

    list: str | None  # None: the target does not list its roles, and O3 cannot be decided
    name: str
    permissions: str
    seeded: tuple[str, ...]
    read_only: tuple[str, ...]


@dataclass(frozen=True)
class MembersConfig:
    """How an organisation's admin adds a member (with no role) through the target's own API."""

    add: OperationRef
    body: dict[str, Any]
    param: str  # the path parameter that carries a member's user id


@dataclass(frozen=True)
class CanaryConfig:
    """How a canary record of one resource type is created and read back by its owner."""

    key: str
    param: str  # the path parameter that carries this resource's ids
    create: OperationRef
    body: dict[str, Any]
    id: str
    read: OperationRef


@dataclass(frozen=True)
class FuzzConfig:
    """What the fuzzer must know beyond the schema: operations to treat specially, and how hard to try."""

    public: tuple[OperationRef, ...] = ()
    self_only: tuple[OperationRef, ...] = ()
    never: tuple[OperationRef, ...] = ()
    cases: int = 8


@dataclass(frozen=True)
class PrincipalConfig:
    """A principal the config declares, for targets whose users the harness cannot mint (no Clerk)."""

    name: str
    org: str
    role: str | None
    headers: dict[str, str]
    login: dict[str, Any] | None  # {request, body, token, header, prefix}


@dataclass(frozen=True)
class DatabaseConfig:
    """How the harness may read the target's database (check C2), and which tables are not tenant data."""

    global_tables: frozenset[str]
    org_table: str
    org_column: str
    url: str | None  # None: the embedded target's own database, or none for a remote target


@dataclass(frozen=True)
class WebhooksConfig:
    """Where the target receives Clerk's svix-signed webhooks, and where the harness finds the secret."""

    clerk: str  # the path Clerk delivers to
    # a remote target's signing secret is read from this environment variable (its name, not a secret)
    secret_env: str = "CLERK_WEBHOOK_SECRET"  # noqa: S105


@dataclass(frozen=True)
class EmbeddedConfig:
    """How to start the target locally: command line and environment, both templated."""

    command: tuple[str, ...]
    env: dict[str, str]


@dataclass(frozen=True)
class TargetConfig:
    """Everything the harness knows of one target."""

    source: str
    schema: str
    health: str
    issuer: str
    pages: PagesConfig | None
    identity: IdentityConfig | None
    roles: RolesConfig
    members: MembersConfig | None
    canaries: tuple[CanaryConfig, ...]
    embedded: EmbeddedConfig | None
    fuzz: FuzzConfig = FuzzConfig()
    principals: tuple[PrincipalConfig, ...] = ()
    database: DatabaseConfig | None = None
    webhooks: WebhooksConfig | None = None

    @property
    def admin_role(self) -> str:
        """The role of an organisation's first user: the identity section's, else the first seeded role."""
        return self.identity.admin_role if self.identity else self.roles.seeded[0]


def load_config(path: Path) -> TargetConfig:
    """Read and validate a target config file; raise ConfigError naming what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return _Reader(str(path)).target(raw)


class _Reader:
    """Walks the parsed TOML, so that each error can say exactly where it is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"config {self.source}: {where} {message}")

    def table(self, raw: dict[str, Any], where: str, fields: set[str], optional: frozenset[str] = frozenset()) -> None:
        unknown = sorted(set(raw) - fields - optional)
        if unknown:
            raise self.fail(where, f"has unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(fields))}")
        missing = sorted(fields - set(raw))
        if missing:
            raise self.fail(where, f"is missing required field(s) {', '.join(missing)}")

    def sub(self, raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"[{where}]", "must be a table")
        return value

    def text(self, raw: dict[str, Any], key: str, where: str) -> str:
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
        return value

    def path(self, raw: dict[str, Any], key: str, where: str) -> str:
        value = self.text(raw, key, where)
        if not value.startswith("/"):
            raise self.fail(f"{where}.{key}", f"must be a path starting with '/', got {value!r}")
        return value

    def texts(self, raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = raw[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}.{key}", f"must be a non-empty list of strings, got {value!r}")
        return tuple(value)

    def operation(self, raw: dict[str, Any], key: str, where: str) -> OperationRef:
        value = self.text(raw, key, where)
        method, _, op_path = value.partition(" ")
        if method.upper() not in _METHODS or not op_path.startswith("/"):
            raise self.fail(
                f"{where}.{key}", f"must read 'METHOD /path' (METHOD one of {sorted(_METHODS)}), got {value!r}"
            )
        return OperationRef(method.upper(), op_path.strip())

    def body(self, raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = raw[key]
        if not isinstance(value, dict):
            raise self.fail(f"{where}.{key}", "must be an inline table (the JSON body template)")
        return value

    def target(self, raw: dict[str, Any]) -> TargetConfig:
        declared = "principals" in raw
        # Without declared principals the world is built through Clerk flows, which need these sections.
        required = {"target", "roles", "canaries"} | (set() if declared else {"identity", "members"})
        optional = frozenset({"embedded", "fuzz", "pages", "principals", "identity", "members", "database", "webhooks"})
        self.table(raw, "the file", required, optional)
        t = self.sub(raw, "target", "target")
        self.table(t, "[target]", {"schema", "health"}, frozenset({"issuer"}))
        issuer = self.text(t, "issuer", "target") if "issuer" in t else DEFAULT_ISSUER
        if not issuer.startswith("https://"):
            raise self.fail("target.issuer", f"must be an https:// URL as Clerk's are, got {issuer!r}")
        return TargetConfig(
            source=self.source,
            schema=self.path(t, "schema", "target"),
            health=self.path(t, "health", "target"),
            issuer=issuer,
            pages=self.pages(self.sub(raw, "pages", "pages")) if "pages" in raw else None,
            identity=self.identity(self.sub(raw, "identity", "identity")) if "identity" in raw else None,
            roles=self.roles(self.sub(raw, "roles", "roles")),
            members=self.members(self.sub(raw, "members", "members")) if "members" in raw else None,
            canaries=self.canaries(raw["canaries"]),
            embedded=self.embedded(raw["embedded"]) if "embedded" in raw else None,
            fuzz=self.fuzz(raw["fuzz"]) if "fuzz" in raw else FuzzConfig(),
            principals=self.principals(raw["principals"]) if declared else (),
            database=self.database(self.sub(raw, "database", "database")) if "database" in raw else None,
            webhooks=self.webhooks(self.sub(raw, "webhooks", "webhooks")) if "webhooks" in raw else None,
        )

    def webhooks(self, raw: dict[str, Any]) -> WebhooksConfig:
        self.table(raw, "[webhooks]", {"clerk"}, frozenset({"secret_env"}))
        secret_env = self.text(raw, "secret_env", "webhooks") if "secret_env" in raw else WebhooksConfig.secret_env
        if not secret_env.replace("_", "").isalnum():
            raise self.fail("webhooks.secret_env", f"must name an environment variable, got {secret_env!r}")
        return WebhooksConfig(clerk=self.path(raw, "clerk", "webhooks"), secret_env=secret_env)

    def database(self, raw: dict[str, Any]) -> DatabaseConfig:
        self.table(raw, "[database]", {"global_tables", "org_table", "org_column"}, frozenset({"url"}))
        return DatabaseConfig(
            global_tables=frozenset(self.texts(raw, "global_tables", "database")),
            org_table=self.text(raw, "org_table", "database"),
            org_column=self.text(raw, "org_column", "database"),
            url=self.text(raw, "url", "database") if "url" in raw else None,
        )

    def principals(self, raw: Any) -> tuple[PrincipalConfig, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("[[principals]]", "must declare at least one principal")
        out: list[PrincipalConfig] = []
        for n, entry in enumerate(raw):
            where = f"principals[{n}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "must be a table")
            self.table(entry, where, {"name", "org"}, frozenset({"role", "headers", "login"}))
            if ("headers" in entry) == ("login" in entry):
                raise self.fail(where, "must have exactly one of headers or login")
            headers = entry.get("headers", {})
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                raise self.fail(f"{where}.headers", "must be a table of strings")
            login = entry.get("login")
            if login is not None:
                if not isinstance(login, dict):
                    raise self.fail(f"{where}.login", "must be a table")
                self.table(login, f"{where}.login", {"request", "body", "token"}, frozenset({"header", "prefix"}))
                self.operation(login, "request", f"{where}.login")
                self.body(login, "body", f"{where}.login")
            role = entry.get("role")
            if role is not None and not isinstance(role, str):
                raise self.fail(f"{where}.role", f"must be a role name, got {role!r}")
            out.append(
                PrincipalConfig(
                    name=self.text(entry, "name", where),
                    org=self.text(entry, "org", where),
                    role=role,
                    headers=dict(headers),
                    login=dict(login) if login else None,
                )
            )
        return tuple(out)

    def pages(self, raw: dict[str, Any]) -> PagesConfig:
        self.table(raw, "[pages]", {"dashboard", "sign_in", "dashboard_landmark", "denied_landmark"})
        return PagesConfig(
            dashboard=self.path(raw, "dashboard", "pages"),
            sign_in=self.path(raw, "sign_in", "pages"),
            dashboard_landmark=self.text(raw, "dashboard_landmark", "pages"),
            denied_landmark=self.text(raw, "denied_landmark", "pages"),
        )

    def identity(self, raw: dict[str, Any]) -> IdentityConfig:
        fields = {"me", "user_id", "org_id", "org_name", "roles", "personal_org_name", "admin_role"}
        self.table(raw, "[identity]", fields)
        return IdentityConfig(
            me=self.path(raw, "me", "identity"),
            **{f: self.text(raw, f, "identity") for f in sorted(fields - {"me"})},
        )

    def roles(self, raw: dict[str, Any]) -> RolesConfig:
        self.table(raw, "[roles]", {"seeded", "read_only"}, frozenset({"list", "name", "permissions"}))
        seeded = self.texts(raw, "seeded", "roles")
        read_only = self.texts(raw, "read_only", "roles")
        if unknown := sorted(set(read_only) - set(seeded)):
            raise self.fail("roles.read_only", f"names roles that are not seeded: {', '.join(unknown)}")
        return RolesConfig(
            list=self.path(raw, "list", "roles") if "list" in raw else None,
            name=self.text(raw, "name", "roles") if "name" in raw else "name",
            permissions=self.text(raw, "permissions", "roles") if "permissions" in raw else "permissions",
            seeded=seeded,
            read_only=read_only,
        )

    def members(self, raw: dict[str, Any]) -> MembersConfig:
        self.table(raw, "[members]", {"add", "body", "param"})
        return MembersConfig(
            add=self.operation(raw, "add", "members"),
            body=self.body(raw, "body", "members"),
            param=self.text(raw, "param", "members"),
        )

    def canaries(self, raw: Any) -> tuple[CanaryConfig, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("[[canaries]]", "must list at least one resource type")
        out: list[CanaryConfig] = []
        for n, entry in enumerate(raw):
            where = f"canaries[{n}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "must be a table")
            self.table(entry, where, {"key", "param", "create", "body", "id", "read"})
            read = self.operation(entry, "read", where)
            if "{id}" not in read.path:
                raise self.fail(f"{where}.read", f"must contain '{{id}}', got {read}")
            key = self.text(entry, "key", where)
            if key in {c.key for c in out}:
                raise self.fail(f"{where}.key", f"repeats {key!r}")
            out.append(
                CanaryConfig(
                    key=key,
                    param=self.text(entry, "param", where),
                    create=self.operation(entry, "create", where),
                    body=self.body(entry, "body", where),
                    id=self.text(entry, "id", where),
                    read=read,
                )
            )
        return tuple(out)

    def fuzz(self, raw: Any) -> FuzzConfig:
        if not isinstance(raw, dict):
            raise self.fail("[fuzz]", "must be a table")
        self.table(raw, "[fuzz]", set(), frozenset({"public", "self", "never", "cases"}))

        def ops(key: str) -> tuple[OperationRef, ...]:
            values = raw.get(key, [])
            if not isinstance(values, list):
                raise self.fail(f"fuzz.{key}", "must be a list of 'METHOD /path'")
            return tuple(self.operation({key: v}, key, "fuzz") for v in values)

        cases = raw.get("cases", FuzzConfig.cases)
        if not isinstance(cases, int) or isinstance(cases, bool) or not 1 <= cases <= 500:
            raise self.fail("fuzz.cases", f"must be an integer from 1 to 500, got {cases!r}")
        return FuzzConfig(public=ops("public"), self_only=ops("self"), never=ops("never"), cases=cases)

    def embedded(self, raw: Any) -> EmbeddedConfig:
        if not isinstance(raw, dict):
            raise self.fail("[embedded]", "must be a table")
        self.table(raw, "[embedded]", {"command", "env"})
        env = raw["env"]
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise self.fail("embedded.env", "must be a table of strings")
        return EmbeddedConfig(command=self.texts(raw, "command", "embedded"), env=dict(env))
