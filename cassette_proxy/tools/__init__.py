"""Offline commands: audit a log, check and redact cassettes."""
