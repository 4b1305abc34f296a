"""Battery ageing: calendar and cycle capacity fade of an EV from its state-of-charge trajectory.

The model is the semi-empirical ageing model of Schmalstieg et al. for NMC/graphite cells (Sanyo
UR18650E, 2.05 Ah): J. Schmalstieg, S. Käbitz, M. Ecker, D. U. Sauer, "A holistic aging model for
Li(NiMnCo)O2 based 18650 lithium-ion batteries", Journal of Power Sources 257 (2014) 325-334,
doi:10.1016/j.jpowsour.2014.02.012. It is the model EV2Gym computes (``EV.get_battery_degradation``)
and NREL's BLAST-Lite ships (``nmc111_gr_Sanyo2Ah_2014``); the parameters below are the paper's,
the same in both and in TUM's SimSES (``SanyoNMC…DegradationModel``). The relative capacity lost
is the sum of two power laws::

    calendar:  q_cal = α(V, T) · t^0.75      α = (7.543 · V − 23.75) · 10^6 · exp(−6976 / T)
    cycle:     q_cyc = β(V̄, DoD) · Q^0.5     β = 7.348·10^-3 · (V̄ − 3.667)^2 + 7.6·10^-4 + 4.081·10^-3 · DoD

with t in days, T in kelvin, V the cell's open-circuit voltage at the SoC the battery rests at, Q the
charge through one cell in Ah (charge and discharge), V̄ the mean voltage of a cycle and DoD its
depth. The open-circuit voltage is EV2Gym's straight line ``V = 3.3324 + 0.8263 · SoC`` (it meets
BLAST-Lite's OCV table of the cell at 0 and 100 % SoC).

A run is short beside a battery's life, so, as EV2Gym does, each EV's fade is the *marginal* fade of
a battery already ``age`` days old with the charge throughput its mileage put through it: the
derivatives of the power laws there, times what the run adds::

    calendar:  Δq_cal = 0.75 · age^-0.25 · ∫ α(V(s(t)), T) dt
    cycle:     Δq_cyc = 0.5 · Q_age^-0.5 · Σ_cycles β(V̄_c, DoD_c) · Q_c

Marginal fade adds up: a session's fade does not depend on the order of sessions, and a part of it
can be attributed to charging or to V2G. Because V is linear in SoC, α is too, and the calendar
integral needs only ∫ s dt, exact for the simulation's closed-form charge curves. Cycles are the
rainflow cycles (ASTM E1049) of a session's SoC turning points; a session that only charges is one
half cycle from its plug-in SoC to its departure SoC.

Relative fade times the battery's capacity is the capacity lost, in kWh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.units import S_PER_DAY, S_PER_H

if TYPE_CHECKING:
    from sim.config.degradation import Degradation
    from sim.ev import ChargeProfile

__all__ = [
    "CELL_AH",
    "AgeingModel",
    "SessionFade",
    "alpha_per_day",
    "beta_per_sqrt_ah",
    "ocv_v",
    "rainflow",
    "session_fade",
    "soc_time_integral",
]

# Schmalstieg et al. (2014), capacity fade; the same values in EV2Gym, BLAST-Lite and SimSES.
CELL_AH = 2.05  # Sanyo UR18650E nominal capacity (EV2Gym's b_cap_ah)
OCV_0_V, OCV_SLOPE_V = 3.3324, 0.8263  # EV2Gym's straight-line open-circuit voltage of the cell
CAL_A_PER_V, CAL_B, CAL_ACTIVATION_K, CAL_POWER = 7.543, -23.75, 6976.0, 0.75
CYC_A, CYC_V_MIN, CYC_C, CYC_D, CYC_POWER = 7.348e-3, 3.667, 7.6e-4, 4.081e-3, 0.5
KELVIN = 273.15
_FLAT = 1e-6  # kW per unit SoC: pieces flatter than this integrate as straight lines (see `soc_time_integral`)


def ocv_v(soc_frac: np.ndarray | float) -> np.ndarray | float:
    """Open-circuit voltage of the cell (V) at `soc_frac`."""
    return OCV_0_V + OCV_SLOPE_V * soc_frac


def alpha_per_day(soc_frac: np.ndarray | float, temperature_k: float) -> np.ndarray | float:
    """Calendar fade coefficient α (relative capacity per day^0.75) of a battery resting at `soc_frac`."""
    return (CAL_A_PER_V * ocv_v(soc_frac) + CAL_B) * 1e6 * math.exp(-CAL_ACTIVATION_K / temperature_k)


def beta_per_sqrt_ah(mean_soc_frac: np.ndarray | float, dod_frac: np.ndarray | float) -> np.ndarray | float:
    """Cycle fade coefficient β (relative capacity per √Ah) of cycles of depth `dod_frac` about `mean_soc_frac`."""
    return CYC_A * (ocv_v(mean_soc_frac) - CYC_V_MIN) ** 2 + CYC_C + CYC_D * dod_frac


@dataclass(frozen=True, slots=True)
class AgeingModel:
    """The state of the batteries the marginal fade is taken at: temperature, age and the mileage behind it."""

    temperature_c: float = 25.0
    battery_age_days: float = 730.0
    km_per_year: float = 15_000.0
    kwh_per_km: float = 0.186

    @classmethod
    def of(cls, cfg: Degradation) -> AgeingModel:
        """The model a scenario's `degradation` section asks for."""
        return cls(cfg.temperature_c, cfg.battery_age_days, cfg.km_per_year, cfg.kwh_per_km)

    @property
    def temperature_k(self) -> float:
        """Battery temperature in kelvin."""
        return self.temperature_c + KELVIN

    def throughput_behind_ah(self, capacity_kwh: np.ndarray | float) -> np.ndarray | float:
        """Charge through one cell (Ah) of a battery of `capacity_kwh` at its age: its mileage charged and driven."""
        energy_kwh = self.battery_age_days * self.km_per_year / 365.0 * self.kwh_per_km
        return 2.0 * energy_kwh / capacity_kwh * CELL_AH

    def calendar_frac(self, duration_s: np.ndarray | float, soc_time_s: np.ndarray | float) -> np.ndarray | float:
        """Marginal calendar fade over `duration_s` seconds during which ∫ SoC dt is `soc_time_s` (SoC × s).

        α is linear in SoC, so ∫ α(s(t)) dt = α(0) · duration + (α(1) − α(0)) · ∫ s dt.
        """
        a0 = alpha_per_day(0.0, self.temperature_k)
        a1 = alpha_per_day(1.0, self.temperature_k)
        integral_days = (a0 * duration_s + (a1 - a0) * soc_time_s) / S_PER_DAY
        return CAL_POWER * self.battery_age_days ** (CAL_POWER - 1.0) * integral_days

    def cycle_frac(
        self,
        dod_frac: np.ndarray | float,
        mean_soc_frac: np.ndarray | float,
        count: np.ndarray | float,
        capacity_kwh: np.ndarray | float,
    ) -> np.ndarray | float:
        """Marginal cycle fade of `count` cycles (0.5: a half cycle) of depth `dod_frac` about `mean_soc_frac`."""
        q_ah = 2.0 * count * dod_frac * CELL_AH
        q_age = self.throughput_behind_ah(capacity_kwh)
        return CYC_POWER * q_age ** (CYC_POWER - 1.0) * beta_per_sqrt_ah(mean_soc_frac, dod_frac) * q_ah


