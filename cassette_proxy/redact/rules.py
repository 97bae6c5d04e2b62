"""The secret rules: gitleaks' maintained rule set, and the few this proxy adds for its traffic.

gitleaks' default configuration (``gitleaks.toml`` beside this file, vendored as data with its
version and licence; ``scripts/update_secret_rules.py`` replaces it with a newer release) holds
over 200 rules, each a regular expression in RE2's syntax with the rule's own filters: a minimum
Shannon entropy of the secret, a capture group that is the secret, and allowlists (regexes on
the secret, its match or its line, and stopwords). They are used as gitleaks uses them, minus
what concerns files (paths, commits).

The proxy adds what traffic to this upstream carries and a source-code scanner does not expect
(gitleaks' Yandex rules want the word "yandex" before the key, as in ``YANDEX_KEY=...``):

- ``auth-scheme``: a token after ``Bearer``, ``Api-Key`` or ``Basic`` in free text;
- ``sk-key``, ``yandex-api-key-bare``, ``yandex-iam-token-bare``: ``sk-...``, ``AQVN...`` and
  ``t1....`` tokens wherever they are;
- ``credential-parameter``: ``password=...``, ``client_secret=...``, ``key=...`` in a query or
  a form body (names from :mod:`cassette_proxy.redact.names`);
- ``credential-field``: a JSON string under such a name, at any depth, also in JSON embedded in
  a JSON string (tool-call arguments).

All of them are compiled once into one RE2 set, scanned in one pass over the bytes: RE2 runs in
time linear in the input whatever the pattern (no backtracking, so a hostile body cannot make
the scan slow), and most text matches no rule at all.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, Protocol, cast

import re2

from cassette_proxy.redact.names import name_pattern, parameter_pattern


class Match(Protocol):
    """The part of google-re2's match object used here (the package ships no type hints)."""

    def span(self, group: int = 0) -> tuple[int, int]: ...

    def groups(self) -> tuple[bytes | None, ...]: ...


class Regex(Protocol):
    def finditer(self, text: bytes) -> Any: ...

    def search(self, text: bytes) -> Match | None: ...


def _options() -> Any:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes in, one byte one character
    options.max_mem = 64 << 20  # the set's DFA; RE2's default (8 MiB) is small for 230 rules
    return options


@functools.cache
def compile_pattern(pattern: str) -> Regex:
    return cast(Regex, re2.compile(pattern.encode("latin-1"), _options()))


Target = Literal["secret", "match", "line"]


@dataclass(frozen=True, slots=True)
class Allowlist:
    """gitleaks' allowlist: a finding it allows is not a secret."""

    target: Target
    regexes: tuple[Regex, ...]
    stopwords: tuple[bytes, ...]

    def allows(self, secret: bytes, match: bytes, line: bytes) -> bool:
        text = {"secret": secret, "match": match, "line": line}[self.target]
        if any(regex.search(text) is not None for regex in self.regexes):
            return True
        lowered = secret.lower()
        return any(word in lowered for word in self.stopwords)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str
    pattern: str  # RE2 syntax
    entropy: float  # the secret's Shannon entropy must exceed it (0: no minimum)
    secret_group: int  # 0: the first group that matched, or the whole match without one
    allowlists: tuple[Allowlist, ...]
    accepts: Callable[[bytes], bool] | None = None  # a further test of the secret

    @property
    def regex(self) -> Regex:
        """Compiled on first use: the set says which rules match, and most never do."""
        return compile_pattern(self.pattern)


def shannon_entropy(data: bytes) -> float:
    counts = Counter(data)
    return -sum(n / len(data) * math.log2(n / len(data)) for n in counts.values())


def _allowlist(raw: dict[str, Any]) -> Allowlist | None:
    """A gitleaks allowlist as it applies to traffic: one that needs a file path or a commit
    (which traffic has not) never allows anything, so it is left out."""
    needs_file = bool(raw.get("paths") or raw.get("commits"))
    if needs_file and raw.get("condition", "OR").upper() == "AND":
        return None
    regexes = tuple(compile_pattern(p) for p in raw.get("regexes", ()))
    stopwords = tuple(word.lower().encode("latin-1") for word in raw.get("stopwords", ()))
    if not regexes and not stopwords:
        return None
    return Allowlist(raw.get("regexTarget", "secret"), regexes, stopwords)


