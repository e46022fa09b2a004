"""Small additions to pySigma's stock backends for the platforms' field layouts.

Splunk and Sentinel keep cmdlet parameters as a list of name/value pairs, not
as one field per parameter. The export pipeline names each parameter a rule
uses ``param_<name>`` and records them in the pipeline state
(``mailhunt_params``: field -> lower-cased parameter name); the backends below
compute those fields before the rule's condition runs:

- Splunk: ``<scope> | eval param_x=mvindex('Parameters{}.Value', mvfind('Parameters{}.Name', "(?i)^x$")) | search <condition>``,
  added in ``finish_query`` so correlation searches carry it too;
- Kusto: ``<table> | mv-apply ... on (summarize param_x = take_anyif(...)) | where <condition>``
  (a record without a parameter list is kept, with empty parameter columns).

EQL gains the field-exists test (``field != null``) the stock backend lacks.
Of the correlations, it keeps the one EQL expresses exactly: temporal_ordered
becomes ``sequence by <group> with maxspan=<timespan> [rule 1] [rule 2] ...``
(the stock backend appends a ``by  with runs=<n>`` that would make the last
step repeat n times; it is removed). value_count and event_count over several
rules come out of the stock backend as a sequence of the rules one after the
other, which is not a count, so they are refused with that reason.
"""

from __future__ import annotations

import re
from typing import ClassVar

from sigma.backends.elasticsearch import EqlBackend
from sigma.backends.kusto import KustoBackend
from sigma.backends.splunk import SplunkBackend
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule

PARAMS_STATE = "mailhunt_params"
SCOPE_STATE = "mailhunt_scope"
TABLE_STATE = "mailhunt_table"


def _regex_literal(name: str) -> str:
    return re.escape(name).replace('"', '\\"')


def splunk_parameter_evals(params: dict[str, str]) -> str:
    assignments = [f"{field}=mvindex('Parameters{{}}.Value', mvfind('Parameters{{}}.Name', \"(?i)^{_regex_literal(name)}$\"))"
                   for field, name in sorted(params.items())]
    return "| eval " + ", ".join(assignments) if assignments else ""


def kusto_parameter_columns(params: dict[str, str]) -> str:
    if not params:
        return ""
    aggregations = ", ".join(f"{field} = take_anyif(tostring(mh_param.Value), tostring(mh_param.Name) =~ \"{name}\")"
                             for field, name in sorted(params.items()))
    # A record without a parameter list still passes through, as one empty entry: the rule's other
    # branches (e.g. an Operation alone) must still see it.
    return ("| mv-apply mh_param = iff(array_length(todynamic(Parameters)) > 0, todynamic(Parameters), dynamic([{}])) "
            f"on (summarize {aggregations})")


class MailhuntSplunkBackend(SplunkBackend):
    name: ClassVar[str] = "Splunk (mailhunt export)"

    def finish_query(self, rule, query, state: ConversionState):
        query = super().finish_query(rule, query, state)
        if not isinstance(query, str) or isinstance(rule, SigmaCorrelationRule):
            return query
        scope = state.processing_state.get(SCOPE_STATE, "")
        evals = splunk_parameter_evals(state.processing_state.get(PARAMS_STATE, {}))
        if not scope and not evals:
            return query
        if query.startswith("\n| "):
            return f"{scope}\n{evals}{query}" if evals else f"{scope}{query}"
        if evals:
            return f"{scope}\n{evals}\n| search {query}"
        return f"{scope} {query}"


class MailhuntKustoBackend(KustoBackend):
    name: ClassVar[str] = "Kusto (mailhunt export)"

    def finalize_query_default(self, rule, query, index: int, state: ConversionState):
        table = state.processing_state.get(TABLE_STATE)
        columns = kusto_parameter_columns(state.processing_state.get(PARAMS_STATE, {}))
        parts = [p for p in (table, columns, f"| where {query}") if p]
        return "\n".join(parts)


_TRAILING_RUNS = re.compile(r"\s*\]\s*by\s*(?:None)?\s*with runs=\d+\s*$")


class MailhuntEqlBackend(EqlBackend):
    name: ClassVar[str] = "EQL (mailhunt export)"
    field_exists_expression: ClassVar[str] = "{field} != null"
    field_not_exists_expression: ClassVar[str] = "{field} == null"

    def convert_correlation_temporal_ordered_rule(self, rule, output_format=None, method="default"):
        queries = super().convert_correlation_temporal_ordered_rule(rule, output_format, method)
        return [_TRAILING_RUNS.sub("]", q) if isinstance(q, str) else q for q in queries]

    def convert_correlation_value_count_rule(self, rule, output_format=None, method="default"):
        raise NotImplementedError("value_count: EQL has no distinct count, and the backend's sequence would "
                                  "demand the referenced rules one after the other")

    def convert_correlation_event_count_rule(self, rule, output_format=None, method="default"):
        if len(rule.rules) > 1:
            raise NotImplementedError("event_count over several rules: the backend's sequence would demand "
                                      "the referenced rules one after the other")
        return super().convert_correlation_event_count_rule(rule, output_format, method)
