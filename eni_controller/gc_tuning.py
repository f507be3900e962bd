"""Garbage-collector settings for the long-running controller process.

Every EC2 call allocates short-lived objects by the hundred (botocore's dicts,
the parsed dataclasses, coroutines), while the process holds a long-lived heap
that never becomes garbage: imported modules, botocore's service model, the
informer caches. At CPython's default young-generation threshold (700
allocations) the collector runs often, and every older-generation pass walks
that long-lived heap again: ~11 µs of the in-process pipeline's ~86 µs per ENI
went to collection (bench/pipeline.py, py-spy). So, once at start-up, the heap
is frozen (never scanned again) and the young generation is collected in fewer,
larger passes. Garbage cycles are still collected; peak RSS is reported by the
suite (bench/results/suite/large.json).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
