"""Schema migrations (Alembic), configured in code: no alembic.ini.

`upgrade(database_url, faults=...)` brings a database to the newest revision. The `skip_role_seed`
fault reaches the initial revision through `Config.attributes`, never through the environment.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.faults import Fault

__all__ = ["HEAD", "alembic_config", "upgrade"]

HEAD = "0001"
SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(database_url: str, *, faults: frozenset[Fault] = frozenset()) -> Config:
    """An Alembic config for `database_url` (a SQLAlchemy URL), carrying the faults the revisions honour."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # Passed as attributes, not options: a URL's percent-escapes would trip configparser interpolation.
    config.attributes["database_url"] = database_url
    config.attributes["skip_role_seed"] = Fault.SKIP_ROLE_SEED in faults
    return config


def upgrade(database_url: str, *, faults: frozenset[Fault] = frozenset()) -> None:
    """Migrate the database to the newest revision (safe to run from several processes at once)."""
    command.upgrade(alembic_config(database_url, faults=faults), "head")
