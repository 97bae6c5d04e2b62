"""Typed models of everything that crosses the wire or lands on disk.

- :mod:`cassette_proxy.models.contract`: the documented cancel contract (the 200 Response and the
  404 error).
- :mod:`cassette_proxy.models.violations`: what validation reports.
- :mod:`cassette_proxy.models.http`: the proxy's own view of one request and one response.
- :mod:`cassette_proxy.models.errors`: the OpenAI error envelope the proxy answers with.
- :mod:`cassette_proxy.models.events`: the structured log events.
"""
