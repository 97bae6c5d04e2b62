"""``cassette-proxy audit``: what the JSON-lines logs say crossed the wire.

Logs are streamed line by line (plain, ``.gz``, or ``-`` for stdin) into aggregates whose size
does not depend on the log's: a million lines take the memory a thousand do. The modules, in the
order a log goes through them:

- :mod:`~cassette_proxy.tools.audit.reading`: files and lines, and reading a line without
  its bodies;
- :mod:`~cassette_proxy.tools.audit.filters`: which exchanges the report is about;
- :mod:`~cassette_proxy.tools.audit.summary`: what each exchange adds (over
  :mod:`~cassette_proxy.tools.audit.histogram` for the percentiles);
- :mod:`~cassette_proxy.tools.audit.tables`: the tables every format shows, computed once;
- :mod:`~cassette_proxy.tools.audit.gates`: ``--fail-on`` thresholds;
- :mod:`~cassette_proxy.tools.audit.text`, :mod:`~cassette_proxy.tools.audit.document` (JSON)
  and :mod:`~cassette_proxy.tools.audit.html` (over :mod:`~cassette_proxy.tools.audit.svg`): the
  reports.
"""

from cassette_proxy.tools.audit.filters import Filters, parse_status, parse_time
from cassette_proxy.tools.audit.reading import summarise
from cassette_proxy.tools.audit.summary import Summary

__all__ = ["Filters", "Summary", "parse_status", "parse_time", "summarise"]
