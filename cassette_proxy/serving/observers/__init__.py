"""What an exchange settles into once its answer is known: the log line (``log``), the metrics
(``metrics``), the token accounting (``tokens``) and, with ``--admin``, the latest exchanges
kept for the control API (``recent``). They observe the request path; none changes it."""
