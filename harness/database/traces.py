"""What a request left behind in the target's database, found by the ids it named: no table name is needed.

- `mentions`: a token the target refuses must provision nothing. The harness sends forged tokens naming
  identities nobody has used, then looks for those identities anywhere in the database: every text-like
  column of every table of the schema (C1).
- `rows_naming`: what one user left, per table, counted as the rows that hold one of that user's ids in a text
  or uuid column (I1 compares a first login made alone with racing and torn ones). Integer columns are not
  compared, since small integers match by chance; a target with integer ids is still counted by the rows
  holding its Clerk id. Other users' rows never match, so scenarios writing beside it do not disturb it.

Only reads are sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

import psycopg
from psycopg import sql

__all__ = ["mentions", "rows_naming"]

_COLUMNS = """
SELECT c.table_name, c.column_name
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = %(schema)s AND t.table_type = 'BASE TABLE' AND c.data_type = ANY(%(types)s)
ORDER BY c.table_name, c.ordinal_position
"""
_TEXT = ["text", "character varying", "character"]
CONNECT_TIMEOUT = 10


def _columns(conn: psycopg.Connection, schema: str, types: list[str]) -> dict[str, list[str]]:
    """Table -> its columns of one of `types`, in order."""
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(_COLUMNS, {"schema": schema, "types": types}).fetchall():
        columns.setdefault(table, []).append(column)
    return columns


def mentions(database_url: str, values: list[str], *, schema: str = "public") -> list[str]:
    """`table.column` for every column of `schema` in which any of `values` shows (whole or inside the text)."""
    if not values:
        return []
    patterns = ["%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for value in values]
    found = []
    with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT) as conn:
        conn.read_only = True
        for table, names in _columns(conn, schema, [*_TEXT, "json", "jsonb", "ARRAY"]).items():
            for column in names:
                query = sql.SQL("SELECT 1 FROM {}.{} WHERE {}::text LIKE ANY(%(patterns)s) LIMIT 1").format(
                    sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)
                )
                if conn.execute(query, {"patterns": patterns}).fetchone() is not None:
                    found.append(f"{table}.{column}")
    return found


def rows_naming(database_url: str, values: Collection[str], *, schema: str = "public") -> Mapping[str, int]:
    """Per table of `schema`, how many rows hold one of `values` (exactly) in a text or uuid column; tables with
    none are left out. Raises psycopg.Error when the database cannot be read."""
    wanted = sorted({value for value in values if value})
    if not wanted:
        return MappingProxyType({})
    counts: dict[str, int] = {}
    with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT) as conn:
        conn.read_only = True  # one read-only transaction with one snapshot of every table
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        for table, names in _columns(conn, schema, [*_TEXT, "uuid"]).items():
            where = sql.SQL(" OR ").join(
                sql.SQL("{}::text = ANY(%(values)s)").format(sql.Identifier(name)) for name in names
            )
            query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(schema, table), where)
            row = conn.execute(query, {"values": wanted}).fetchone()
            if row is not None and row[0]:
                counts[table] = int(row[0])
    return MappingProxyType(counts)
