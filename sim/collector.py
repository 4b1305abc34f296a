"""The garbage collector tuned for a simulation run (see `collector_tuned`)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_tuned"]


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """The garbage collector tuned for a run while it goes, as it was again after.

    Two things make its default work a waste here. The objects alive as the run starts (modules,
    the scenario, the network, its arrivals: about 110,000) outlive it, yet every full collection
    visits them all again: they are frozen (`gc.freeze`) for the run and handed back to the oldest
    generation after it (`gc.unfreeze`); a process that froze objects itself is left as it was. And
    a session's objects die when it ends, so the young generation's count (allocations net of
    deallocations) grows slowly: at 700, its threshold, it triggers about a thousand collections a
    year, each visiting the live sessions' objects again; at 10,000 a handful. Together about 1.2 s
    of CPU in a year's uncontrolled run of the throughput benchmark (GC time measured with
    `gc.callbacks`).
    """
    threshold = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    if threshold[0]:  # 0: automatic collection is off; leave it so
        gc.set_threshold(max(threshold[0], 10_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if freeze:
            gc.unfreeze()
