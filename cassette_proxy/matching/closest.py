"""The recorded requests closest to a miss, found without scanning the cassette.

"Closest" is vcrpy's sense: the most matchers agreeing. Comparing a miss with every recorded
request costs time in proportion to the cassette (82 ms of blocked event loop at 50,000
interactions), so each matcher's projection is indexed instead: value -> the distinct recorded
keys that have it, in recorded order, each list kept to :data:`CANDIDATE_BUDGET` + 1 entries. A
miss takes the lists for its own values, rarest first, until :data:`CANDIDATE_BUDGET` keys are
gathered, and compares only those. A key left out disagrees with the miss on every projection
whose list was taken whole, so when the closest gathered agree on more than that, they are the
closest in the cassette (``exhaustive``); otherwise the explanation says how many were compared.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from operator import eq
from typing import Final

from cassette_proxy.matching.matchers import Key

CANDIDATE_BUDGET: Final = 1_000  # recorded keys a miss is compared with, at most (about 1 ms)
_NOTHING: Final[list[int]] = []


@dataclass(frozen=True, slots=True)
class Near:
    """A distinct recorded key and how many matchers agree with the miss on it."""

    key: Key
    agree: int


@dataclass(frozen=True, slots=True)
class Closest:
    """The closest keys, best first (ties in recorded order); how many keys were compared, and
    whether no key left out can be closer."""

    near: list[Near]
    compared: int
    exhaustive: bool


class ClosestIndex:
    """An index over distinct keys, in recorded order, for :meth:`search`."""

    def __init__(self, keys: Sequence[Key], width: int, budget: int = CANDIDATE_BUDGET) -> None:
        self._keys = list(keys)
        self._width = width
        self._budget = budget
        self._by_value: list[dict[Hashable, list[int]]] = [{} for _ in range(width)]
        for number, key in enumerate(self._keys):
            for by_value, value in zip(self._by_value, key, strict=True):
                ids = by_value.get(value)
                if ids is None:
                    by_value[value] = [number]
                elif len(ids) <= budget:  # one more than the budget says "there are more"
                    ids.append(number)

    def __len__(self) -> int:
        return len(self._keys)

    def search(self, query: Key, limit: int) -> Closest:
        """The ``limit`` keys agreeing with ``query`` on the most projections."""
        lists = sorted(
            ((self._by_value[at].get(value, _NOTHING), at) for at, value in enumerate(query)),
            key=lambda pair: len(pair[0]),
        )
        gathered: dict[int, None] = {}  # an ordered set of key numbers
        whole = 0  # projections whose list was taken whole (or was empty)
        for ids, _ in lists:
            room = self._budget - len(gathered)
            if len(ids) <= min(room, self._budget):
                gathered.update(dict.fromkeys(ids))
                whole += 1
            else:
                gathered.update(dict.fromkeys(ids[: max(room, 0)]))
                break
        for number in range(len(self._keys)):  # fewer than `limit` share anything: the first
            if len(gathered) >= limit:
                break
            gathered.setdefault(number)
        keys = self._keys
        # (-agreeing, number): the smallest are the closest, ties in recorded order.
        scored = [(-sum(map(eq, query, keys[number])), number) for number in gathered]
        near = [Near(keys[number], -score) for score, number in heapq.nsmallest(limit, scored)]
        # A key not gathered disagrees on the `whole` projections, so agrees on the rest at most.
        exhaustive = whole == self._width or (
            len(near) == limit and near[-1].agree >= self._width - whole
        )
        return Closest(near, len(gathered), exhaustive)
