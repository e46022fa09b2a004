"""A check of the SQL compiled from a rule, before DuckDB runs it.

Rules come from strangers (``--rules DIR``), and every value in them ends up in
SQL text. The backend quotes each value as DuckDB reads it; this check is the
second line, so that a quoting bug, or a rule crafted against one, becomes that
rule's failure and never SQL that runs. It reads the SQL with DuckDB's own
parser (``json_serialize_sql``, the parser that would run it, so the check and
the run cannot read the text differently) and accepts only the kinds of
expression, function and table the compiler emits:

- a single-event condition must be one boolean expression over the event
  columns, made of AND/OR/NOT, comparisons, IS [NOT] NULL, coalesce,
  ``lower``, ``concat_ws``, LIKE/ILIKE and ``regexp_matches``, map element
  access and constants; no subquery, no other function, no comment;
- a correlation query must be one SELECT (or UNION of SELECTs) over
  ``matches``, the detection view and its own CTEs, with the window and
  scalar functions ``mailhunt.detect.correlation`` uses; no table function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator

import duckdb

from mailhunt.detect.baselines import DETECTION_RELATION


class UnsafeSQL(ValueError):
    """Compiled SQL that is not what the rule compiler emits; the rule must not run."""


CONDITION_FUNCTIONS = frozenset({
    "lower", "concat_ws", "regexp_matches",
    "~~", "~~*", "!~~", "!~~*", "like_escape", "ilike_escape", "not_like_escape", "not_ilike_escape",
})
# Functions whose result is a boolean, and the other expression kinds that give one.
_BOOLEAN_FUNCTIONS = CONDITION_FUNCTIONS - {"lower", "concat_ws"}
_COMPARISONS = frozenset({
    "COMPARE_EQUAL", "COMPARE_NOTEQUAL", "COMPARE_LESSTHAN", "COMPARE_GREATERTHAN",
    "COMPARE_LESSTHANOREQUALTO", "COMPARE_GREATERTHANOREQUALTO",
})
_CONDITION_OPERATORS = frozenset({
    "OPERATOR_NOT", "OPERATOR_COALESCE", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL", "ARRAY_EXTRACT",
})
CONDITION_EXPRESSIONS: dict[str, frozenset[str]] = {
    "CONJUNCTION": frozenset({"CONJUNCTION_AND", "CONJUNCTION_OR"}),
    "OPERATOR": _CONDITION_OPERATORS,
    "COMPARISON": _COMPARISONS,
    "CONSTANT": frozenset({"VALUE_CONSTANT"}),
    "COLUMN_REF": frozenset({"COLUMN_REF"}),
    "FUNCTION": frozenset({"FUNCTION"}),
}

QUERY_FUNCTIONS = frozenset({
    "count", "sum", "min", "max", "greatest", "least", "strftime", "+", "-", "||",
})
QUERY_EXPRESSIONS: dict[str, frozenset[str]] = {
    **CONDITION_EXPRESSIONS,
    "OPERATOR": _CONDITION_OPERATORS | {"COMPARE_IN", "COMPARE_NOT_IN"},
    "CASE": frozenset({"CASE_EXPR"}),
    "CAST": frozenset({"OPERATOR_CAST"}),
    "TYPE": frozenset({"TYPE"}),
    "STAR": frozenset({"STAR"}),
    "WINDOW": frozenset({"WINDOW_AGGREGATE"}),
}
# The parts of a query that are not expressions (the parser marks them by "type" alone).
QUERY_PARTS = frozenset({
    "SELECT_NODE", "SET_OPERATION_NODE", "DISTINCT_MODIFIER", "ORDER_MODIFIER",
    "ORDER_DEFAULT", "ORDER_ASCENDING", "ORDER_DESCENDING", "BASE_TABLE", "JOIN", "SUBQUERY", "EMPTY",
})
QUERY_TABLES = frozenset({"matches", DETECTION_RELATION})

_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


def _parse(sql: str) -> list[dict]:
    """The statements of ``sql`` as DuckDB's parser reads them (SELECT statements only)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:", config={"enable_external_access": False,
                                                         "autoload_known_extensions": False,
                                                         "autoinstall_known_extensions": False})
        row = _parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    if row is None:
        raise UnsafeSQL("SQL does not parse as a query")
    document = json.loads(row[0])
    if document.get("error"):
        raise UnsafeSQL(f"SQL does not parse as a query: {document.get('error_message', 'unknown error')}")
    return document["statements"]


