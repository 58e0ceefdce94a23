"""The database half of I1: the rows holding a user's ids, counted on a real PostgreSQL whose schema the harness
has never seen (integer keys beside uuid ones, a Clerk id in a varchar)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from harness.database.traces import rows_naming

SCHEMA = """
CREATE TABLE people (id serial PRIMARY KEY, clerk_id varchar(64) NOT NULL, age int);
CREATE TABLE teams (id uuid PRIMARY KEY, owner int REFERENCES people(id), title text);
CREATE TABLE seats (team uuid REFERENCES teams(id), person int REFERENCES people(id), label text);
CREATE VIEW everyone AS SELECT * FROM people;
"""


def test_rows_holding_the_ids_are_counted_per_table(database_url: str) -> None:
    team, other = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO people (clerk_id, age) VALUES ('user_2a', 7), ('user_2b', 7), ('user_2a', 1)")
        conn.execute("INSERT INTO teams VALUES (%s, 1, 'a'), (%s, 2, 'user_2a')", (team, other))
        conn.execute("INSERT INTO seats VALUES (%s, 1, 'x'), (%s, 2, 'y')", (team, other))
    counts = rows_naming(database_url, {"user_2a", str(team)})
    # Two people rows hold the Clerk id; teams: the uuid, and a title that is the id; seats: the uuid. No view.
    assert dict(counts) == {"people": 2, "teams": 2, "seats": 1}
    # Integer columns are never compared: "7" is an age, "1" a key, neither is counted.
    assert dict(rows_naming(database_url, {"7", "1"})) == {}
    assert dict(rows_naming(database_url, {"user_2z"})) == {}
    assert dict(rows_naming(database_url, set())) == {}


def test_an_unreadable_database_raises_psycopg_error(database_url: str) -> None:
    with pytest.raises(psycopg.Error):
        rows_naming(database_url.replace("/iam_test", "/no_such_db_"), {"user_2a"})
