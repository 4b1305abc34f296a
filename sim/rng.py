"""Named random streams: one independent `numpy.random.Generator` per source of randomness.

Each stream is derived from the scenario seed and a stable hash of its name, so adding a
stream (or a site) never reshuffles the numbers another stream draws (common random
numbers across variants).
"""

import zlib

import numpy as np

__all__ = ["stream"]


def stream(seed: int, name: str) -> np.random.Generator:
    """Return the generator for stream `name` under scenario `seed`.

    Args:
        seed: The scenario seed.
        name: The stream name, e.g. ``"arrivals:downtown"`` or ``"drivers"``.
    """
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))
