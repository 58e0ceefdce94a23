"""Check C2 read from the target's database: every business table is tenant-scoped and walled by RLS.

A business table is every table of the schema but the global ones the config names. Each must have
the organisation column, a foreign key from it to the organisation table (directly, or through another
table whose own organisation column is bound to it: `(org_id, user_id) -> memberships (org_id, user_id)`),
and row-level security enabled and forced with at least one policy. Only catalogue queries are sent;
nothing is written.
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
# Every foreign key of the schema, one row per column it binds: (table, column) -> (referenced table, column).
_FOREIGN_KEYS = """
SELECT src.relname, a.attname, dst.relname, b.attname
FROM pg_constraint k
JOIN pg_class src ON src.oid = k.conrelid
JOIN pg_class dst ON dst.oid = k.confrelid
JOIN pg_namespace n ON n.oid = src.relnamespace
CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS pair(src_attnum, dst_attnum)
JOIN pg_attribute a ON a.attrelid = src.oid AND a.attnum = pair.src_attnum
JOIN pg_attribute b ON b.attrelid = dst.oid AND b.attnum = pair.dst_attnum
WHERE k.contype = 'f' AND n.nspname = %(schema)s
"""
_MAX_HOPS = 5  # tables a column may be bound through on its way to the organisation table


def _bound(keys: dict[tuple[str, str], set[tuple[str, str]]], table: str, column: str, org_table: str) -> bool:
    """Whether `table.column` is bound to the organisation table: by a foreign key to it, or to a column of
    another table that is itself bound to it (a composite key through a tenant table)."""
    frontier: set[tuple[str, str]] = {(table, column)}
    seen: set[tuple[str, str]] = set()
    for _ in range(_MAX_HOPS):
        following = set()
        for here in frontier - seen:
            seen.add(here)
            for target, target_column in keys.get(here, ()):
                if target == org_table:
                    return True
                following.add((target, target_column))
        frontier = following
    return False


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
        keys: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for src, src_column, dst, dst_column in conn.execute(_FOREIGN_KEYS, {"schema": schema}).fetchall():
            keys.setdefault((src, src_column), set()).add((dst, dst_column))
        for table, rls, forced, policies in conn.execute(_TABLES, {"schema": schema}).fetchall():
            if table in global_tables or table == org_table:
                continue
            args = {"schema": schema, "table": table, "column": org_column, "org_table": org_table}
            missing = []
            if conn.execute(_HAS_COLUMN, args).fetchone() is None:
                missing.append(f"column {org_column}")
            elif not _bound(keys, table, org_column, org_table):
                missing.append(f"foreign key {org_column} -> {org_table}")
            if not rls:
                missing.append("row-level security enabled")
            if not forced:
                missing.append("row-level security forced")
            if not policies:
                missing.append("a row-level policy")
            out.append(TableFinding(table, tuple(missing)))
    return out
