"""What one user left in the target's database: per table, the rows that hold one of that user's ids.

Check I1 compares the footprint of a first login made alone with that of a first login made by racing
requests, and with what a first login that failed midway left. It needs no table names: a row belongs to the
footprint when one of its text or uuid columns equals one of the values given (the Clerk user id, and the user
and organisation ids the target's who-am-I named). Integer columns are not compared, since small integers
match by chance; a target with integer ids is still counted by the rows holding its Clerk id. Other users'
rows never match, so scenarios writing beside this one do not disturb the counts. Only reads are sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

import psycopg
from psycopg import sql

__all__ = ["rows_naming"]

_COLUMNS = """
SELECT c.table_name, c.column_name
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = %(schema)s AND t.table_type = 'BASE TABLE'
  AND c.data_type IN ('text', 'character varying', 'character', 'uuid')
ORDER BY c.table_name, c.ordinal_position
"""
CONNECT_TIMEOUT = 10


def rows_naming(database_url: str, values: Collection[str], *, schema: str = "public") -> Mapping[str, int]:
    """Per table of `schema`, how many rows hold one of `values` in a text or uuid column; tables with none are
    left out. Raises psycopg.Error when the database cannot be read."""
    wanted = sorted({value for value in values if value})
    if not wanted:
        return MappingProxyType({})
    with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT) as conn:
        conn.read_only = True  # one read-only transaction with one snapshot of every table
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        columns: dict[str, list[str]] = {}
        for table, column in conn.execute(_COLUMNS, {"schema": schema}).fetchall():
            columns.setdefault(table, []).append(column)
        counts: dict[str, int] = {}
        for table, names in columns.items():
            where = sql.SQL(" OR ").join(
                sql.SQL("{}::text = ANY(%(values)s)").format(sql.Identifier(name)) for name in names
            )
            query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(schema, table), where)
            row = conn.execute(query, {"values": wanted}).fetchone()
            if row is not None and row[0]:
                counts[table] = int(row[0])
    return MappingProxyType(counts)
