"""The projection runner pauses the cyclic garbage collector during a batch, and always gives it back."""

from __future__ import annotations

import gc

import pytest

from shared.messaging.runner import _collector_paused


def test_paused_inside_restored_after_even_nested_and_on_errors() -> None:
    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the outer batch still runs"
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError("a failed batch")
    assert gc.isenabled()


def test_a_collector_disabled_by_someone_else_stays_disabled() -> None:
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_settled_heap_is_out_of_the_collectors_way_and_young_collections_are_rarer() -> None:
    from shared.edge.service import YOUNG_COLLECTION_EVERY, settle_heap

    threshold = gc.get_threshold()
    startup = {"built": ["at startup"]}
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is startup for o in gc.get_objects()), "frozen: never walked by a collection again"
        later = {"built": ["while serving"]}
        assert any(o is later for o in gc.get_objects()), "what comes after is collected as usual"
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_catch_up_batch_holds_the_pause_until_a_live_batch_or_the_time_to_collect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.messaging import runner

    assert gc.isenabled()
    with _collector_paused(hold=True):
        pass
    assert not gc.isenabled(), "held past a catch-up batch"
    runner._collector_given_back(after_s=runner.COLLECT_EVERY_S)
    assert not gc.isenabled(), "nothing to read, but not yet time to collect"
    with _collector_paused():
        pass
    assert gc.isenabled(), "a live batch gives it back"
    with _collector_paused(hold=True):
        pass
    monkeypatch.setattr(runner, "COLLECT_EVERY_S", 0.0)
    with _collector_paused(hold=True):
        pass
    assert gc.isenabled(), "time to collect: given back as the next catch-up batch ends"
    with _collector_paused(hold=True):
        pass
    runner._collector_given_back(after_s=runner.COLLECT_EVERY_S)
    assert gc.isenabled(), "time to collect: given back while nothing is read"


def test_a_held_pause_is_not_mistaken_for_someone_elses() -> None:
    from shared.messaging import runner

    with _collector_paused(hold=True):
        pass
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert runner._collector_paused_at is None
