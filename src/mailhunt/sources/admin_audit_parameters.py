"""The ``CmdletParameters`` cell of a ``Search-AdminAuditLog | Export-Csv`` file, as (name, value) pairs.

The admin audit log stores each parameter as ``Name=Value`` (that is how
Exchange parses it back); what lands in a CSV cell depends on how it was
exported:

- plain ``Export-Csv`` stringifies the collection, so the cell holds only a
  type name (``System.Collections.ArrayList`` through remote PowerShell,
  ``Microsoft.Exchange.Data.MultiValuedProperty`1[...]`` in a local shell):
  the parameters are lost; ``values_lost``;
- ``Format-Table``-like text ``{Identity, DeleteContent}`` lists names only
  (the parameter's ``ToString()`` is its name): ``names_only``, values empty;
- flattened exports write ``Identity=jdoe;DeleteContent=True`` (one per line
  or ``;``-separated), or PowerShell objects as
  ``@{Name=Identity; Value=jdoe}``, or the command text ``-Identity "jdoe"``:
  ``name_value``.

Which form a record had goes into its labels, so an analyst can see why a
parameter rule could not apply.
"""

from __future__ import annotations

import re

from mailhunt.sources.cmdlet_parameters import parse_parameter_text

LOST_TYPE_NAME = re.compile(r"^(System\.|Microsoft\.Exchange\.|Deserialized\.)[\w.`\[\], ]*$")
_PS_OBJECT = re.compile(r"@\{Name=(?P<name>[^;}]*);\s*Value=(?P<value>.*?)\}(?=\s*(?:@\{|[,;\r\n]|$))", re.DOTALL)
_NAME_VALUE_START = re.compile(r"(?:^|[;\r\n]+)\s*(?P<name>[A-Za-z_][\w-]*)\s*=")
_NAMES_ONLY = re.compile(r"^\{(?P<names>[\w\s,.-]*?)(?:\.\.\.|…)?\}$")
_BOOLEANS = {"$true": "True", "$false": "False", "true": "True", "false": "False"}


def _value(text: str) -> str:
    value = text.strip()
    return _BOOLEANS.get(value.lower(), value)


def parse_cmdlet_parameters_cell(cell: str) -> tuple[list[tuple[str, str]], str]:
    """Pairs and the form they came in: name_value, names_only, values_lost or empty."""
    text = cell.strip()
    if not text or text == "{}":
        return [], "empty"
    if LOST_TYPE_NAME.match(text):
        return [], "values_lost"
    objects = list(_PS_OBJECT.finditer(text))
    if objects:
        return [(m["name"].strip(), _value(m["value"])) for m in objects], "name_value"
    names_only = _NAMES_ONLY.match(text)
    if names_only:
        names = [n.strip() for n in names_only["names"].split(",") if n.strip()]
        return [(name, "") for name in names], "names_only"
    if text.startswith("-"):
        return parse_parameter_text(text), "name_value"
    starts = list(_NAME_VALUE_START.finditer(text))
    if starts and starts[0].start() == 0:
        pairs = []
        for index, match in enumerate(starts):
            end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
            pairs.append((match["name"], _value(text[match.end():end])))
        return pairs, "name_value"
    return [], "unreadable"
