"""`TargetConfig`: the whole config file, and what can only be checked with several of its tables at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from harness.config.errors import FieldProblem
from harness.config.operations import OperationPattern, OperationRef
from harness.config.placeholders import CANARY, RUN, SETUP, fill_template
from harness.config.sections import (
    AdminConfig,
    CanaryConfig,
    ChecksConfig,
    DatabaseConfig,
    EmbeddedConfig,
    FuzzConfig,
    IdentityConfig,
    InvitesConfig,
    MembersConfig,
    PagesConfig,
    PrincipalConfig,
    ProvisioningConfig,
    RolesConfig,
    Section,
    SetupRequest,
    TargetSection,
    WebhooksConfig,
    check_placeholders,
)

__all__ = ["TargetConfig"]


class TargetConfig(Section):
    """Everything the harness knows of one target beyond its schema and pages, as its config file says it."""

    target: TargetSection
    pages: PagesConfig | None = None
    admin: AdminConfig | None = None
    identity: IdentityConfig | None = None
    roles: RolesConfig = RolesConfig()
    members: MembersConfig | None = None
    invites: InvitesConfig | None = None
    provisioning: ProvisioningConfig = ProvisioningConfig()
    setup: tuple[SetupRequest, ...] = Field(default=(), description="[[setup]]: sent in order before the world")
    principals: tuple[PrincipalConfig, ...] = ()
    canaries: Annotated[tuple[CanaryConfig, ...], Field(min_length=1)]
    checks: ChecksConfig = ChecksConfig()
    fuzz: FuzzConfig = FuzzConfig()
    database: DatabaseConfig | None = None
    webhooks: WebhooksConfig | None = None
    embedded: EmbeddedConfig | None = None
    _source: str = PrivateAttr(default="<config>")
    _config_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> TargetConfig:
        context = info.context if isinstance(info.context, dict) else {}
        self._source = str(context.get("source", self._source))
        self._config_dir = Path(context.get("config_dir", self._config_dir))
        if self.identity is not None:
            self.identity._admin_role = self.roles.admin
        self._clerk_world_needs()
        self._principals_consistent()
        self._setup_consistent()
        self._canaries_consistent()
        self._roles_allowed()
        self._pages_consistent()
        self._inviter_known()
        return self

    @property
    def saved(self) -> tuple[str, ...]:
        """The names `[[setup]]` steps save from their answers, in order: `{name}` in later templates."""
        return tuple(dict.fromkeys(name for step in self.setup for name in step.save))

    def _setup_consistent(self) -> None:
        earlier: list[str] = []
        for n, step in enumerate(self.setup):
            for field in ("request", "body", "headers"):
                template = step.request.path if field == "request" else getattr(step, field)
                check_placeholders(("setup", n, field), template, SETUP | set(earlier))
            for name in step.save:
                if name in SETUP | CANARY | RUN or name in (c.key for c in self.canaries):
                    raise FieldProblem(("setup", n, "save"), f"{name!r} is a placeholder of its own; save it otherwise")
            earlier += step.save
        saved = set(self.saved)
        for n, principal in enumerate(self.principals):
            for field, template in principal.templates().items():
                check_placeholders(("principals", n, *field.split(".")), template, SETUP | saved)

    def _roles_allowed(self) -> None:
        known = self.roles.names
        for role in self.roles.allow:
            if role not in known:
                listed = ", ".join(known)
                raise FieldProblem(("roles", "allow"), f"{role!r} is no role [roles] names; it names: {listed}")
            if role == self.roles.admin:
                raise FieldProblem(("roles", "allow"), f"{role!r} is the admin role, allowed everything already")

    def _inviter_known(self) -> None:
        inviter = None if self.invites is None else self.invites.inviter
        if inviter is None:
            return
        if self.roles.admin is None:
            raise FieldProblem(("roles", "admin"), "required with [invites] inviter: the role it must not invite")
        if inviter == self.roles.admin:
            raise FieldProblem(("invites", "inviter"), f"{inviter!r} is the admin role; the inviter holds less")
        if inviter not in self.roles.member_roles:
            listed = ", ".join(self.roles.member_roles) or "none"
            raise FieldProblem(
                ("invites", "inviter"), f"{inviter!r} is no member role [roles] names; it names: {listed}"
            )

    def _pages_consistent(self) -> None:
        if self.pages is None:
            return
        role = self.pages.denied_role
        if role is not None and role not in self.roles.names:
            listed = ", ".join(self.roles.names) or "none"
            raise FieldProblem(("pages", "denied_role"), f"{role!r} is no role [roles] names; it names: {listed}")
        form = self.pages.sign_in_form
        if form is None:
            return
        logins = [(n, p.login) for n, p in enumerate(self.principals) if p.login is not None]
        if not logins:
            raise FieldProblem(
                ("pages", "sign_in_form"), "types a principal's login body in, but no [[principals]] has a login"
            )
        typed = set(form.fields.values())
        if not any(typed <= login.body.keys() for _, login in logins):  # the others sign in by their cookies alone
            n, login = logins[0]
            missing = ", ".join(sorted(typed - login.body.keys()))
            raise FieldProblem(
                ("pages", "sign_in_form", "fields"),
                f"types {missing}, which no principal's login body has (principal {self.principals[n].name!r}'s lacks)",
            )

    def _clerk_world_needs(self) -> None:
        if self.principals:
            return
        why = "without [[principals]] the world is built through Clerk sign-ins"
        if self.identity is None:
            raise FieldProblem("identity", f"required: {why}, which learn who the caller is from [identity]")
        if self.members is None:
            raise FieldProblem("members", f"required: {why}, and members are added through [members]")
        if self.roles.admin is None:
            raise FieldProblem(
                ("roles", "admin"), f"required: {why}; it is the role a new organisation's first user gets"
            )

    def _principals_consistent(self) -> None:
        known = self.roles.names
        seen: set[str] = set()
        for n, principal in enumerate(self.principals):
            if principal.name in seen:
                raise FieldProblem(
                    ("principals", n, "name"), f"repeats {principal.name!r}: each principal's name is its own"
                )
            seen.add(principal.name)
            if principal.role is not None and principal.role not in known:
                listed = ", ".join(known) if known else "none (give admin, read_only, other or seeded)"
                raise FieldProblem(
                    ("principals", n, "role"),
                    f"principal {principal.name!r} has role {principal.role!r}, which [roles] does not name; "
                    f"[roles] names: {listed}",
                )
        if self.principals and self.roles.admin is not None:
            for org in dict.fromkeys(p.org for p in self.principals):
                if not any(p.org == org and p.role == self.roles.admin for p in self.principals):
                    raise FieldProblem(
                        "principals",
                        f"organisation {org!r} has no principal with the admin role {self.roles.admin!r}, "
                        "who creates its canaries",
                    )

    def _canaries_consistent(self) -> None:
        earlier: list[str] = []
        for n, canary in enumerate(self.canaries):
            if canary.key in earlier:
                raise FieldProblem(("canaries", n, "key"), f"repeats {canary.key!r}: each resource type once")
            allowed = CANARY | set(earlier) | set(self.saved)
            check_placeholders(("canaries", n, "create"), canary.create.path, allowed)
            check_placeholders(("canaries", n, "body"), canary.body, allowed)
            check_placeholders(("canaries", n, "read"), canary.read.path, allowed | {"id"})
            earlier.append(canary.key)

    # -- what consumers read -----------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The file this config was read from."""
        return self._source

    @property
    def config_dir(self) -> Path:
        """The directory holding the config file: `{config_dir}`."""
        return self._config_dir

    # BaseModel.schema is pydantic v1's deprecated method; consumers have always read the file's schema path here.
    @property
    def schema(self) -> str | None:  # type: ignore[override]
        """The OpenAPI schema's path on the target; None when the config gives a local `schema_file`."""
        return self.target.schema_

    @property
    def schema_file(self) -> Path | None:
        """The local OpenAPI file, `{config_dir}` filled; a relative path is relative to the config's directory."""
        if self.target.schema_file is None:
            return None
        path = Path(str(fill_template(self.target.schema_file, {"config_dir": str(self._config_dir)})))
        return path if path.is_absolute() else self._config_dir / path

    @property
    def health(self) -> str:
        """The path that answers 200 once the target is up."""
        return self.target.health

    @property
    def issuer(self) -> str:
        """The Clerk issuer the target trusts."""
        return self.target.issuer

    @property
    def admin_role(self) -> str | None:
        """The organisation's administrator role (`[roles] admin`); None when the config names none."""
        return self.roles.admin

    @property
    def not_applicable(self) -> Mapping[str, str]:
        """The checks this target cannot have, each with its reason (`[checks] not_applicable`)."""
        return MappingProxyType(self.checks.not_applicable)

    def named_operations(self) -> list[tuple[str, OperationRef | OperationPattern]]:
        """Every operation the config names, with where it names it: for checking them against a schema."""
        named: list[tuple[str, OperationRef | OperationPattern]] = []
        for field in ("public", "self", "never", "staff"):
            patterns: tuple[OperationPattern, ...] = getattr(self.fuzz, "self_only" if field == "self" else field)
            named += [(f"[fuzz] {field}", p) for p in patterns]
        for n, canary in enumerate(self.canaries):
            named += [(f"[canaries[{n}]] create", canary.create), (f"[canaries[{n}]] read", canary.read)]
        if self.members is not None:
            named.append(("[members] add", self.members.add))
        named += [(f"[setup[{n}]] request", s.request) for n, s in enumerate(self.setup)]
        named += [("[fuzz] returns_secret", p) for p in self.fuzz.returns_secret]
        named += [(f"[roles.allow] {role}", p) for role, patterns in self.roles.allow.items() for p in patterns]
        named += [
            (f"[principals[{n}].login] request", p.login.request) for n, p in enumerate(self.principals) if p.login
        ]
        return named