def _nodes(value) -> Iterator[dict]:
    """Every dictionary in a parse tree: expressions, query parts, and what they hold."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)


def _without_locations(value):
    if isinstance(value, dict):
        return {k: _without_locations(v) for k, v in value.items() if not k.startswith("query_location")}
    if isinstance(value, list):
        return [_without_locations(v) for v in value]
    return value


def _check_expression(node: dict, allowed: dict[str, frozenset[str]], functions: frozenset[str]) -> None:
    kind, subtype = str(node.get("class")), node.get("type")
    if subtype not in allowed.get(kind, ()):
        raise UnsafeSQL(f"{str(kind).lower()} {str(subtype).lower()} is not allowed in a rule's SQL")
    if kind in ("FUNCTION", "WINDOW"):
        name = node.get("function_name")
        if name not in functions or node.get("schema") or node.get("catalog"):
            raise UnsafeSQL(f"function {name!r} is not allowed in a rule's SQL")


def _is_boolean(node: dict) -> bool:
    kind, subtype = node.get("class"), node.get("type")
    if kind == "CONJUNCTION" or (kind == "OPERATOR" and subtype in ("OPERATOR_NOT", "OPERATOR_COALESCE")):
        return all(_is_boolean(child) for child in node.get("children", ()))
    if kind == "COMPARISON" or (kind == "OPERATOR" and subtype in ("OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL")):
        return True
    if kind == "FUNCTION":
        return node.get("function_name") in _BOOLEAN_FUNCTIONS
    return kind == "CONSTANT" and node.get("literal", {}).get("kind") == "BOOLEAN"


_SKELETON: dict | None = None


def check_condition(condition: str, columns: Iterable[str]) -> None:
    """Raise ``UnsafeSQL`` unless ``condition``, placed between parentheses, is one boolean
    expression of the kinds a single-event rule compiles to, over the given columns only."""
    global _SKELETON
    try:
        tokens = duckdb.tokenize(condition)
    except duckdb.Error as exc:
        raise UnsafeSQL(f"SQL does not parse: {exc}") from exc
    encoded = condition.encode("utf-8")  # the tokenizer counts positions in bytes
    depth = 0
    for (start, kind), following in zip(tokens, [*tokens[1:], (len(encoded), None)]):
        if kind == duckdb.token_type.comment:
            raise UnsafeSQL("a comment in a rule's SQL")
        if kind == duckdb.token_type.operator:
            text = encoded[start:following[0]]
            depth += text.count(b"(") - text.count(b")")
            if depth < 0:
                break
    if depth != 0:
        raise UnsafeSQL("unbalanced parentheses in a rule's SQL")
    statements = _parse(f"SELECT ({condition})")
    if _SKELETON is None:
        _SKELETON = _without_locations(_parse("SELECT (true)")[0]["node"])
        del _SKELETON["select_list"]
    if len(statements) != 1:
        raise UnsafeSQL(f"a rule's condition reads as {len(statements)} statements")
    node = _without_locations(statements[0]["node"])
    select_list = node.pop("select_list")
    if node != _SKELETON or len(select_list) != 1:
        raise UnsafeSQL("a rule's condition reads as more than one expression")
    expression = select_list[0]
    allowed_columns = frozenset(columns)
    for part in _nodes(expression):
        if "class" not in part:
            continue
        _check_expression(part, CONDITION_EXPRESSIONS, CONDITION_FUNCTIONS)
        if part["class"] == "COLUMN_REF":
            names = part.get("column_names", [])
            if len(names) != 1 or names[0] not in allowed_columns:
                raise UnsafeSQL(f"column {'.'.join(names)!r} is not an event column")
    if not _is_boolean(expression):
        raise UnsafeSQL("a rule's condition is not a boolean expression")


def check_query(sql: str, tables: Iterable[str] = QUERY_TABLES) -> None:
    """Raise ``UnsafeSQL`` unless ``sql`` is one SELECT of the kinds a correlation rule compiles to,
    reading only ``tables`` and the common table expressions it defines itself."""
    statements = _parse(sql)
    if len(statements) != 1:
        raise UnsafeSQL(f"a correlation's query reads as {len(statements)} statements")
    readable = set(tables)
    for part in _nodes(statements[0]):
        for entry in (part.get("cte_map") or {}).get("map", ()):
            readable.add(entry["key"])
    for part in _nodes(statements[0]):
        if "class" in part:
            _check_expression(part, QUERY_EXPRESSIONS, QUERY_FUNCTIONS)
        elif "type" in part:
            if part["type"] not in QUERY_PARTS:
                raise UnsafeSQL(f"{str(part['type']).lower()} is not allowed in a correlation's query")
            if part["type"] == "BASE_TABLE" and (part.get("table_name") not in readable or part.get("schema_name")
                                                 or part.get("catalog_name")):
                raise UnsafeSQL(f"table {part.get('table_name')!r} is not one a correlation reads")
