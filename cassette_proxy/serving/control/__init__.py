"""The control API: steering a running proxy over HTTP, from any language.

Served only with ``serve --admin`` (without it these paths answer 404, as any unknown
``/_proxy/`` path does); with a token set (``CASSETTE_PROXY_ADMIN_TOKEN``), only to requests
that carry it (``Authorization: Bearer <token>``, compared in constant time, never logged)::

    GET    /_proxy/cassette           what is loaded, its mode and counts
    PUT    /_proxy/cassette           load one ({"path", "record_mode", ...}), saving the last
    DELETE /_proxy/cassette           save it; back to the start-up cassette or pass-through
    POST   /_proxy/cassette/rewind    start playback over
    GET    /_proxy/exchanges          the last exchanges, as the log wrote them (?last=N)
    DELETE /_proxy/exchanges          forget them
    GET    /_proxy/faults             the fault rules installed
    POST   /_proxy/faults             install one (or a list)
    DELETE /_proxy/faults[/{id}]      remove them all (or one)

With ``X-Cassette-Proxy-Cassette: NAME`` the cassette routes act on that per-request cassette
(``--cassette-dir``) and ``GET /_proxy/exchanges`` lists its exchanges only. What they change
lives in :mod:`cassette_proxy.serving.steering`; the routes (:mod:`.routes`) only parse, call it
and describe the result (:mod:`.bodies`).
"""
