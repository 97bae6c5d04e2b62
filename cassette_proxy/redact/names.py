"""Names whose value is a credential: of a header, a query or form parameter, a JSON field.

A value found under such a name is redacted whatever it looks like (``"password": "hunter2"``),
where the token rules (:mod:`cassette_proxy.redact.rules`) need a value shaped like a key. A
name counts when, lowercased and without separators (``-``, ``_``, ``.``, spaces), it ends in
one of :data:`SUFFIXES`: ``X-Amz-Security-Token``, ``Ocp-Apim-Subscription-Key``,
``client_secret``, ``dbPassword``. Generic last words are left out on purpose: ``key`` would
take ``prompt_cache_key`` and ``Idempotency-Key``, ``token`` the ``token`` of every logprob,
``tokens`` every usage count, and a recording must replay what the upstream sent.
A query or form parameter may also be one of :data:`PARAMETERS` exactly (``?key=...``).
"""

from __future__ import annotations

import re
from typing import Final

SUFFIXES: Final = (
    ("password",),
    ("passwd",),
    ("passphrase",),
    ("secret",),
    ("credential",),
    ("credentials",),
    ("authorization",),
    ("apikey",),
    ("api", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("private", "key"),
    ("signing", "key"),
    ("master", "key"),
    ("auth", "key"),
    ("subscription", "key"),
    ("access", "token"),
    ("refresh", "token"),
    ("id", "token"),
    ("auth", "token"),
    ("bearer", "token"),
    ("session", "token"),
    ("security", "token"),
    ("private", "token"),
    ("api", "token"),
    ("iam", "token"),
    ("oauth", "token"),
)
PARAMETERS: Final = frozenset({"key", "token", "auth", "sig", "signature", "pwd"})
_LAST_WORDS: Final = sorted({words[-1] for words in SUFFIXES})


def field_keywords() -> tuple[str, ...]:
    """What a JSON field named like a credential holds: its name's last word and the closing
    quote (``key"``; ``key\\"`` in JSON held in a string). The rules' keywords: text without
    any is not searched, and ``prompt_cache_key`` or ``max_output_tokens`` are not a reason."""
    return tuple(f'{word}"' for word in _LAST_WORDS) + tuple(f'{word}\\"' for word in _LAST_WORDS)


def parameter_keywords() -> tuple[str, ...]:
    """What a query or form parameter named like a credential holds: the end of its name and
    the ``=`` (``secret=``)."""
    return tuple(f"{word}=" for word in sorted({*_LAST_WORDS, *PARAMETERS}))


_SEPARATORS: Final = re.compile(r"[-_. ]")
_JOINED: Final = tuple(sorted({"".join(words) for words in SUFFIXES}, key=len, reverse=True))


def _normalized(name: str) -> str:
    return _SEPARATORS.sub("", name.lower())


def is_credential_name(name: str) -> bool:
    """Whether a header or JSON field called ``name`` holds a credential."""
    return _normalized(name).endswith(_JOINED)


def is_credential_parameter(name: str) -> bool:
    """Whether a query or form parameter called ``name`` holds a credential."""
    return name.lower() in PARAMETERS or is_credential_name(name)


def name_pattern() -> str:
    """An RE2 (and Python) pattern, case-insensitive, for a whole name that
    :func:`is_credential_name` accepts: any name characters, then a suffix whose words may be
    separated by ``-``, ``_``, ``.`` or a space."""
    suffixes = sorted(("[-_. ]?".join(words) for words in SUFFIXES), key=len, reverse=True)
    return r"(?i:[A-Za-z0-9_. -]*(?:" + "|".join(suffixes) + "))"


def parameter_pattern() -> str:
    """:func:`name_pattern`, or one of :data:`PARAMETERS` exactly."""
    exact = "|".join(sorted(PARAMETERS, key=len, reverse=True))
    return r"(?i:" + exact + "|" + name_pattern() + ")"
