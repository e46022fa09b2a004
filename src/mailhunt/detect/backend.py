"""A pySigma backend that turns a Sigma detection into a SQL condition over ``events``.

The SQL stays inside a small portable subset (ILIKE/LIKE with an explicit
escape, REGEXP_MATCHES, IS NULL, comparisons, map element access) so that
sqlglot can carry the same condition to Spark SQL unchanged in meaning.

Field names reaching the backend are the event model's columns and the
derived fields of ``mailhunt.detect.baselines`` (the processing
pipeline in ``mailhunt.detect.pipeline`` maps other names onto them);
``params.<Name>`` addresses one cmdlet parameter. A field outside the model
makes the rule unconvertible, with the field named in the error.

Keywords (values without a field, as the SigmaHQ MSExchange Management rules
use) search ``KEYWORD_TEXT``: the action, the parameter text, command line and
script block as logged (unescaped), and the raw record.

Every value of a rule is attacker-controlled text (``--rules DIR`` takes rules
from strangers), so each reaches the SQL as a literal quoted the way DuckDB
reads it (``mailhunt.sql_text.sql_string``): a quote is doubled, and nothing else in a standard
string literal is special to DuckDB. Patterns are built in two layers: first
the LIKE pattern (``%``/``_`` wildcards, a backslash escaping a literal ``%``,
``_`` or backslash, which the ``ESCAPE '\\'`` clause names), then that pattern
as a string literal. ``mailhunt.detect.sqlcheck`` then checks every condition
before it runs.
"""

from __future__ import annotations

from typing import ClassVar, cast

