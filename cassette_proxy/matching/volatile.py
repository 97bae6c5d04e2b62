"""Values that change on every run, and the requests that differ from a recording only in them.

A request that misses because its ``metadata.ts`` is today's, its ``user`` a fresh uuid or its
prompt quotes a new order id would miss again on the next run, however often it is recorded:
``new_episodes`` would only add near-duplicates. :func:`volatile_changes` tells such a miss from
a real one (a different prompt, a different model), so the advice can be the one that works:
ignore the field (``match_ignore``), or give the value inside a text a placeholder.

A value is volatile when, with every token shaped like a uuid, a timestamp (ISO 8601, or epoch
seconds or milliseconds), a long hex string or a long random-looking id masked, the two values
are the same. Whole values (``"user-<uuid>"``, a timestamp) are advised to be ignored; a volatile
token inside a longer text (a prompt) is advised a placeholder, so the rest of the text is still
compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from cassette_proxy.matching.ignore import escaped

_TOKENS: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # uuid
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|(?<![\w.])\d{9,13}(?:\.\d+)?(?![\w.])"  # epoch seconds or milliseconds
    r"|(?<![0-9a-zA-Z])[0-9a-fA-F]{16,}(?![0-9a-zA-Z])"  # hex digests, trace ids
    # random ids: 20+ letters, digits, - and _, with a digit and a letter among them
    r"|(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{20,}(?![\w-])",
    re.ASCII,
)
_MASK: Final = "\x00"
WHOLE_RESIDUE: Final = 8  # characters beside the masked tokens, at most, for "the value"
_MAX_CHANGES: Final = 20


@dataclass(frozen=True, slots=True)
class Change:
    """One field whose value differs: where, and whether the whole value changes from run to
    run (``value``: ignore the field) or a token inside a text does (``inside``: a
    placeholder)."""

    pointer: str
    kind: Literal["value", "inside"]
    new: str
    recorded: str


def _masked(text: str) -> tuple[str, int]:
    """``text`` with its volatile tokens masked, and how many there were."""
    return _TOKENS.subn(_MASK, text)


def _classify(pointer: str, new: Any, old: Any) -> Change | None:
    """The change from ``old`` to ``new`` if it is volatile, else None."""
    if isinstance(new, bool) or isinstance(old, bool):
        return None
    if isinstance(new, int | float) and isinstance(old, int | float):
        new, old = str(new), str(old)
    if not isinstance(new, str) or not isinstance(old, str):
        return None
    masked_new, found_new = _masked(new)
    masked_old, found_old = _masked(old)
    if not found_new or masked_new != masked_old or found_new != found_old:
        return None
    residue = masked_new.replace(_MASK, "")
    # An id with a prefix ("user-<uuid>") is the value; words around a token are a text.
    whole = len(residue) <= WHOLE_RESIDUE and not any(c.isspace() for c in residue)
    kind: Literal["value", "inside"] = "value" if whole else "inside"
    return Change(pointer, kind, new, old)


def changed_leaves(new: Any, old: Any, at: str = "") -> list[tuple[str, Any, Any]] | None:
    """The leaves that differ between two JSON documents of the same shape (same keys, same
    array lengths), or None if their shapes differ."""
    if isinstance(new, dict) and isinstance(old, dict):
        if new.keys() != old.keys():
            return None
        pairs = [(new[k], old[k], f"{at}/{escaped(str(k))}") for k in new]
    elif isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            return None
        pairs = [(a, b, f"{at}/{i}") for i, (a, b) in enumerate(zip(new, old, strict=True))]
    elif isinstance(new, dict | list) or isinstance(old, dict | list):
        return None
    else:
        return [] if new == old else [(at or "/", new, old)]
    found: list[tuple[str, Any, Any]] = []
    for a, b, where in pairs:
        below = changed_leaves(a, b, where)
        if below is None:
            return None
        found += below
    return found


def volatile_changes(new: Any, old: Any) -> list[Change] | None:
    """The changes from ``old`` to ``new`` (JSON documents) if they are all volatile and there
    is at least one; None if anything else differs."""
    leaves = changed_leaves(new, old)
    if not leaves or len(leaves) > _MAX_CHANGES:
        return None
    changes = [_classify(pointer, a, b) for pointer, a, b in leaves]
    if any(change is None for change in changes):
        return None
    return [change for change in changes if change is not None]


def described(change: Change) -> str:
    """``/metadata/ts ('1796637203.09' now, '1796637199.88' recorded)``, values cut short."""

    def short(value: str) -> str:
        return repr(value if len(value) <= 60 else value[:57] + "...")

    return f"{change.pointer} ({short(change.new)} now, {short(change.recorded)} recorded)"
