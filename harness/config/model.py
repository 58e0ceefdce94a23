"""The target config's public names, where consumers have always imported them from.

The models live in `sections` (one per table) and `target` (the whole file); reading is in `load`.
"""

from __future__ import annotations

from harness.config.load import config_json_schema, load_config, load_schema_file
from harness.config.operations import OperationPattern, OperationRef, unmatched
from harness.config.sections import (
    DEFAULT_ISSUER,
    KNOWN_CHECKS,
    AdminConfig,
    CanaryConfig,
    ChecksConfig,
    DatabaseConfig,
    EmbeddedConfig,
    FuzzConfig,
    IdentityConfig,
    IdSource,
    InvitesConfig,
    LoginConfig,
    MembersConfig,
    PagesConfig,
    PrincipalConfig,
    ProvisioningConfig,
    RolesConfig,
    SetupRequest,
    SignInFormConfig,
    TargetSection,
    WebhooksConfig,
)
from harness.config.target import TargetConfig

__all__ = [
    "DEFAULT_ISSUER",
    "KNOWN_CHECKS",
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
    "OperationPattern",
    "OperationRef",
    "PagesConfig",
    "PrincipalConfig",
    "ProvisioningConfig",
    "RolesConfig",
    "SetupRequest",
    "SignInFormConfig",
    "TargetConfig",
    "TargetSection",
    "WebhooksConfig",
    "config_json_schema",
    "load_config",
    "load_schema_file",
    "unmatched",
]