def rainflow(points: Sequence[float]) -> list[tuple[float, float, float]]:
    """Rainflow cycles (ASTM E1049-85, three-point rule) of a SoC sequence: ``(depth, mean, count)``.

    ``count`` is 1.0 for a full cycle and 0.5 for a half cycle; the depths times ``2 · count``
    add up to the sequence's total SoC travel.
    """
    turning: list[float] = []
    for x in points:  # keep the turning points only
        if turning and x == turning[-1]:
            continue
        if len(turning) >= 2 and (turning[-1] > turning[-2]) == (x > turning[-1]):  # same way on: not a turn
            turning[-1] = x
        else:
            turning.append(x)
    out: list[tuple[float, float, float]] = []
    stack: list[float] = []
    for x in turning:
        stack.append(x)
        while len(stack) >= 3:
            newer, older = abs(stack[-1] - stack[-2]), abs(stack[-2] - stack[-3])
            if newer < older:
                break
            mean = (stack[-2] + stack[-3]) / 2.0
            if len(stack) == 3:
                out.append((older, mean, 0.5))
                stack.pop(0)
            else:
                out.append((older, mean, 1.0))
                del stack[-3:-1]
    out.extend((abs(b - a), (a + b) / 2.0, 0.5) for a, b in zip(stack, stack[1:], strict=False))
    return out


def soc_time_integral(profile: ChargeProfile, tau_s: np.ndarray) -> np.ndarray:
    """∫ SoC dτ (SoC × s) from profile time 0 to each of `tau_s`, in closed form.

    On a piece ``C · ds/dt = a + b·s`` (t in hours) the SoC is ``s = (C · ds/dt − a) / b``, so
    ``∫ s dt = (3600 · C · Δs − a · Δt_s) / b``; a flat piece (``b = 0``) has SoC linear in time and its
    integral is the trapezoid, exact there. Pieces flatter than 10^-6 kW per unit SoC use the trapezoid
    too, where the closed form would cancel digits; either way the relative error stays near 10^-7 or below.
    Past the end of the curve the battery is full.
    """
    bounds = np.asarray(profile.tau_s)
    a = np.asarray(profile.a_kw)
    b = np.asarray(profile.b_kw)
    soc = np.asarray(profile.soc)
    cap = profile.capacity_kwh
    flat = np.abs(b) < _FLAT
    d_tau = np.diff(bounds)
    d_soc = np.diff(soc)
    safe_b = np.where(flat, 1.0, b)
    whole = np.where(flat, d_tau * (soc[:-1] + soc[1:]) / 2.0, (S_PER_H * cap * d_soc - a * d_tau) / safe_b)
    cumulative = np.concatenate([[0.0], np.cumsum(whole)])
    tau = np.asarray(tau_s, dtype=float)
    inside = np.minimum(tau, bounds[-1])
    j = np.clip(np.searchsorted(bounds, inside, side="right") - 1, 0, len(a) - 1)
    s_at = profile.soc_at_array(inside)
    dt = inside - bounds[j]
    part = np.where(flat[j], dt * (soc[j] + s_at) / 2.0, (S_PER_H * cap * (s_at - soc[j]) - a[j] * dt) / safe_b[j])
    return cumulative[j] + part + np.maximum(tau - bounds[-1], 0.0)