def _has_digit_or_symbol(secret: bytes) -> bool:
    """Prose after a scheme word ("a Basic explanation") is not a credential."""
    return not secret.isalpha()


_CREDENTIAL_CHARS: Final = r"[A-Za-z0-9._~+/=-]"
_NAME: Final = name_pattern()
PROJECT_RULES: Final = (
    (
        "auth-scheme",
        "A credential after an authentication scheme (Bearer, Api-Key, Basic)",
        rf"\b(?:Bearer|bearer|BEARER|Api-Key|api-key|Basic)\s+({_CREDENTIAL_CHARS}{{12,}})",
        _has_digit_or_symbol,
    ),
    ("sk-key", "An sk- key (OpenAI and others)", r"\b(sk-[A-Za-z0-9_-]{16,})", None),
    ("yandex-api-key-bare", "A Yandex Cloud API key", r"\b(AQVN[A-Za-z0-9_-]{16,})", None),
    ("yandex-iam-token-bare", "A Yandex Cloud IAM token", r"\b(t1\.[A-Za-z0-9_.-]{16,})", None),
    (
        "credential-parameter",
        "A query or form parameter named like a credential",
        rf"(?:^|[?&;])(?:{parameter_pattern()})=([^&#\s'\"]+)",
        None,
    ),
    (
        "credential-field",
        "A JSON field named like a credential",
        rf'"{_NAME}"\s*:\s*"((?:[^"\\]|\\.)+)"',
        None,
    ),
    (
        "credential-field",
        "A JSON field named like a credential, in JSON held in a JSON string",
        rf'\\"{_NAME}\\"\s*:\s*\\"((?:[^"\\]|\\[^"])+)\\"',
        None,
    ),
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str  # gitleaks' release the rules come from
    rules: tuple[Rule, ...]  # in the order they were added to ``combined``
    combined: Any  # re2.Set: which rules match, in one pass

    def matching(self, data: bytes) -> list[Rule]:
        hits: list[int] | None = self.combined.Match(data)
        return [self.rules[index] for index in hits] if hits else []


# gitleaks' keyword-in-context rules (about 100) start by taking up to 50 name characters before
# the keyword, lazily, so that their match holds the whole name (which some allowlists read).
# Whether a rule matches does not depend on it, but in one automaton for all rules those counters
# multiply the states: without it the set builds in half the time, and matches new text (before
# its states are cached) ten times faster. The rule's own regex keeps it.
_OPTIONAL_LEAD: Final = re.compile(r"^(\(\?i\))?\[\\w\.-\]\{0,\d+\}\??")


def _for_the_set(pattern: str) -> bytes:
    return _OPTIONAL_LEAD.sub(lambda m: m[1] or "", pattern, count=1).encode("latin-1")


def _version(text: str) -> str:
    first = text.partition("\n")[0]
    return first.partition("rule set, ")[2].partition(":")[0] or "unknown"


@functools.cache
def rule_set() -> RuleSet:
    """The rules, loaded and compiled into one set on first use (about 0.1 s)."""
    text = resources.files(__package__).joinpath("gitleaks.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    # gitleaks' global allowlist (placeholders such as "abcdefghijklmnopqrstuvwxyz", "true")
    # applies to its own rules; the proxy's are about this traffic and keep no exceptions.
    shared = tuple(a for a in [_allowlist(config.get("allowlist", {}))] if a)
    rules: list[Rule] = []
    for raw in config["rules"]:
        if "regex" not in raw:
            continue  # a rule on file names only
        allowlists = shared + tuple(a for a in map(_allowlist, raw.get("allowlists", ())) if a)
        rules.append(
            Rule(
                raw["id"],
                raw.get("description", ""),
                raw["regex"],
                float(raw.get("entropy", 0.0)),
                int(raw.get("secretGroup", 0)),
                allowlists,
            )
        )
    for rule_id, description, pattern, accepts in PROJECT_RULES:
        rules.append(Rule(rule_id, description, pattern, 0.0, 1, (), accepts))
    combined = re2.Set.SearchSet(_options())
    for rule in rules:
        combined.Add(_for_the_set(rule.pattern))
    combined.Compile()
    return RuleSet(_version(text), tuple(rules), combined)
