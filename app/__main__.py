"""Command line: `python -m app serve [--host H] [--port P]` (migrate, then serve) and `python -m app migrate`.

Settings come from the environment (see app/README.md). A refused setting exits with status 2 and one
line on standard error; every log line goes to standard error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings, SettingsError, load_settings

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_DATABASE = 3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# On SIGTERM: requests in flight get this long to finish, then their connections are closed.
GRACEFUL_SHUTDOWN_SECONDS = 5

log = logging.getLogger("app")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="The reference IAM app.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,migrate}")
    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    commands.add_parser("migrate", help="migrate the database to the newest revision, then exit")
    return parser


class MigrationFailed(Exception):
    """The database cannot be migrated; the message is one line."""


def _migrate(settings: Settings) -> None:
    # imported late: Alembic is only needed when migrating
    from app.migrations import upgrade
    from app.migrations.roles import AppRoleRefused

    try:
        upgrade(settings.database_url, app_role=settings.database_app_role, faults=settings.app_faults)
    except SQLAlchemyError as exc:
        first_line = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        raise MigrationFailed(f"cannot migrate the database at DATABASE_URL: {first_line}") from exc
    except AppRoleRefused as exc:
        raise MigrationFailed(f"DATABASE_APP_ROLE: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin, every start
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        _migrate(settings)
    except MigrationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    if args.command == "migrate":
        log.info("database migrated")
        return 0
    import uvicorn

    from app.main import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
