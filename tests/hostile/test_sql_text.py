"""The one quoting helper: whatever the text, DuckDB reads back exactly that text, never more SQL."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhunt.sql_text import sql_identifier, sql_list, sql_string

# Text as rules and module constants may hold it: quotes, backslashes, comment and statement markers.
HOSTILE = ["", "'", "''", "\\", "\\'", "a'; DROP TABLE t; --", "/* x */", '"', 'x"y', "\n'\r", "%_", "é'ß"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@pytest.fixture(scope="module")
def db():
    connection = duckdb.connect(":memory:")
    connection.execute("CREATE TABLE t (x INTEGER)")
    yield connection
    connection.close()


@pytest.mark.parametrize("text", HOSTILE)
def test_string_literal_reads_back_as_the_text(db, text):
    assert db.execute(f"SELECT {sql_string(text)}").fetchall() == [(text,)]
    assert db.execute("SELECT count(*) FROM t").fetchall() == [(0,)]


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_any_text_is_one_literal(text):
    with duckdb.connect(":memory:") as connection:
        assert connection.execute(f"SELECT {sql_string(text)}").fetchall() == [(text,)]


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30))
def test_any_name_is_one_column(name):
    with duckdb.connect(":memory:") as connection:
        result = connection.execute(f"SELECT 1 AS {sql_identifier(name)}")
        assert [d[0] for d in result.description] == [name]


def test_list_is_an_in_list_of_literals(db):
    values = ["4657", "it's", "a\\b", ""]
    assert db.execute(f"SELECT x FROM (VALUES ('it''s'), ('other'), ('a\\b')) v(x) WHERE x IN {sql_list(values)} "
                      "ORDER BY x").fetchall() == [("a\\b",), ("it's",)]
    with pytest.raises(ValueError, match="at least one"):
        sql_list([])
