"""Unit conversions. Simulation time is float seconds since the scenario start (`t_s`)."""

__all__ = ["S_PER_DAY", "S_PER_H", "S_PER_MIN", "S_PER_WEEK", "h_to_s", "min_to_s", "s_to_h"]

S_PER_MIN = 60.0
S_PER_H = 3600.0
S_PER_DAY = 86400.0
S_PER_WEEK = 7 * S_PER_DAY


def h_to_s(duration_h: float) -> float:
    """Hours to seconds."""
    return duration_h * S_PER_H


def min_to_s(duration_min: float) -> float:
    """Minutes to seconds."""
    return duration_min * S_PER_MIN


def s_to_h(duration_s: float) -> float:
    """Seconds to hours."""
    return duration_s / S_PER_H
