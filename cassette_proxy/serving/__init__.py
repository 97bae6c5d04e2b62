"""The path a request takes, and the process that serves it."""