import pyarrow as pa
from sigma.conditions import ConditionAND, ConditionItem, ConditionNOT, ConditionOR
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import (
    SigmaCompareExpression,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from mailhunt.detect.baselines import DERIVED_FIELDS
from mailhunt.events import COLUMN_NAMES, COLUMNS
from mailhunt.sql_text import sql_identifier as quote
from mailhunt.sql_text import sql_string

MAP_COLUMNS = ("params", "labels")
_COLUMNS = frozenset(COLUMN_NAMES) | {f.name for f in DERIVED_FIELDS}
# Every column a compiled condition may name.
CONDITION_COLUMNS = _COLUMNS | frozenset(MAP_COLUMNS)
_TEXT_COLUMNS = frozenset(c.name for c in COLUMNS if pa.types.is_string(c.type) or pa.types.is_large_string(c.type))
KEYWORD_COLUMNS = ("event.action", "parameters", "process.command_line", "powershell.file.script_block_text",
                   "event.original")
KEYWORD_TEXT = "concat_ws(' ', " + ", ".join(quote(c) for c in KEYWORD_COLUMNS) + ")"


def sql_field(name: str) -> str:
    """SQL expression for a field of the event model, or a clear error."""
    if name in _COLUMNS:
        return quote(name)
    for column in MAP_COLUMNS:
        if name.lower().startswith(column + "."):
            return f"{quote(column)}[{sql_string(name[len(column) + 1:].lower())}]"
    raise SigmaFeatureNotSupportedByBackendError(
        f"field '{name}' is not in mailhunt's event model and no pipeline maps it")


class EventSQLBackend(TextQueryBackend):
    name: ClassVar[str] = "mailhunt event SQL"
    formats: ClassVar[dict[str, str]] = {"default": "SQL condition over the events table"}
    requires_pipeline: ClassVar[bool] = True

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT, ConditionAND, ConditionOR)
    group_expression: ClassVar[str] = "({expr})"
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " ILIKE "
    eq_expression: ClassVar[str] = "coalesce({field} ILIKE {value} ESCAPE '\\', false)"
    not_eq_expression: ClassVar[str] = "NOT coalesce({field} ILIKE {value} ESCAPE '\\', false)"

    # escape_char and add_escaped describe the LIKE pattern layer only: convert_value_str quotes the
    # pattern by doubling quotes (pySigma's default would put escape_char before the quote, which
    # DuckDB reads as a backslash that ends the literal).
    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str] = "\\"
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    add_escaped: ClassVar[str] = "\\"
    filter_chars: ClassVar[str] = ""
    bool_values: ClassVar[dict[bool, str | None]] = {True: "true", False: "false"}

    wildcard_match_expression: ClassVar[str] = "coalesce({field} ILIKE {value} ESCAPE '\\', false)"
    case_sensitive_match_expression: ClassVar[str] = "coalesce({field} LIKE {value} ESCAPE '\\', false)"
    re_expression: ClassVar[str] = "coalesce(regexp_matches({field}, {regex}), false)"
    re_flag_prefix: bool = True

    compare_op_expression: ClassVar[str] = "coalesce({field} {operator} {value}, false)"
    compare_operators: ClassVar[dict] = {
        SigmaCompareExpression.CompareOperators.LT: "<",
        SigmaCompareExpression.CompareOperators.LTE: "<=",
        SigmaCompareExpression.CompareOperators.GT: ">",
        SigmaCompareExpression.CompareOperators.GTE: ">=",
    }
    field_null_expression: ClassVar[str] = "{field} IS NULL"
    field_exists_expression: ClassVar[str] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str] = "{field} IS NULL"

    unbound_value_str_expression: ClassVar[str] = KEYWORD_TEXT + " ILIKE {value} ESCAPE '\\'"
    unbound_value_re_expression: ClassVar[str] = "regexp_matches(" + KEYWORD_TEXT + ", {value})"

    def escape_and_quote_field(self, field_name: str) -> str:
        return sql_field(field_name)

    def quote_string(self, s: str) -> str:
        return sql_string(s)

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        """A Sigma string as a LIKE pattern (wildcards as ``%``/``_``; a literal ``%``, ``_`` or
        backslash escaped with a backslash), quoted as a DuckDB string literal."""
        return sql_string(s.convert(self.escape_char, self.wildcard_multi, self.wildcard_single,
                                    self.add_escaped, self.filter_chars))

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        """A Sigma regular expression (flags as a ``(?i)`` prefix, which RE2 reads) as a string literal."""
        return sql_string(r.escape([], "", False, self.re_flag_prefix))

    def convert_condition_field_eq_val_str(self, cond, state: ConversionState):
        """A value without wildcards is a case-insensitive equality; a pattern is ILIKE, with the
        escape clause only when the pattern escapes something (both are several times faster than
        an ILIKE that always names its escape character)."""
        if not cond.value.contains_special():
            literal = sql_string(cond.value.convert(escape_char="", wildcard_multi="", wildcard_single="",
                                                    add_escaped=""))
            return f"coalesce(lower({sql_field(cond.field)}) = lower({literal}), false)"
        # TextQueryBackend fills a format string here: a str, never the deferred expression its annotation allows.
        converted = cast(str, super().convert_condition_field_eq_val_str(cond, state))
        if "\\" not in self.convert_value_str(cond.value, state):
            converted = converted.replace(" ESCAPE '\\'", "")
        return converted

    def convert_condition_field_eq_val_num(self, cond, state: ConversionState):
        """Numbers compare as text against text columns (Sigma's ``EventID: 4104`` vs ``event.code``)."""
        value = sql_string(str(cond.value)) if cond.field in _TEXT_COLUMNS else str(cond.value)
        return f"coalesce({sql_field(cond.field)} = {value}, false)"

    def convert_condition_field_eq_val_bool(self, cond, state: ConversionState):
        return f"coalesce({sql_field(cond.field)} = {'true' if cond.value else 'false'}, false)"

    def convert_condition_val_str(self, cond, state: ConversionState):
        """Keywords search ``KEYWORD_TEXT``, as a substring unless wildcards say otherwise."""
        value = cond.value
        if not value.startswith(SpecialChars.WILDCARD_MULTI):
            value = SpecialChars.WILDCARD_MULTI + value
        if not value.endswith(SpecialChars.WILDCARD_MULTI):
            value = value + SpecialChars.WILDCARD_MULTI
        return f"coalesce({KEYWORD_TEXT} ILIKE {self.convert_value_str(value, state)} ESCAPE '\\', false)"

    def convert_condition_val_num(self, cond, state: ConversionState):
        """A number as a keyword: a substring of ``KEYWORD_TEXT`` (digits, sign and point need no escape)."""
        return f"{KEYWORD_TEXT} LIKE {sql_string(f'%{cond.value}%')}"

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return query

