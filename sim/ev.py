"""Vehicle models: battery, AC and DC limits, and the piecewise-linear DC charge curve.

A charge curve gives charging power against state of charge at its points and is linear
in between. Under a constant power cap the curve is clipped at the cap, and on every
linear piece ``P(s) = a + b·s`` the state of charge follows the closed form of
``C·ds/dt = P(s)``::

    b = 0:  s(t) = s0 + a·t / C
    b ≠ 0:  s(t) = ((a + b·s0)·exp(b·t / C) − a) / b

so energy is integrated exactly and the time to any SoC is known in advance.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.units import S_PER_H

__all__ = ["PRESETS", "ChargeProfile", "EVModel", "ProfileCache"]

_FLAT = 1e-9  # slopes below this (kW per unit SoC) are treated as flat pieces


@dataclass(frozen=True, slots=True)
class EVModel:
    """A vehicle model as far as charging is concerned.

    Attributes:
        name: Model name shown in results.
        capacity_kwh: Usable battery capacity.
        ac_max_kw: Maximum power of the on-board AC charger.
        dc_curve: ``(soc_frac, power_kw)`` points from SoC 0 to 1, the maximum DC power.
    """

    name: str
    capacity_kwh: float
    ac_max_kw: float
    dc_curve: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        """Fail fast on a model that cannot charge."""
        if self.capacity_kwh <= 0:
            raise ValueError(f"capacity_kwh(={self.capacity_kwh}) must be > 0")
        if self.ac_max_kw <= 0:
            raise ValueError(f"ac_max_kw(={self.ac_max_kw}) must be > 0")
        check_curve(self.dc_curve)


def check_curve(points: Sequence[tuple[float, float]]) -> None:
    """Raise ValueError unless the points form a usable charge curve."""
    if len(points) < 2:
        raise ValueError("a charge curve needs at least 2 (soc_frac, power_kw) points")
    socs = [p[0] for p in points]
    if socs[0] != 0.0 or socs[-1] != 1.0:
        raise ValueError(f"a charge curve must run from soc_frac 0 to 1, got {socs[0]} to {socs[-1]}")
    if any(b <= a for a, b in zip(socs, socs[1:], strict=False)):
        raise ValueError(f"charge curve points must be ordered by strictly increasing soc_frac, got {socs}")
    if any(p[1] <= 0 for p in points):
        raise ValueError("charge curve power_kw must be > 0 at every point")


class ChargeProfile:
    """Time ↔ SoC for one vehicle model under one constant power cap.

    Times are measured on the profile's own clock, where SoC 0 is at time 0; a session
    that starts at SoC ``s0`` enters the profile at ``time_at(s0)``.
    """

    __slots__ = ("a_kw", "b_kw", "cap_kw", "capacity_kwh", "linear", "pid", "pieces", "soc", "tau_s")

    def __init__(self, curve: Sequence[tuple[float, float]], cap_kw: float, capacity_kwh: float) -> None:
        """Clip `curve` at `cap_kw` and precompute the cumulative time at each breakpoint."""
        if cap_kw <= 0:
            raise ValueError(f"cap_kw(={cap_kw}) must be > 0; a zero cap means the session is paused")
        soc: list[float] = [curve[0][0]]
        a_kw: list[float] = []
        b_kw: list[float] = []
        for (s0, p0), (s1, p1) in zip(curve, curve[1:], strict=False):
            pieces: list[tuple[float, float, float, float]] = []
            if (p0 - cap_kw) * (p1 - cap_kw) < 0:  # crosses the cap inside the piece
                sx = s0 + (cap_kw - p0) * (s1 - s0) / (p1 - p0)
                pieces = [(s0, p0, sx, cap_kw), (sx, cap_kw, s1, p1)]
            else:
                pieces = [(s0, p0, s1, p1)]
            for q0, r0, q1, r1 in pieces:
                if q1 <= q0:
                    continue  # the cap crosses exactly at a curve point
                r0c, r1c = min(r0, cap_kw), min(r1, cap_kw)
                b = (r1c - r0c) / (q1 - q0)
                a_kw.append(r0c - b * q0)
                b_kw.append(b)
                soc.append(q1)
        tau = [0.0]
        for j, (a, b) in enumerate(zip(a_kw, b_kw, strict=True)):
            tau.append(tau[-1] + _dt_s(a, b, soc[j], soc[j + 1], capacity_kwh))
        self.soc = tuple(soc)
        self.a_kw = tuple(a_kw)
        self.b_kw = tuple(b_kw)
        self.tau_s = tuple(tau)
        self.pieces = len(a_kw)
        # One flat piece from (time 0, SoC 0) to SoC 1 (an AC charge): `time_at` and `soc_at` take piece 0 at
        # every SoC >= 0 and time in [0, tau_s[1]), so a hot path inlines them (`sim.charging.Ports.set_power_limits`).
        self.linear = self.pieces == 1 and -_FLAT < b_kw[0] < _FLAT and soc[0] == 0.0 and tau[0] == 0.0
        self.cap_kw = cap_kw
        self.capacity_kwh = capacity_kwh
        self.pid = -1  # index in the run's profile list, set by `ProfileCache`

    @classmethod
    def flat(cls, cap_kw: float, capacity_kwh: float) -> ChargeProfile:
        """``ChargeProfile(((0.0, cap_kw), (1.0, cap_kw)), cap_kw, capacity_kwh)``, an AC charge, built directly.

        The same numbers as the general clipping (one piece ``a = cap_kw``, ``b = 0``), without
        walking the curve: a gym agent's limits bring a new AC profile every few decisions.
        """
        if cap_kw <= 0:
            raise ValueError(f"cap_kw(={cap_kw}) must be > 0; a zero cap means the session is paused")
        p = cls.__new__(cls)
        p.soc = (0.0, 1.0)
        p.a_kw = (cap_kw,)
        p.b_kw = (0.0,)
        p.tau_s = (0.0, capacity_kwh * 1.0 / cap_kw * S_PER_H)  # `_dt_s` of the flat piece from 0 to 1
        p.pieces = 1
        p.linear = True
        p.cap_kw = cap_kw
        p.capacity_kwh = capacity_kwh
        p.pid = -1
        return p

    @property
    def flat_kw(self) -> float | None:
        """The power of a profile that is one flat piece from SoC 0 to 1 (an AC charge), else None.

        On such a profile the SoC grows linearly with time: ``flat_kw`` × time / `capacity_kwh`.
        """
        if len(self.a_kw) == 1 and -_FLAT < self.b_kw[0] < _FLAT and self.soc[0] == 0.0:
            return self.a_kw[0]
        return None

    def time_at(self, soc_frac: float) -> float:
        """Profile time (s) at which the battery reaches `soc_frac`."""
        soc = self.soc
        j = bisect_right(soc, soc_frac) - 1
        if j >= self.pieces:
            j = self.pieces - 1
        a, b = self.a_kw[j], self.b_kw[j]
        # `_dt_s` inlined, the same arithmetic: this runs twice whenever a session starts charging.
        if -_FLAT < b < _FLAT:
            return self.tau_s[j] + self.capacity_kwh * (soc_frac - soc[j]) / a * S_PER_H
        return self.tau_s[j] + self.capacity_kwh / b * math.log((a + b * soc_frac) / (a + b * soc[j])) * S_PER_H

    def soc_at(self, tau_s: float) -> float:
        """State of charge at profile time `tau_s` (1.0 after the end of the curve)."""
        if tau_s >= self.tau_s[-1]:
            return 1.0
        j = bisect_right(self.tau_s, tau_s) - 1
        a, b, s0 = self.a_kw[j], self.b_kw[j], self.soc[j]
        dt_h = (tau_s - self.tau_s[j]) / S_PER_H
        if -_FLAT < b < _FLAT:
            return s0 + a * dt_h / self.capacity_kwh
        return ((a + b * s0) * math.exp(b * dt_h / self.capacity_kwh) - a) / b

    def power_at(self, soc_frac: float) -> float:
        """Charging power (kW) at `soc_frac`."""
        j = min(bisect_right(self.soc, soc_frac) - 1, len(self.a_kw) - 1)
        return self.a_kw[j] + self.b_kw[j] * soc_frac

    def max_power(self, s0: float, s1: float) -> float:
        """Highest charging power (kW) while the SoC goes from `s0` to `s1`: at an end or at a curve point."""
        kw = max(self.power_at(s0), self.power_at(s1))
        for j in range(bisect_right(self.soc, s0), len(self.a_kw)):
            if self.soc[j] >= s1:
                break
            kw = max(kw, self.a_kw[j] + self.b_kw[j] * self.soc[j])
        return kw

    def min_power(self, s0: float, s1: float) -> float:
        """Lowest charging power (kW) while the SoC goes from `s0` to `s1`: at an end or at a curve point."""
        kw = min(self.power_at(s0), self.power_at(s1))
        for j in range(bisect_right(self.soc, s0), len(self.a_kw)):
            if self.soc[j] >= s1:
                break
            kw = min(kw, self.a_kw[j] + self.b_kw[j] * self.soc[j])
        return kw

    def seconds_at_or_above(self, s0: float, s1: float, power_kw: float) -> float:
        """Seconds spent charging from SoC `s0` to `s1` while the power is at least `power_kw`.

        On each linear piece the power is monotone in SoC, so the part at or above the
        threshold is one SoC range, timed in closed form.
        """
        total = 0.0
        for j, (a, b) in enumerate(zip(self.a_kw, self.b_kw, strict=True)):
            lo, hi = max(self.soc[j], s0), min(self.soc[j + 1], s1)
            if hi <= lo:
                continue
            if abs(b) < _FLAT:
                if a >= power_kw:
                    total += _dt_s(a, b, lo, hi, self.capacity_kwh)
                continue
            x = (power_kw - a) / b
            lo, hi = (max(lo, x), hi) if b > 0 else (lo, min(hi, x))
            if hi > lo:
                total += _dt_s(a, b, lo, hi, self.capacity_kwh)
        return total

    def soc_at_array(self, tau_s: np.ndarray) -> np.ndarray:
        """`soc_at` for an array of profile times."""
        bounds = np.asarray(self.tau_s)
        tau = np.minimum(np.asarray(tau_s, dtype=float), bounds[-1])  # past the end the battery is full
        j = np.clip(np.searchsorted(bounds, tau, side="right") - 1, 0, len(self.a_kw) - 1)
        a, b, s0 = np.asarray(self.a_kw)[j], np.asarray(self.b_kw)[j], np.asarray(self.soc)[j]
        dt_h = (tau - bounds[j]) / S_PER_H
        flat = np.abs(b) < _FLAT
        safe_b = np.where(flat, 1.0, b)
        exponent = np.where(flat, 0.0, b * dt_h / self.capacity_kwh)  # flat pieces take the linear branch
        curved = ((a + b * s0) * np.exp(exponent) - a) / safe_b
        soc = np.where(flat, s0 + a * dt_h / self.capacity_kwh, curved)
        return np.where(tau >= bounds[-1], 1.0, soc)

    def power_at_array(self, soc_frac: np.ndarray) -> np.ndarray:
        """`power_at` for an array of states of charge."""
        j = np.clip(np.searchsorted(np.asarray(self.soc), soc_frac, side="right") - 1, 0, len(self.a_kw) - 1)
        return np.asarray(self.a_kw)[j] + np.asarray(self.b_kw)[j] * soc_frac


def _dt_s(a: float, b: float, s0: float, s1: float, capacity_kwh: float) -> float:
    """Seconds to charge from `s0` to `s1` on the piece ``P(s) = a + b·s``."""
    if abs(b) < _FLAT:
        return capacity_kwh * (s1 - s0) / a * S_PER_H
    return capacity_kwh / b * math.log((a + b * s1) / (a + b * s0)) * S_PER_H


class ProfileCache:
    """The charge profiles of one run, each built once and numbered in order of first use."""

    def __init__(self) -> None:
        """An empty cache."""
        self.profiles: list[ChargeProfile] = []
        # Every ``(model name, dc, cap_kw)`` asked for so far (read directly on the gym's hot path).
        self.by_cap: dict[tuple[str, bool, float], ChargeProfile] = {}
        self._by_key: dict[tuple[str, bool, float], ChargeProfile] = {}

    def get(self, model: EVModel, dc: bool, cap_kw: float) -> ChargeProfile:
        """The profile of `model` on an AC or DC port limited to `cap_kw`.

        The cap is first reduced to what the vehicle could draw anyway, so every cap above
        the vehicle's own maximum shares one profile.
        """
        profile = self.by_cap.get((model.name, dc, cap_kw))
        if profile is None:
            profile = self.by_cap[(model.name, dc, cap_kw)] = self._build(model, dc, cap_kw)
        return profile

    def _build(self, model: EVModel, dc: bool, cap_kw: float) -> ChargeProfile:
        if dc:
            curve = model.dc_curve
            cap_kw = min(cap_kw, max(p for _, p in curve))
        else:
            cap_kw = min(cap_kw, model.ac_max_kw)
        key = (model.name, dc, cap_kw)
        profile = self._by_key.get(key)
        if profile is None:
            if dc:
                profile = ChargeProfile(curve, cap_kw, model.capacity_kwh)
            else:
                profile = ChargeProfile.flat(cap_kw, model.capacity_kwh)
            self._by_key[key] = profile
            profile.pid = len(self.profiles)
            self.profiles.append(profile)
        return profile


def _m(name: str, capacity_kwh: float, ac_max_kw: float, curve: Sequence[tuple[float, float]]) -> EVModel:
    return EVModel(name, capacity_kwh, ac_max_kw, tuple((float(s), float(p)) for s, p in curve))


# Usable capacity, on-board AC charger and DC curve shapes from manufacturers' spec sheets
# and published fast-charge tests, rounded; good for planning, not for warranty claims.
PRESETS: dict[str, EVModel] = {
    m.name: m
    for m in (
        _m(
            "tesla_model_3_lr",
            75.0,
            11.0,
            [
                (0, 170),
                (0.1, 250),
                (0.2, 240),
                (0.3, 190),
                (0.4, 150),
                (0.5, 125),
                (0.6, 100),
                (0.7, 75),
                (0.8, 55),
                (0.9, 35),
                (1.0, 10),
            ],
        ),
        _m(
            "hyundai_ioniq_5_lr",
            74.0,
            11.0,
            [(0, 200), (0.1, 233), (0.45, 220), (0.55, 180), (0.65, 175), (0.75, 120), (0.8, 75), (0.9, 40), (1.0, 10)],
        ),
        _m("vw_id4_pro", 77.0, 11.0, [(0, 110), (0.05, 135), (0.35, 130), (0.5, 100), (0.8, 60), (0.9, 35), (1.0, 10)]),
        _m("nissan_leaf_40", 39.0, 6.6, [(0, 40), (0.5, 46), (0.7, 35), (0.8, 25), (0.9, 15), (1.0, 5)]),
        _m(
            "chevrolet_bolt_ev", 65.0, 11.0, [(0, 50), (0.5, 55), (0.55, 38), (0.7, 38), (0.8, 24), (0.9, 18), (1.0, 5)]
        ),
        _m("renault_zoe_ze50", 52.0, 22.0, [(0, 45), (0.5, 46), (0.7, 30), (0.9, 15), (1.0, 5)]),
        _m(
            "kia_ev6_lr",
            77.4,
            11.0,
            [(0, 200), (0.1, 235), (0.5, 220), (0.6, 180), (0.75, 120), (0.8, 80), (0.9, 40), (1.0, 10)],
        ),
        _m(
            "bmw_i4_edrive40",
            80.7,
            11.0,
            [(0, 150), (0.1, 205), (0.3, 180), (0.5, 130), (0.7, 90), (0.8, 60), (0.9, 35), (1.0, 10)],
        ),
        _m(
            "ford_f150_lightning_er",
            131.0,
            19.2,
            [(0, 140), (0.1, 155), (0.4, 120), (0.6, 90), (0.8, 50), (0.9, 30), (1.0, 10)],
        ),
        _m("ford_e_transit", 68.0, 11.3, [(0, 100), (0.1, 115), (0.5, 110), (0.7, 70), (0.8, 45), (0.9, 25), (1.0, 8)]),
    )
}