@dataclass(frozen=True, slots=True)
class SessionFade:
    """Relative capacity fade of each session and the energy behind it, one array entry per session."""

    charged_frac: np.ndarray  # Σ SoC gained on charging segments
    discharged_frac: np.ndarray  # Σ SoC given on discharging (V2G) segments
    calendar_frac: np.ndarray  # calendar fade over the plugged-in time
    cycle_charging_frac: np.ndarray  # cycle fade of charging from the plug-in SoC to the departure SoC
    cycle_v2g_frac: np.ndarray  # cycle fade beyond that: the discharges and their recharge


def session_fade(
    model: AgeingModel,
    sessions: dict[str, np.ndarray],
    segments: dict[str, np.ndarray],
) -> SessionFade:
    """Calendar and cycle fade of each plugged-in session from its charging and discharging segments.

    Args:
        model: The batteries' state.
        sessions: One entry per session: ``plug_t_s``, ``end_t_s`` (departure, or the horizon),
            ``soc_in_frac``, ``soc_out_frac``, ``capacity_kwh``.
        segments: One entry per segment, in any order: ``session`` (index into `sessions`),
            ``t0_s``, ``t1_s``, ``soc0_frac``, ``soc1_frac`` and, optionally, ``soc_time_s``
            (∫ SoC dt over the segment; without it the SoC is taken linear in time, exact at constant power).
            A segment whose SoC falls is a discharge.

    Attribution: charging owns the cycle fade of one half cycle from the plug-in SoC up to the
    departure SoC (none when the EV leaves lower than it came), never more than the session's total;
    V2G owns the rest. A session without discharges is charging's alone. Calendar fade over the
    plugged-in time follows the exact SoC and is attributed to neither.
    """
    n = len(sessions["plug_t_s"])
    k = segments["session"].astype(np.int64)
    t0, t1 = segments["t0_s"], segments["t1_s"]
    s0, s1 = segments["soc0_frac"], segments["soc1_frac"]
    d_soc = s1 - s0
    soc_time = segments.get("soc_time_s")
    if soc_time is None:
        soc_time = (t1 - t0) * (s0 + s1) / 2.0
    end = sessions["end_t_s"]
    soc_in, soc_out, capacity = sessions["soc_in_frac"], sessions["soc_out_frac"], sessions["capacity_kwh"]
    # ∫ s dt over the plugged-in time: the plug-in SoC throughout, plus each segment's own rise or fall,
    # which holds from the segment's end to the end of the session.
    duration = np.maximum(end - sessions["plug_t_s"], 0.0)
    own = soc_time - s0 * (t1 - t0) + d_soc * (end[k] - t1)
    soc_time_total = soc_in * duration + np.bincount(k, weights=own, minlength=n)
    calendar = np.asarray(model.calendar_frac(duration, soc_time_total))

    down = d_soc < 0
    charged = np.bincount(k, weights=np.where(down, 0.0, d_soc), minlength=n)
    discharged = np.bincount(k, weights=np.where(down, -d_soc, 0.0), minlength=n)
    has_discharge = np.bincount(k, weights=down, minlength=n) > 0
    # A session that only charges is one half cycle: its SoC rises from the first segment's start to the last one's end.
    order = np.lexsort((t0, k))
    bounds = np.searchsorted(k[order], np.arange(n + 1))
    some = bounds[1:] > bounds[:-1]
    lo, hi = np.zeros(n), np.zeros(n)
    lo[some] = s0[order[bounds[:-1][some]]]
    hi[some] = s1[order[bounds[1:][some] - 1]]
    rise = np.maximum(hi - lo, 0.0)
    cycle = np.asarray(model.cycle_frac(rise, (lo + hi) / 2.0, 0.5, capacity), dtype=float)
    for i in np.flatnonzero(has_discharge):  # V2G sessions: rainflow cycles of their turning points
        rows = order[bounds[i] : bounds[i + 1]]
        cycles = np.array(rainflow([float(s0[rows[0]]), *s1[rows].tolist()])).reshape(-1, 3)
        cycle[i] = float(np.sum(model.cycle_frac(cycles[:, 0], cycles[:, 1], cycles[:, 2], capacity[i])))
    straight = np.maximum(soc_out - soc_in, 0.0)
    charging_alone = np.asarray(model.cycle_frac(straight, (soc_in + soc_out) / 2.0, 0.5, capacity))
    cycle_charging = np.where(has_discharge, np.minimum(cycle, charging_alone), cycle)
    return SessionFade(charged, discharged, calendar, cycle_charging, cycle - cycle_charging)
