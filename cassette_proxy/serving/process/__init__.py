"""The request path served as a process: the HTTP server's connections and their limits
(``server``), start-up, signals and draining (``serve``), readiness (``readiness``), and
``--workers``: the supervisor (``workers``) and how workers sum their metrics (``peers``)."""
