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

They run as gitleaks runs them: each rule has keywords, one of which any match contains (``ghp_``,
``sk_live``, the name before ``=``), and a rule's regex runs only over text that holds one of its
keywords. The keywords of all rules are one RE2 set, matched in one pass over the bytes: a body
with none of them costs that pass and nothing else. RE2 runs in time linear in the input whatever
the pattern (no backtracking); one set of all the rules' regexes would be a single pass too, but
its automaton grows with every combination of their counters, and on varied text (base64, say)
10 MB took 56 s, where the keywords and the rules they call for take one or two.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, Protocol, cast

import re2

from cassette_proxy.redact.names import (
    field_keywords,
    name_pattern,
    parameter_keywords,
    parameter_pattern,
)


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
    return options


@functools.cache
def compile_pattern(pattern: str) -> Regex:
    return cast(Regex, re2.compile(pattern.encode("latin-1"), _options()))


# gitleaks' keyword-in-context rules (about 100) start by taking up to 50 name characters before
# the keyword, lazily, so that their match holds the whole name (which some allowlists read).
# What they find does not depend on it, but it makes their search many times slower on text
# full of name characters (base64): they are searched without it, and the name is taken back in
# by :attr:`Rule.lead` where an allowlist reads the match.
_OPTIONAL_LEAD: Final = re.compile(r"^(?P<flags>\(\?i\))?\[\\w\.-\]\{0,(?P<most>\d+)\}\??")


@functools.cache
def searched(pattern: str) -> tuple[str, int]:
    """The pattern without its optional lead, and how many name characters the lead takes."""
    lead = _OPTIONAL_LEAD.match(pattern)
    if lead is None:
        return pattern, 0
    return (lead["flags"] or "") + pattern[lead.end() :], int(lead["most"])


Target = Literal["secret", "match", "line"]


@dataclass(frozen=True, slots=True)
class Allowlist:
    """gitleaks' allowlist: a finding it allows is not a secret."""

    target: Target
    regexes: tuple[Regex, ...]
    stopwords: Regex | None  # any of them in the secret, ignoring case (gitleaks has 1,400)

    def allows(self, secret: bytes, target: bytes) -> bool:
        """Whether a finding is allowed: ``target`` is the secret, its match or its line, as
        :attr:`target` says."""
        if any(regex.search(target) is not None for regex in self.regexes):
            return True
        return self.stopwords is not None and self.stopwords.search(secret) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str
    pattern: str  # RE2 syntax
    entropy: float  # the secret's Shannon entropy must exceed it (0: no minimum)
    secret_group: int  # 0: the first group that matched, or the whole match without one
    allowlists: tuple[Allowlist, ...]
    keywords: tuple[str, ...]  # lowercase; a match holds one of them
    accepts: Callable[[bytes], bool] | None = None  # a further test of the secret

    @property
    def regex(self) -> Regex:
        """The pattern to search with (:func:`searched`), compiled on first use: most rules'
        keywords never turn up."""
        return compile_pattern(searched(self.pattern)[0])

    @property
    def lead(self) -> int:
        """How many name characters before its match gitleaks' own regex would take in."""
        return searched(self.pattern)[1]


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
    words = raw.get("stopwords", ())
    stopwords = compile_pattern(_any_of(words)) if words else None
    if not regexes and stopwords is None:
        return None
    return Allowlist(raw.get("regexTarget", "secret"), regexes, stopwords)


def _any_of(words: Iterable[str]) -> str:
    """An RE2 pattern for any of ``words``, ignoring case."""
    return "(?i:" + "|".join(re.escape(word) for word in sorted(set(words))) + ")"


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
        ("bearer", "api-key", "basic"),
        _has_digit_or_symbol,
    ),
    ("sk-key", "An sk- key (OpenAI and others)", r"\b(sk-[A-Za-z0-9_-]{16,})", ("sk-",), None),
    (
        "yandex-api-key-bare",
        "A Yandex Cloud API key",
        r"\b(AQVN[A-Za-z0-9_-]{16,})",
        ("aqvn",),
        None,
    ),
    (
        "yandex-iam-token-bare",
        "A Yandex Cloud IAM token",
        r"\b(t1\.[A-Za-z0-9_.-]{16,})",
        ("t1.",),
        None,
    ),
    (
        "credential-parameter",
        "A query or form parameter named like a credential",
        rf"(?:^|[?&;])(?:{parameter_pattern()})=([^&#\s'\"]+)",
        parameter_keywords(),
        None,
    ),
    (
        "credential-field",
        "A JSON field named like a credential",
        rf'"{_NAME}"\s*:\s*"((?:[^"\\]|\\.)+)"',
        field_keywords(),
        None,
    ),
    (
        "credential-field",
        "A JSON field named like a credential, in JSON held in a JSON string",
        rf'\\"{_NAME}\\"\s*:\s*\\"((?:[^"\\]|\\[^"])+)\\"',
        field_keywords(),
        None,
    ),
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str  # gitleaks' release the rules come from
    rules: tuple[Rule, ...]
    keywords: Any  # re2.Set of every rule's keywords, ignoring case: which occur, in one pass
    rules_of: tuple[tuple[int, ...], ...]  # indices into ``rules``, by the keyword's index
    always: tuple[int, ...]  # rules without keywords (gitleaks has none today)

    def candidates(self, data: bytes) -> list[Rule]:
        """The rules one of whose keywords ``data`` holds, in the rule set's order."""
        hits: list[int] | None = self.keywords.Match(data)
        if not hits and not self.always:
            return []
        indices = {i for hit in hits or () for i in self.rules_of[hit]}.union(self.always)
        return [self.rules[i] for i in sorted(indices)]


def _version(text: str) -> str:
    first = text.partition("\n")[0]
    return first.partition("rule set, ")[2].partition(":")[0] or "unknown"


@functools.cache
def rule_set() -> RuleSet:
    """The rules, loaded and their keywords compiled into one set on first use."""
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
                tuple(word.lower() for word in raw.get("keywords", ())),
            )
        )
    for rule_id, description, pattern, keywords, accepts in PROJECT_RULES:
        rules.append(Rule(rule_id, description, pattern, 0.0, 1, (), keywords, accepts))
    words = sorted({word for rule in rules for word in rule.keywords})
    keyword_set = re2.Set.SearchSet(_options())
    for word in words:
        keyword_set.Add(_any_of([word]).encode("latin-1"))
    keyword_set.Compile()
    rules_of = tuple(tuple(i for i, r in enumerate(rules) if word in r.keywords) for word in words)
    always = tuple(i for i, rule in enumerate(rules) if not rule.keywords)
    return RuleSet(_version(text), tuple(rules), keyword_set, rules_of, always)
