"""Alembic environment: online migrations only, on the URL handed over in `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.migrations.roles import ensure_app_role

# Any fixed number: every app process migrating the same database takes this lock first, so two
# starting side by side never both try to create the schema.
MIGRATION_LOCK = 0x1A4_0001


def run_migrations_online() -> None:
    """Run every pending revision, then re-assert the app role's grants: one transaction, under an advisory lock."""
    url = context.config.attributes.get("database_url")
    if not isinstance(url, str) or not url:
        raise RuntimeError("the migration needs config.attributes['database_url']")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                context.run_migrations()
                role = context.config.attributes.get("app_role")
                if role:
                    ensure_app_role(connection, role)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `python -m app migrate`")
run_migrations_online()
