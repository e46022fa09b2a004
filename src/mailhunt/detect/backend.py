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
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
from sigma.conditions import ConditionAND, ConditionItem, ConditionNOT, ConditionOR
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.types import SigmaCompareExpression

from mailhunt.detect.baselines import DERIVED_FIELDS
from mailhunt.events import COLUMN_NAMES, COLUMNS
from mailhunt.store import quote

MAP_COLUMNS = ("params", "labels")
_COLUMNS = frozenset(COLUMN_NAMES) | {f.name for f in DERIVED_FIELDS}
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
            key = name[len(column) + 1:].lower().replace("'", "''")
            return f"\"{column}\"['{key}']"
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

    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str] = "\\"
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    add_escaped: ClassVar[str] = "\\"
    filter_chars: ClassVar[str] = ""
    bool_values: ClassVar[dict[bool, str]] = {True: "true", False: "false"}

    wildcard_match_expression: ClassVar[str] = "coalesce({field} ILIKE {value} ESCAPE '\\', false)"
    case_sensitive_match_expression: ClassVar[str] = "coalesce({field} LIKE {value} ESCAPE '\\', false)"
    re_expression: ClassVar[str] = "coalesce(regexp_matches({field}, '{regex}'), false)"
    re_escape_char: ClassVar[str] = "'"
    re_escape: ClassVar[tuple[str, ...]] = ("'",)
    re_flag_prefix: ClassVar[bool] = True

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
    unbound_value_num_expression: ClassVar[str] = KEYWORD_TEXT + " LIKE '%{value}%'"
    unbound_value_re_expression: ClassVar[str] = "regexp_matches(" + KEYWORD_TEXT + ", '{value}')"

    def escape_and_quote_field(self, field_name: str) -> str:
        return sql_field(field_name)

    def convert_condition_field_eq_val_str(self, cond, state: ConversionState):
        """A value without wildcards is a case-insensitive equality; a pattern is ILIKE, with the
        escape clause only when the pattern escapes something (both are several times faster than
        an ILIKE that always names its escape character)."""
        if not cond.value.contains_special():
            literal = cond.value.convert(escape_char="", wildcard_multi="", wildcard_single="", add_escaped="")
            literal = literal.replace("'", "''")
            return f"coalesce(lower({sql_field(cond.field)}) = lower('{literal}'), false)"
        converted = super().convert_condition_field_eq_val_str(cond, state)
        if "\\" not in self.convert_value_str(cond.value, state):
            converted = converted.replace(" ESCAPE '\\'", "")
        return converted

    def convert_condition_field_eq_val_num(self, cond, state: ConversionState):
        """Numbers compare as text against text columns (Sigma's ``EventID: 4104`` vs ``event.code``)."""
        value = f"'{cond.value}'" if cond.field in _TEXT_COLUMNS else str(cond.value)
        return f"coalesce({sql_field(cond.field)} = {value}, false)"

    def convert_condition_field_eq_val_bool(self, cond, state: ConversionState):
        return f"coalesce({sql_field(cond.field)} = {'true' if cond.value else 'false'}, false)"

    def convert_condition_val_str(self, cond, state: ConversionState):
        """Keywords search ``KEYWORD_TEXT``, as a substring unless wildcards say otherwise."""
        converted = self.convert_value_str(cond.value, state)
        inner = converted[1:-1] if converted.startswith("'") else converted
        if not inner.startswith("%"):
            inner = "%" + inner
        if not inner.endswith("%") or inner.endswith("\\%"):
            inner = inner + "%"
        return f"coalesce({KEYWORD_TEXT} ILIKE '{inner}' ESCAPE '\\', false)"

    def finalize_query_default(self, rule, query: str, index: int, state: ConversionState) -> str:
        return query

