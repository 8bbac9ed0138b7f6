"""read_all builds each RecordedEvent without its __init__ (decision 0031): the same frozen, equal object."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from shared.store import Checkpoint, RecordedEvent
from shared.store.postgres import _COLUMNS, _replayed


def test_a_replayed_row_is_the_event_init_would_make() -> None:
    now = datetime.now(UTC)
    row = ("deal-1", 3, 42, uuid.uuid4(), "pipelines.deals.DealWon", 1, {"a": 1}, {"actor": "u"}, now, now, 777)
    assert [c.strip() for c in _COLUMNS.split(",")][-1] == "tx_id"
    made = RecordedEvent(*row[:10], checkpoint=Checkpoint(777, 42))
    replayed = _replayed(row)
    assert replayed == made and hash(replayed.checkpoint) == hash(made.checkpoint)
    assert type(replayed) is RecordedEvent and type(replayed.checkpoint) is Checkpoint
    assert replayed.checkpoint.tx == 777 and replayed.checkpoint.position == 42
    assert repr(replayed) == repr(made)
    assert dataclasses.replace(replayed, version=4).version == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        replayed.version = 5
