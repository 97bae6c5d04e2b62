"""A cassette's age as messages say it (store/hygiene.py)."""

from __future__ import annotations

import pytest

from cassette_proxy.store.hygiene import _age


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(1, "1 second"), (1.2, "1 second"), (59, "59 seconds"), (3 * 3600, "3 hours"),
     (2 * 86400 + 5, "2 days")],
)  # fmt: skip
def test_an_age_is_said_in_its_largest_unit_in_the_singular_for_one(
    seconds: float, said: str
) -> None:
    assert _age(seconds) == said
