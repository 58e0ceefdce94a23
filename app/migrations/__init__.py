"""Schema migrations (Alembic), configured in code: no alembic.ini.

`upgrade(database_url, app_role=..., faults=...)` brings a database to the newest revision and grants the
app role (`app.migrations.roles`) what it may do. The faults that change the schema (`skip_role_seed`,
`no_rls`, `provision_race`, `webhook_not_idempotent`) reach the revisions through `Config.attributes`, never
through the environment.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.config import DEFAULT_APP_ROLE
from app.faults import Fault

__all__ = ["HEAD", "alembic_config", "upgrade"]

HEAD = "0008"
SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(
    database_url: str, *, app_role: str = DEFAULT_APP_ROLE, faults: frozenset[Fault] = frozenset()
) -> Config:
    """An Alembic config for `database_url` (a SQLAlchemy URL), carrying the app role and the faults to honour."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # Passed as attributes, not options: a URL's percent-escapes would trip configparser interpolation.
    config.attributes["database_url"] = database_url
    config.attributes["app_role"] = app_role
    config.attributes["skip_role_seed"] = Fault.SKIP_ROLE_SEED in faults
    config.attributes["no_rls"] = Fault.NO_RLS in faults
    config.attributes["provision_race"] = Fault.PROVISION_RACE in faults
    config.attributes["webhook_not_idempotent"] = Fault.WEBHOOK_NOT_IDEMPOTENT in faults
    return config


def upgrade(database_url: str, *, app_role: str = DEFAULT_APP_ROLE, faults: frozenset[Fault] = frozenset()) -> None:
    """Migrate the database to the newest revision (safe to run from several processes at once)."""
    command.upgrade(alembic_config(database_url, app_role=app_role, faults=faults), "head")
