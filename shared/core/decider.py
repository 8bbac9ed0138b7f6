"""The pure part of an aggregate: its initial state, ``evolve`` folding events into it, and the refusals a
decision raises. Nothing here reads or writes: the command runner (``shared.store.commands``) loads a stream,
decides with a domain's pure functions and appends what they return.

Refusals name what went wrong in the domain's words; the HTTP edge maps each kind to a status in one place
(``shared.edge.problems``): a broken business rule 409, an invalid command 422, something not there 404; the
rights checks' ``ForbiddenError`` 403 and ``NotVisibleError`` 404 (as if it did not exist)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.core.events import DomainEvent

S = TypeVar("S")


class RefusedError(Exception):
    """A command refused; ``rule`` is a stable name clients can match, ``message`` says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class RuleError(RefusedError):
    """A business rule refused the command. Each domain subclasses it."""


class InvalidError(RuleError):
    """The command names something that does not exist in this context, or asks what cannot be."""


class AbsentError(RuleError):
    """No such aggregate (or part of one)."""


class ForbiddenError(RefusedError):
    """The caller may see it but not do this."""

    def __init__(self, message: str, rule: str = "forbidden") -> None:
        super().__init__(rule, message)


class NotVisibleError(RefusedError):
    """The caller may not see it: answered as if it did not exist."""

    def __init__(self, message: str, rule: str = "not_found") -> None:
        super().__init__(rule, message)


_FIELDS: dict[type, frozenset[str]] = {}


def replace(state: S, **changes: Any) -> S:
    """``dataclasses.replace`` for the frozen dataclasses states are made of, without re-running ``__init__``
    (which sets every field again through ``object.__setattr__``: ~7 µs of each folded event on a deal, a third
    of a command's CPU when it folds its stream; bench/append.py). The same checks: only the class's fields."""
    cls = type(state)
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
            return dataclasses.replace(state, **changes)  # type: ignore[type-var]
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls) if f.init)
    if not names.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(set(changes) - names))}")
    new = object.__new__(cls)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass(frozen=True)
class Decider(Generic[S]):
    initial: S
    evolve: Callable[[S, DomainEvent], S]
    snapshot_every: int = 0  # events folded past the last snapshot before a new one is written (0: never)
    snapshot_version: int = 1  # bump when the state's shape or evolve changes

    def fold(self, events: Sequence[DomainEvent], state: S | None = None) -> S:
        for e in events:
            state = self.evolve(self.initial if state is None else state, e)
        return self.initial if state is None else state
