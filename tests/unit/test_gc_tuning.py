"""Unit test: the controller's start-up GC settings (gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from eni_controller.gc_tuning import YOUNG_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_start_up_heap_is_frozen_and_young_garbage_collected_in_larger_passes() -> None:
    middle, old = gc.get_threshold()[1:]
    tune_garbage_collector()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0

    class Cycle:
        other: object

    first, second = Cycle(), Cycle()
    first.other, second.other = second, first
    del first, second
    assert gc.collect() >= 2  # cycles made after start-up are still collected
