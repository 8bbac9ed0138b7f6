"""The checker's rules for what a topic may hold of a stream (no servers): every stored version, first published in
order, and published again only as a resend of a suffix (a relay resuming from its checkpoint)."""

from __future__ import annotations

import pytest

from testkit.checker import in_order, resent_as_suffixes


@pytest.mark.parametrize(
    "published",
    [
        [1, 2, 3],
        [1, 2, 3, 3],  # the last one again
        [1, 2, 3, 2, 3, 4],  # a relay resumed from before 2
        [1, 2, 3, 4, 2, 3, 2, 3, 4, 5],  # ... and crashed again while resending
        [1, 1, 2, 1, 2, 3],
    ],
)
def test_resends_of_a_suffix_are_delivery_at_least_once(published: list[int]) -> None:
    assert in_order(published, sorted(set(published))) is None
    assert resent_as_suffixes(published) is None


@pytest.mark.parametrize(
    ("published", "why"),
    [
        ([1, 2, 3, 1, 3], "went from 1 to 3"),  # a resend that skips a version
        ([1, 2, 3, 4, 2, 3, 5], "went from 3 to 5"),  # new versions before the resend reached the highest
    ],
)
def test_a_resend_that_skips_is_refused(published: list[int], why: str) -> None:
    assert why in (resent_as_suffixes(published) or "")


def test_an_unfinished_resend_is_missing_the_rest() -> None:
    """While the relay is still publishing, the end of a resend is missing: the checker waits for it."""
    assert (resent_as_suffixes([1, 2, 3, 2]) or "").startswith("missing the rest of a resend")


def test_in_order_still_says_what_is_missing_or_out_of_order() -> None:
    assert in_order([1, 3], [1, 2, 3]) == "missing versions [2]"
    assert in_order([1, 3, 2], [1, 2, 3]) == "out of order: [1, 3, 2]"
    assert in_order([1, 2, 4], [1, 2]) == "unknown versions [4]"
