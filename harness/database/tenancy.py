"""Check C2 read from the target's database: every business table is tenant-scoped and walled by RLS.

A business table is every table of the schema but the global ones the config names. Each must have
the organisation column, a foreign key from it to the organisation table, and row-level security
enabled and forced with at least one policy. Only catalogue queries are sent; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

__all__ = ["TableFinding", "tenancy_findings"]

_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""
_HAS_COLUMN = """
SELECT 1 FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s AND column_name = %(column)s
"""
_HAS_FK = """
SELECT 1
FROM pg_constraint k
JOIN pg_class src ON src.oid = k.conrelid
JOIN pg_class dst ON dst.oid = k.confrelid
JOIN pg_namespace n ON n.oid = src.relnamespace
JOIN pg_attribute a ON a.attrelid = src.oid AND a.attnum = ANY (k.conkey)
WHERE k.contype = 'f' AND n.nspname = %(schema)s AND src.relname = %(table)s
  AND dst.relname = %(org_table)s AND a.attname = %(column)s
"""


@dataclass(frozen=True)
class TableFinding:
    """One business table and what it lacks (nothing, when it is complete)."""

    table: str
    missing: tuple[str, ...]

    def line(self) -> str:
        """`table: complete` or `table: lacks ...`."""
        return f"{self.table}: " + (
            "org column, FK, RLS forced" if not self.missing else "lacks " + ", ".join(self.missing)
        )


def tenancy_findings(
    database_url: str,
    *,
    global_tables: frozenset[str],
    org_table: str,
    org_column: str,
    schema: str = "public",
) -> list[TableFinding]:
    """Every business table of `schema` with what it lacks."""
    out = []
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        conn.read_only = True
        for table, rls, forced, policies in conn.execute(_TABLES, {"schema": schema}).fetchall():
            if table in global_tables or table == org_table:
                continue
            args = {"schema": schema, "table": table, "column": org_column, "org_table": org_table}
            missing = []
            if conn.execute(_HAS_COLUMN, args).fetchone() is None:
                missing.append(f"column {org_column}")
            elif conn.execute(_HAS_FK, args).fetchone() is None:
                missing.append(f"foreign key {org_column} -> {org_table}")
            if not rls:
                missing.append("row-level security enabled")
            if not forced:
                missing.append("row-level security forced")
            if not policies:
                missing.append("a row-level policy")
            out.append(TableFinding(table, tuple(missing)))
    return out
