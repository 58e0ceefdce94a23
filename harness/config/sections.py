"""The tables of a target config file, one pydantic model each: frozen, and refusing any field they do not know.

Each model validates what it can see by itself (paths start with '/', operations read `METHOD /path`, the
placeholders a template may use there); what needs two tables at once is checked by `TargetConfig`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    model_validator,
)

from harness.config.errors import FieldProblem, closest, describe
from harness.config.operations import OperationPattern, OperationRef, parse_operation, parse_pattern
from harness.config.placeholders import (
    ACCEPT,
    CONFIG_DIR,
    EMBEDDED,
    INVITE,
    MEMBERS,
    RUN,
    placeholders_in,
    unknown_placeholders,
)

__all__ = [
    "DEFAULT_ISSUER",
    "KNOWN_CHECKS",
    "NEVER_NOT_APPLICABLE",
    "AdminConfig",
    "CanaryConfig",
    "ChecksConfig",
    "DatabaseConfig",
    "EmbeddedConfig",
    "FuzzConfig",
    "IdSource",
    "IdentityConfig",
    "InvitesConfig",
    "LoginConfig",
    "MembersConfig",
    "PagesConfig",
    "PrincipalConfig",
    "ProvisioningConfig",
    "RolesConfig",
    "Section",
    "SetupRequest",
    "SignInFormConfig",
    "TargetSection",
    "WebhooksConfig",
    "check_placeholders",
]

DEFAULT_ISSUER = "https://iam-harness-12.clerk.accounts.dev"  # a development instance, by Clerk's key builder
# The catalogue's check ids (harness.checks.catalogue, a layer above this one; a test keeps the two equal).
KNOWN_CHECKS = ("M1", "M2", "M3", "M4", "O1", "O2", "O3", "O4", "O5", "O6", "C1", "C2", "C3", "I1", "I2", "I3")
# Default deny and tenant isolation are what the harness is for: no target may opt out of them.
NEVER_NOT_APPLICABLE = ("M3", "M4")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_PATH = re.compile(r"^(\$\.)?[^.\s]+(\.[^.\s]+)*$")
_SENT = re.compile(r"^\{sent:([^{}\s]+)\}$")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty string, got {describe(value)}")
    return value


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {describe(value)}")
    return value


def _json_path(value: str) -> str:
    if not _JSON_PATH.match(value):
        raise ValueError(f"expected a JSON path such as 'access_token' or '$.data.token', got {describe(value)}")
    return value


def _placeholder_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"expected a name of letters, digits and '_' (it is a placeholder), got {describe(value)}")
    return value


def _env_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"expected an environment variable's name (letters, digits, '_'), got {describe(value)}")
    return value


def _https(value: str) -> str:
    if not re.match(r"^https://[^/\s]+", value):
        raise ValueError(f"expected an https:// URL, as Clerk's issuers are, got {describe(value)}")
    return value


Text = Annotated[str, AfterValidator(_text)]
PathText = Annotated[str, AfterValidator(_path)]
JsonPath = Annotated[str, AfterValidator(_json_path)]
Operation = Annotated[
    OperationRef,
    PlainValidator(parse_operation),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z]+ /\S*$", "description": "METHOD /path"}),
]
Pattern = Annotated[
    OperationPattern,
    PlainValidator(parse_pattern),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^(\*|[A-Za-z]+) (\*|/\S*)$", "description": "METHOD /path; '*' globs"}
    ),
]
Status = Annotated[StrictInt, Field(ge=100, le=599)]


def check_placeholders(field: str | tuple[str | int, ...], template: Any, allowed: Iterable[str]) -> None:
    """Refuse a template using a placeholder not in `allowed`, naming the field and what is allowed there."""
    names = sorted(set(allowed))
    unknown = unknown_placeholders(template, names)
    if not unknown:
        return
    listed = ", ".join("{" + n + "}" for n in names) if names else "none"
    near = difflib.get_close_matches(unknown[0], names, n=1, cutoff=0.6)
    suggestion = f"; did you mean {{{near[0]}}}?" if near else ""
    raise FieldProblem(field, f"unknown placeholder {{{unknown[0]}}}; allowed here: {listed}{suggestion}")


class Section(BaseModel):
    """A table of the config file: frozen, and an unknown field is an error (a typo must not pass unseen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetSection(Section):
    """`[target]`: where the schema is (on the target, or a local file), the health path, the issuer trusted."""

    schema_: PathText | None = Field(
        default=None, alias="schema", description="the OpenAPI schema's path on the target"
    )
    schema_file: Text | None = Field(default=None, description="a local OpenAPI file (JSON or YAML)")
    health: PathText
    issuer: Annotated[str, AfterValidator(_https)] = DEFAULT_ISSUER

    @model_validator(mode="after")
    def _one_schema(self) -> TargetSection:
        if (self.schema_ is None) == (self.schema_file is None):
            raise FieldProblem(
                "schema", "give exactly one of schema (a path on the target) or schema_file (a local OpenAPI file)"
            )
        check_placeholders("schema", self.schema_, CONFIG_DIR)
        check_placeholders("schema_file", self.schema_file, CONFIG_DIR)
        return self


class SignInFormConfig(Section):
    """`[pages.sign_in_form]`: how a browser signs a declared principal in on the target's own sign-in page: the
    fields to type into (CSS selector -> the field of the principal's login body whose value is typed) and the
    button that submits them."""

    fields: Annotated[dict[Text, Text], Field(min_length=1)]
    submit: Text


class PagesConfig(Section):
    """The server-rendered pages a browser scenario opens, and the landmark that proves each rendered."""

    dashboard: PathText
    sign_in: PathText
    dashboard_landmark: Text
    denied_landmark: Text
    error_landmark: Text | None = Field(
        default=None, description="the error page's landmark (a server-side failure shown with a reference)"
    )
    failing_user: Text | None = Field(
        default=None, description="a Clerk user id whose provisioning the target is set to fail (its error page)"
    )
    denied_page: PathText | None = Field(
        default=None, description="the page a member without access opens (O2); default the dashboard"
    )
    denied_role: Text | None = Field(
        default=None, description="the role without access to denied_page; default a member without a role"
    )
    sign_in_form: SignInFormConfig | None = Field(
        default=None, description="how a declared principal signs in on sign_in (its login body typed in)"
    )


class AdminConfig(Section):
    """`[admin]`: the platform admin's page, and the email of a user the target lists as platform admin (in the
    session-token claim `claim`, as Clerk's session-token customisation puts it)."""

    page: PathText
    landmark: Text
    email: Text
    claim: Text = "email"
    refuses: dict[str, str] = Field(
        default_factory=dict,
        description="settings (environment) an embedded target started with must refuse to start, e.g. production"
        " mode without its admin list",
    )
    says: Text | None = Field(default=None, description="what that refusal must name, e.g. ADMIN_EMAILS")


class IdentityConfig(Section):
    """Where the target tells a caller who they are: the operation and the fields of its answer."""

    me: PathText
    user_id: Text
    org_id: Text
    org_name: Text
    roles: Text
    personal_org_name: Text
    _admin_role: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "admin_role" in data:
            raise FieldProblem("admin_role", "has moved: write it as `admin = ...` under [roles]")
        return data

    @property
    def admin_role(self) -> str | None:
        """The role a new organisation's first user gets: `[roles] admin`, kept here for readers of identity."""
        return self._admin_role


class RolesConfig(Section):
    """The target's roles as the harness must treat them; every field is optional."""

    admin: Text | None = Field(default=None, description="the organisation's administrator: succeeds on its own data")
    read_only: tuple[Text, ...] = Field(default=(), description="refused every mutating operation")
    other: tuple[Text, ...] = Field(default=(), description="neither admin nor read-only")
    seeded: tuple[Text, ...] = Field(default=(), description="what a fresh deploy must list (O3)")
    name: Text = Field(default="name", description="the field of a listed role holding its name")
    permissions: Text = Field(default="permissions", description="the field of a listed role holding its permissions")
    list: PathText | None = Field(default=None, description="where the target lists its roles (O3)")
    allow: dict[Text, tuple[Pattern, ...]] = Field(
        default_factory=dict,
        description="role -> the mutating operations it may perform on records it did not create; other "
        "non-admin roles are refused those",
    )

    @model_validator(mode="after")
    def _consistent(self) -> RolesConfig:
        for field in ("read_only", "other", "seeded"):
            values: tuple[str, ...] = getattr(self, field)
            if repeated := next((r for n, r in enumerate(values) if r in values[:n]), None):
                raise FieldProblem(field, f"repeats {repeated!r}")
        if self.admin is not None and self.admin in (*self.read_only, *self.other):
            kind = "read_only" if self.admin in self.read_only else "other"
            raise FieldProblem("admin", f"{self.admin!r} is also listed in {kind}: the admin role is neither")
        if both := next((r for r in self.other if r in self.read_only), None):
            raise FieldProblem("other", f"{both!r} is also listed in read_only: a role is one or the other")
        if self.list is not None and not self.seeded:
            raise FieldProblem("seeded", "required with list: the roles a fresh deploy must list")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Every role the config names (admin, read-only, other, seeded), each once, in that order."""
        return tuple(dict.fromkeys([*([self.admin] if self.admin else []), *self.read_only, *self.other, *self.seeded]))

    @property
    def member_roles(self) -> tuple[str, ...]:
        """The roles the Clerk world adds one member each of: read-only, other, then seeded but the admin."""
        return tuple(r for r in dict.fromkeys([*self.read_only, *self.other, *self.seeded]) if r != self.admin)


class MembersConfig(Section):
    """How an organisation's admin adds a member through the target's own API."""

    add: Operation
    body: dict[str, Any] = Field(description="the JSON body: {sub}, and {role} (one role) or {roles} (a list)")
    param: Text | None = Field(default=None, description="the path parameter carrying a member's user id")
    remove: Operation | None = Field(
        default=None, description="removes a member: {id}, the user id who-am-I names ([identity] user_id) (C3)"
    )
    set_roles: Operation | None = Field(default=None, description="replaces a member's roles: {id} (C3)")
    roles_body: dict[str, Any] | None = Field(
        default=None, description="set_roles's JSON body: {role} (one role) or {roles} (a list)"
    )

    @model_validator(mode="after")
    def _templated(self) -> MembersConfig:
        check_placeholders("add", self.add.path, MEMBERS)
        check_placeholders("body", self.body, MEMBERS)
        if not placeholders_in(self.body) & {"role", "roles"}:
            raise FieldProblem("body", "must carry the member's role: {role} (one role) or {roles} (a list)")
        for field in ("remove", "set_roles"):
            operation: Operation | None = getattr(self, field)
            if operation is not None:
                check_placeholders(field, operation.path, RUN | {"id"})
                if "id" not in placeholders_in(operation.path):
                    raise FieldProblem(field, "must name the member in its path: {id}")
        if self.set_roles is not None:
            if self.roles_body is None:
                raise FieldProblem("roles_body", "required with set_roles: the body that carries the new roles")
            check_placeholders("roles_body", self.roles_body, MEMBERS - {"sub"})
            if not placeholders_in(self.roles_body) & {"role", "roles"}:
                raise FieldProblem("roles_body", "must carry the roles: {role} (one role) or {roles} (a list)")
        return self


def _one_group(value: str) -> str:
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if compiled.groups < 1:
        raise ValueError("needs a group, ( ), around the token")
    return value


class InvitesConfig(Section):
    """`[invites]`: how an organisation's admin invites an address, and how the invitee accepts the mailed link (O5)."""

    create: Operation
    body: dict[str, Any] = Field(description="the JSON body: {email}, {role} (a role's name), {org} (its id)")
    accept: Operation
    accept_body: dict[str, Any] = Field(description="the JSON body accepting an invite: {token}")
    token: Annotated[str, AfterValidator(_one_group)] = Field(
        description="a regular expression whose first group is the token, searched in the delivered mail"
    )
    id: JsonPath | None = Field(default=None, description="the invite's id in the create answer (for `revoke`)")
    revoke: Operation | None = Field(default=None, description="revokes an invite: {id}")
    role: Text | None = Field(default=None, description="the role invited; default: the first of [roles] other")
    inviter: Text | None = Field(
        default=None,
        description="a role below [roles] admin that may invite: it invites an admin, which must be refused (OWASP "
        "API5); none: a role above the inviter's own is not tried",
    )
    email_claim: Text = Field(default="email", description="the session token's claim holding the address")
    expiring: dict[Text, Text] = Field(
        default_factory=dict,
        description="headers that make a new invite expire within `expiring_seconds` (a test-mode hook); none: "
        "whether an expired invite is refused is not known",
    )
    expiring_seconds: Annotated[StrictInt | StrictFloat, Field(gt=0, le=30)] = 1
    mail_seconds: Annotated[StrictInt | StrictFloat, Field(gt=0, le=120)] = Field(
        default=10, description="how long the mail of an invite may take to arrive"
    )

    @model_validator(mode="after")
    def _templated(self) -> InvitesConfig:
        check_placeholders("create", self.create.path, INVITE)
        check_placeholders("body", self.body, INVITE)
        if "email" not in placeholders_in(self.body):
            raise FieldProblem("body", "must carry the invited address: {email}")
        check_placeholders("accept", self.accept.path, ACCEPT)
        check_placeholders("accept_body", self.accept_body, ACCEPT)
        if "token" not in placeholders_in([self.accept.path, self.accept_body]):
            raise FieldProblem("accept_body", "must carry the mailed token: {token}")
        if self.revoke is not None:
            check_placeholders("revoke", self.revoke.path, RUN | {"id"})
            if self.id is None:
                raise FieldProblem("id", "required with revoke: where the create answer holds the invite's id")
        return self


def _form_flat(field: str, body: dict[str, Any] | None) -> None:
    if body and any(isinstance(v, dict | list) for v in body.values()):
        raise FieldProblem(field, "a form body is flat: each value a string, a number or a boolean")


class SetupRequest(Section):
    """`[[setup]]`: a request sent before the world is built (e.g. registering a principal's user)."""

    request: Operation
    content_type: Literal["json", "form"] = "json"
    body: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    expect: tuple[Status, ...] = Field(default=(), description="the statuses that count as done; default any 2xx")
    save: dict[Annotated[str, AfterValidator(_placeholder_name)], JsonPath] = Field(
        default_factory=dict,
        description="values of the answer kept as {name} for later setup, principals and canaries: name -> JSON path",
    )

    @model_validator(mode="after")
    def _templated(self) -> SetupRequest:
        # Its placeholders are checked by TargetConfig, which knows what earlier steps saved.
        if self.content_type == "form":
            _form_flat("body", self.body)
        return self

    def expected(self, status: int) -> bool:
        """Whether an answer with `status` means the request did what it is for."""
        return status in self.expect if self.expect else 200 <= status < 300


class LoginConfig(Section):
    """A principal's login: the request, where its answer carries the token, and how the token is presented."""

    request: Operation
    content_type: Literal["json", "form"] = "json"
    body: dict[str, Any] = Field(default_factory=dict)
    token: JsonPath | None = Field(
        default=None, description="a JSON path of the answer: 'access_token', '$.data.token'"
    )
    token_header: Text | None = Field(default=None, description="a response header carrying the token")
    token_cookie: Text | None = Field(default=None, description="a response cookie carrying the token")
    header: Text = Field(default="Authorization", description="the request header presenting the token")
    prefix: str = Field(default="Bearer ", description="written before the token in that header")
    cookie: Text | None = Field(default=None, description="present the token as this cookie instead of a header")

    @model_validator(mode="after")
    def _one_way(self) -> LoginConfig:
        sources = [s for s in ("token", "token_header", "token_cookie") if getattr(self, s) is not None]
        if len(sources) != 1:
            given = f" (given: {', '.join(sources)})" if sources else ""
            raise FieldProblem("token", f"give exactly one of token, token_header or token_cookie{given}")
        if self.cookie is not None and self.model_fields_set & {"header", "prefix"}:
            raise FieldProblem("cookie", "presents the token as a cookie: header and prefix do not apply")
        if self.content_type == "form":
            _form_flat("body", self.body)
        return self

    def templates(self) -> dict[str, Any]:
        """Its templated fields, for TargetConfig to check against the values known when it logs in."""
        return {"request": self.request.path, "body": self.body}


class PrincipalConfig(Section):
    """A principal the config declares, for targets whose users the harness cannot mint (no Clerk)."""

    name: Text
    org: Text
    role: Text | None = Field(default=None, description="one of [roles]'s; none: a member without a role")
    headers: dict[str, str] = Field(default_factory=dict, description="static headers (API keys, tokens)")
    login: LoginConfig | None = None
    org_id: Text | None = Field(
        default=None, description="the target's own id of the principal's organisation (a template: {run}, saved)"
    )
    user_id: Text | None = Field(
        default=None, description="the target's own id of the principal's user: username, email, number (a template)"
    )

    @model_validator(mode="after")
    def _one_way(self) -> PrincipalConfig:
        if ("headers" in self.model_fields_set) == (self.login is not None):
            raise FieldProblem("headers", "give exactly one of headers (static) or login (a login request)")
        return self

    def templates(self) -> dict[str, Any]:
        """Its templated fields (the login's under `login.`), for TargetConfig to check."""
        found: dict[str, Any] = {"headers": self.headers, "org_id": self.org_id, "user_id": self.user_id}
        if self.login is not None:
            found |= {f"login.{k}": v for k, v in self.login.templates().items()}
        return found


@dataclass(frozen=True)
class IdSource:
    """Where a created record's id is found: a JSON path of the answer, its Location header, or the body sent."""

    kind: Literal["json", "location", "sent"]
    path: str = ""  # the JSON path (json), or the body field sent (sent)


class CanaryConfig(Section):
    """How a canary record of one resource type is created and read back by its owner."""

    key: Text = Field(description="the resource's name; {key} is its id in later canaries' templates")
    param: Text = Field(description="the path parameter carrying this resource's ids")
    create: Operation
    body: dict[str, Any]
    id: Text = Field(description="a JSON path of the create answer, '{location}', or '{sent:<body field>}'")
    read: Operation

    @model_validator(mode="after")
    def _shape(self) -> CanaryConfig:
        if not _NAME.match(self.key):
            raise FieldProblem(
                "key", f"expected a name of letters, digits and '_' (it is a placeholder), got {self.key!r}"
            )
        if self.key in {"marker", "id", "run", "secret", "location"}:
            raise FieldProblem("key", f"{self.key!r} is a placeholder of its own; name the resource otherwise")
        if "{id}" not in self.read.path:
            raise FieldProblem("read", f"must contain {{id}} (where the record's id goes), got {str(self.read)!r}")
        source = self.id_source
        if source.kind == "sent" and _sent_value(self.body, source.path) is None:
            raise FieldProblem("id", f"{{sent:{source.path}}} names no field of body; body has: {', '.join(self.body)}")
        if source.kind == "json" and not _JSON_PATH.match(self.id):
            raise FieldProblem("id", f"expected a JSON path, '{{location}}' or '{{sent:<field>}}', got {self.id!r}")
        return self

    @property
    def id_source(self) -> IdSource:
        """Where the create answer's id is found."""
        if self.id == "{location}":
            return IdSource("location")
        if sent := _SENT.match(self.id):
            return IdSource("sent", sent.group(1))
        return IdSource("json", self.id)


def _sent_value(body: Any, dotted: str) -> Any:
    node = body
    for step in dotted.split("."):
        if not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


class ChecksConfig(Section):
    """`[checks]`: the checks this target cannot have, each with the reason the report shows."""

    not_applicable: dict[str, Text] = Field(default_factory=dict, description="check id -> why it cannot apply")

    @model_validator(mode="after")
    def _known(self) -> ChecksConfig:
        for check_id in self.not_applicable:
            if check_id in NEVER_NOT_APPLICABLE:
                raise FieldProblem(
                    "not_applicable",
                    f"{check_id} can never be N/A: default deny and tenant isolation apply to every target",
                )
            if check_id not in KNOWN_CHECKS:
                raise FieldProblem(
                    "not_applicable",
                    f"unknown check {check_id!r}; known: {', '.join(KNOWN_CHECKS)}{closest(check_id, KNOWN_CHECKS)}",
                )
        return self


class FuzzConfig(Section):
    """What the fuzzer must know beyond the schema: operations to treat specially, and how hard to try."""

    public: tuple[Pattern, ...] = Field(default=(), description="callable by anyone")
    self_only: tuple[Pattern, ...] = Field(default=(), alias="self", description="about the caller alone")
    never: tuple[Pattern, ...] = Field(default=(), description="never called, by any phase (e.g. a reset)")
    staff: tuple[Pattern, ...] = Field(
        default=(), description="beyond every principal of the world, its admins included (the platform's staff's)"
    )
    cases: Annotated[StrictInt, Field(ge=1, le=500)] = 8
    max_requests: Annotated[StrictInt, Field(ge=1)] = 50_000
    max_seconds: Annotated[StrictInt | StrictFloat, Field(gt=0)] = 600
    per_operation: Annotated[StrictInt, Field(ge=1)] = Field(default=2000, description="requests per operation")
    privileged: dict[Text, Any] = Field(
        default_factory=dict,
        description="privileged body fields to try beyond the defaults, each with the value to try (role = 'staff')",
    )
    returns_secret: tuple[Pattern, ...] = Field(
        default=(), description="operations whose answers may carry the run's {secret} (e.g. creating an API key)"
    )


class DatabaseConfig(Section):
    """How the harness may read the target's database (check C2), and which tables are not tenant data."""

    global_tables: Annotated[frozenset[Text], Field(min_length=1)]
    org_table: Text
    org_column: Text
    url: Text | None = None  # None: the embedded target's own database, or none for a remote target
    append_only: frozenset[Text] = Field(
        default=frozenset(),
        description="tables that grow with every request (audit logs, events): never compared by row counts (I1, I2)",
    )


class ProvisioningConfig(Section):
    """`[provisioning]`: how check I1 races a new user's first requests, and how it makes one fail midway."""

    racers: Annotated[StrictInt, Field(ge=2, le=200)] = Field(
        default=50, description="first requests of one new user, released together"
    )
    fail_midway: dict[Text, Text] = Field(
        default_factory=dict,
        description="headers that make the target fail a first login between creating the organisation and "
        "granting its role (a test-mode hook); none: whether a failure leaves a half-made user is not known",
    )


class WebhooksConfig(Section):
    """Where the target receives Clerk's svix-signed webhooks, and where the harness finds the secret."""

    clerk: PathText = Field(description="the path Clerk delivers to")
    roles: dict[Text, Text] = Field(
        default_factory=dict,
        description="Clerk organisation role (`org:admin`) -> the target's role it maps to (I2); none: only "
        "`org:admin`, as [roles] admin",
    )
    # a remote target's signing secret is read from this environment variable (its name, not a secret)
    secret_env: Annotated[str, AfterValidator(_env_name)] = "CLERK_WEBHOOK_SECRET"  # noqa: S105


class EmbeddedConfig(Section):
    """How to start the target locally: command line and environment, both templated."""

    command: Annotated[tuple[Text, ...], Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _templated(self) -> EmbeddedConfig:
        check_placeholders("command", self.command, EMBEDDED)
        check_placeholders("env", self.env, EMBEDDED)
        return self
