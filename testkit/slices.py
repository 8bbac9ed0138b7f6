"""Given events → when a command → then events (or a refusal): the shape of a test whose answer depends on
history, as the `eventsourcing` library's slice tests read. The decision is the domain's pure function, so a
slice needs no store::

    slice = Slice(deal_decider, lambda deal, cmd: decide(deal, cmd, pipeline, NOW, DEAL_ID))
    slice.given(opened, moved).when(WinDeal(...)).then(DealWon(...))
    slice.given(opened, won).when(WinDeal(...)).refused("deal_closed")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pytest

from shared.core.decider import Decider, RefusedError
from shared.core.events import DomainEvent

S = TypeVar("S")


@dataclass(frozen=True)
class Slice(Generic[S]):
    decider: Decider[S]
    decide: Callable[[S, Any], Sequence[DomainEvent]]

    def given(self, *history: DomainEvent) -> When[S]:
        return When(self, self.decider.fold(history))


@dataclass(frozen=True)
class When(Generic[S]):
    slice: Slice[S]
    state: S

    def when(self, command: Any) -> Then[S]:
        return Then(self, command)


@dataclass(frozen=True)
class Then(Generic[S]):
    when_: When[S]
    command: Any

    def then(self, *expected: DomainEvent) -> list[DomainEvent]:
        events = list(self.when_.slice.decide(self.when_.state, self.command))
        assert events == list(expected)
        return events

    def then_events(self) -> list[DomainEvent]:
        """The events, for a test that checks some of their fields."""
        return list(self.when_.slice.decide(self.when_.state, self.command))

    def refused(self, rule: str) -> RefusedError:
        with pytest.raises(RefusedError) as refused:
            self.when_.slice.decide(self.when_.state, self.command)
        assert refused.value.rule == rule, refused.value.message
        return refused.value
