"""The Responses API contract, laid out the way the API is.

The objects, one module per family:

- :mod:`~cassette_proxy.contract.response`: the Response (create, retrieve and cancel answer it);
- :mod:`~cassette_proxy.contract.items`: its ``output[]`` items (and listed input items), their
  content;
- :mod:`~cassette_proxy.contract.tools`: ``tools[]`` and ``tool_choice``;
- :mod:`~cassette_proxy.contract.create`: the create request's body;
- :mod:`~cassette_proxy.contract.queries`: the query parameters of retrieve and input_items;
- :mod:`~cassette_proxy.contract.events`: the stream events;
- :mod:`~cassette_proxy.contract.lists`: the input item list and the deletion object;
- :mod:`~cassette_proxy.contract.errors`: error bodies, flat or enveloped;
- :mod:`~cassette_proxy.contract.base`: the markers and base classes they are made of.

The routes and the checks beside them:

- :mod:`~cassette_proxy.contract.routes`: the route table, and which route a request is for;
- :mod:`~cassette_proxy.contract.check`: pydantic's findings as violations, drift as warnings;
- :mod:`~cassette_proxy.contract.validation`: a request and a whole response, per route;
- :mod:`~cassette_proxy.contract.stream`: an event stream, one event at a time.
"""

from cassette_proxy.contract.check import plan_every_model
from cassette_proxy.contract.routes import Route, classify
from cassette_proxy.contract.stream import StreamChecker, stream_checker
from cassette_proxy.contract.validation import Checked, check_request, check_response

plan_every_model()  # every model is declared now: the drift walk's plans are made here, once

__all__ = [
    "Checked",
    "Route",
    "StreamChecker",
    "check_request",
    "check_response",
    "classify",
    "stream_checker",
]
