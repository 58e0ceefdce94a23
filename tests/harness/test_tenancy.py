"""Check C2's reading of a real PostgreSQL schema: complete tables pass, each kind of gap is named."""

from __future__ import annotations

import psycopg

from harness.database.tenancy import tenancy_findings

SCHEMA = """
CREATE TABLE org_organisation (id uuid PRIMARY KEY);
CREATE TABLE sys_user (id uuid PRIMARY KEY);
CREATE TABLE good (id uuid PRIMARY KEY, org_id uuid NOT NULL REFERENCES org_organisation (id));
ALTER TABLE good ENABLE ROW LEVEL SECURITY;
ALTER TABLE good FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON good USING (org_id = NULLIF(current_setting('app.current_org', true), '')::uuid);
CREATE TABLE no_fk (id uuid PRIMARY KEY, org_id uuid NOT NULL);
ALTER TABLE no_fk ENABLE ROW LEVEL SECURITY;
ALTER TABLE no_fk FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON no_fk USING (true);
CREATE TABLE no_column (id uuid PRIMARY KEY);
CREATE TABLE not_forced (id uuid PRIMARY KEY, org_id uuid REFERENCES org_organisation (id));
ALTER TABLE not_forced ENABLE ROW LEVEL SECURITY;
CREATE POLICY scoped ON not_forced USING (true);
CREATE TABLE memberships (org_id uuid NOT NULL REFERENCES org_organisation (id), user_id uuid NOT NULL,
                          PRIMARY KEY (org_id, user_id));
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON memberships USING (true);
CREATE TABLE assignments (id uuid PRIMARY KEY, org_id uuid NOT NULL, user_id uuid NOT NULL,
                          FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id));
ALTER TABLE assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON assignments USING (true);
CREATE TABLE loose (id uuid PRIMARY KEY, org_id uuid NOT NULL, user_id uuid NOT NULL,
                    FOREIGN KEY (user_id, org_id) REFERENCES memberships (org_id, user_id));
ALTER TABLE loose ENABLE ROW LEVEL SECURITY;
ALTER TABLE loose FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON loose USING (true);
"""


def test_gaps_are_named(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    found = {
        f.table: f.missing
        for f in tenancy_findings(
            database_url, global_tables=frozenset({"sys_user"}), org_table="org_organisation", org_column="org_id"
        )
    }
    assert found["good"] == ()
    assert found["no_fk"] == ("foreign key org_id -> org_organisation",)
    assert found["no_column"] == (
        "column org_id",
        "row-level security enabled",
        "row-level security forced",
        "a row-level policy",
    )
    assert found["not_forced"] == ("row-level security forced",)
    # (org_id, user_id) -> memberships binds org_id through a tenant table; the same key with its columns crossed
    # binds org_id to a user id, which is no organisation at all
    assert found["assignments"] == () and found["memberships"] == ()
    assert found["loose"] == ("foreign key org_id -> org_organisation",)
    assert "sys_user" not in found and "org_organisation" not in found
