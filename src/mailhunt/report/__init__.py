"""Report writers over a findings document (schema ``mailhunt.findings/1``).

Each writer takes the document as ``findings.json`` holds it and a path; none
reads the case store. Output is deterministic for the same document: nothing
depends on the clock, the locale or dict order outside the document.
"""

from mailhunt.report.html import write_html_report
from mailhunt.report.markdown import write_markdown_report

__all__ = ["write_html_report", "write_markdown_report"]
