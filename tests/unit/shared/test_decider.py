"""The pure decider's helpers."""

from __future__ import annotations

import dataclasses

import pytest

from shared.core.decider import replace


@dataclasses.dataclass(frozen=True)
class Deal:
    title: str = ""
    owner_id: str = ""
    activities: int = 0


def test_replace_gives_what_dataclasses_replace_gives_and_refuses_what_it_refuses() -> None:
    deal = Deal(title="Máy CNC", activities=3)
    new = replace(deal, activities=4, owner_id="u-lan")
    assert new == dataclasses.replace(deal, activities=4, owner_id="u-lan")
    assert type(new) is Deal
    assert (deal.activities, deal.owner_id) == (3, "")  # the old state is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.activities = 5
    with pytest.raises(TypeError, match="Deal has no field activity"):
        replace(deal, activity=1)

    @dataclasses.dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):  # a class that checks itself is built through __init__
        replace(Checked(1), n=-1)
