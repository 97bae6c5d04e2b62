"""cassette-proxy: a record/replay reverse proxy for the OpenAI-compatible Responses API."""

__version__ = "0.1.0"
