"""The pytest plugin's machinery: the proxy a test runs, its options, and its report.

:mod:`cassette_proxy.pytest_plugin`, the entry point pytest loads in every run, imports none of
it (only :mod:`cassette_proxy.testing.names`): it is loaded when a test first asks for the
``cassette_proxy`` fixture, so a run whose tests do not use the proxy pays nothing for it.
"""
