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
