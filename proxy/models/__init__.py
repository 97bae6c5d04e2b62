"""Typed models of everything that crosses the wire or lands on disk.

- :mod:`proxy.models.contract`: the documented cancel contract (the 200 Response and the 404 error).
- :mod:`proxy.models.violations`: what validation reports.
- :mod:`proxy.models.http`: the proxy's own view of one request and one response.
- :mod:`proxy.models.errors`: the OpenAI error envelope the proxy answers with.
- :mod:`proxy.models.events`: the structured log events.
"""
