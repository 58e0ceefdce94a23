"""What a refused request may have left behind in the target's database.

A token the target refuses must provision nothing: no user, no organisation, no membership. The harness
sends forged tokens naming identities nobody has used, then looks for those identities anywhere in the
database: every text-like column of every table of the schema. Only reads are sent.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

__all__ = ["mentions"]

_COLUMNS = """
SELECT c.table_name, c.column_name
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = %(schema)s AND t.table_type = 'BASE TABLE'
  AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')
ORDER BY c.table_name, c.ordinal_position
"""


def mentions(database_url: str, values: list[str], *, schema: str = "public") -> list[str]:
    """`table.column` for every column of `schema` in which any of `values` shows (whole or inside the text)."""
    if not values:
        return []
    patterns = ["%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for value in values]
    found = []
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        conn.read_only = True
        for table, column in conn.execute(_COLUMNS, {"schema": schema}).fetchall():
            query = sql.SQL("SELECT 1 FROM {}.{} WHERE {}::text LIKE ANY(%(patterns)s) LIMIT 1").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)
            )
            if conn.execute(query, {"patterns": patterns}).fetchone() is not None:
                found.append(f"{table}.{column}")
    return found
