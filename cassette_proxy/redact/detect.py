"""Where the secrets are in a run of bytes: spans, found by the rules of
:mod:`cassette_proxy.redact.rules`.

Bytes, not text, so a body that is not UTF-8 (one stray byte is enough) is scanned like any
other. Secrets found by several rules, or overlapping, become one span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from cassette_proxy.redact.rules import Match, Rule, rule_set, shannon_entropy

_FINGERPRINT: Final = re.compile(rb"sha256:[0-9a-f]{8}")
_LINE_REACH: Final = 4096
_NAME_BYTES: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    rule: str  # the id of the (first) rule that found it


def _secret_span(rule: Rule, match: Match) -> tuple[int, int]:
    if rule.secret_group:
        return match.span(rule.secret_group)
    for index, group in enumerate(match.groups(), start=1):
        if group:
            return match.span(index)
    start, end = match.span()
    return start, end  # gitleaks trims newlines off a whole match; its rules rarely end in one


def _line(data: bytes, start: int, end: int) -> bytes:
    """The line the secret is on, or its 4 KiB either side in a longer line (a one-line JSON
    body), so that many findings in a large body do not each copy all of it."""
    low, high = max(0, start - _LINE_REACH), min(len(data), end + _LINE_REACH)
    line_end = data.find(b"\n", end, high)
    return data[data.rfind(b"\n", low, start) + 1 or low : line_end if line_end >= 0 else high]


def _whole(rule: Rule, data: bytes, match: Match) -> bytes:
    """The match as gitleaks' own regex has it: with the name characters before it that its
    optional lead takes in (see :attr:`Rule.lead`)."""
    start, end = match.span()
    floor = max(0, start - rule.lead)
    while start > floor and data[start - 1] in _NAME_BYTES:
        start -= 1
    return data[start:end]


def _is_secret(rule: Rule, data: bytes, match: Match, start: int, end: int) -> bool:
    secret = data[start:end]
    if (
        not secret
        or _FINGERPRINT.fullmatch(secret)
        or data[max(0, start - 7) : start] == b"sha256:"
    ):
        return False  # redacted already
    if rule.entropy and shannon_entropy(secret) <= rule.entropy:
        return False
    if rule.accepts is not None and not rule.accepts(secret):
        return False
    for allowlist in rule.allowlists:
        if allowlist.target == "secret":
            target = secret
        elif allowlist.target == "match":
            target = _whole(rule, data, match)
        else:
            target = _line(data, start, end)
        if allowlist.allows(secret, target):
            return False
    return True


def find(data: bytes) -> list[Span]:
    """The secrets in ``data``, in order, not overlapping."""
    rules = rule_set().candidates(data)
    if not rules:
        return []
    spans: list[Span] = []
    for rule in rules:
        for match in rule.regex.finditer(data):
            start, end = _secret_span(rule, match)
            if _is_secret(rule, data, match, start, end):
                spans.append(Span(start, end, rule.id))
    spans.sort(key=lambda span: (span.start, -span.end))
    merged: list[Span] = []
    for span in spans:
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.rule)
        else:
            merged.append(span)
    return merged
