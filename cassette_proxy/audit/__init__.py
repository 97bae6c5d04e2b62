"""``cassette-proxy audit``: what the JSON-lines logs say crossed the wire.

Logs are streamed line by line (plain, ``.gz``, or ``-`` for stdin) into aggregates whose size
does not depend on the log's: a million lines take the memory a thousand do. The modules, in the
order a log goes through them:

- :mod:`~cassette_proxy.audit.reading`: files and lines, and reading a line without its bodies;
- :mod:`~cassette_proxy.audit.filters`: which exchanges the report is about;
- :mod:`~cassette_proxy.audit.summary`: what each exchange adds (over
  :mod:`~cassette_proxy.audit.histogram` for the percentiles);
- :mod:`~cassette_proxy.audit.tables`: the tables every format shows, computed once;
- :mod:`~cassette_proxy.audit.gates`: ``--fail-on`` thresholds;
- :mod:`~cassette_proxy.audit.text`, :mod:`~cassette_proxy.audit.document` (JSON) and
  :mod:`~cassette_proxy.audit.html` (over :mod:`~cassette_proxy.audit.svg`): the reports.
"""

from cassette_proxy.audit.filters import Filters, parse_status, parse_time
from cassette_proxy.audit.reading import summarise
from cassette_proxy.audit.summary import Summary

__all__ = ["Filters", "Summary", "parse_status", "parse_time", "summarise"]
