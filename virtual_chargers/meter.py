"""The EV on a connector and its energy meter: what a charger's meter reads, in OCPP's units.

The vehicle charges along its `sim.ev.ChargeProfile` (closed-form SoC under a power cap). The cap is
the least of the connector's rating, the vehicle's own limit and the charging-profile limit; when the
limit changes the meter first integrates up to that instant, so energy is exact between changes.
Conversions between OCPP's A, W and Wh and the simulation's kW and kWh live here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.ev import ChargeProfile, EVModel, ProfileCache

__all__ = [
    "EVSession",
    "Meter",
    "MeterReading",
    "amps_to_kw",
    "kw_to_amps",
    "kw_to_w",
    "w_to_kw",
]

_W_PER_KW = 1000.0


def kw_to_w(power_kw: float) -> float:
    """Convert kW to W."""
    return power_kw * _W_PER_KW


def w_to_kw(power_w: float) -> float:
    """Convert W to kW."""
    return power_w / _W_PER_KW


def amps_to_kw(current_a: float, voltage_v: float, phases: int) -> float:
    """Power in kW of ``current_a`` per phase on ``phases`` phases at ``voltage_v`` line-to-neutral."""
    return current_a * voltage_v * phases / _W_PER_KW


def kw_to_amps(power_kw: float, voltage_v: float, phases: int) -> float:
    """Current per phase in A that carries ``power_kw`` on ``phases`` phases at ``voltage_v``."""
    return power_kw * _W_PER_KW / (voltage_v * phases)


@dataclass(frozen=True, slots=True)
class EVSession:
    """A vehicle that plugs in: its model, state of charge on arrival and the SoC at which it stops."""

    model: EVModel
    soc_in_frac: float
    target_soc_frac: float = 1.0

    def __post_init__(self) -> None:
        """Fail fast on a state of charge outside [0, 1] or a target below the arrival SoC."""
        if not 0.0 <= self.soc_in_frac <= 1.0:
            raise ValueError(f"soc_in_frac(={self.soc_in_frac}) must be in [0, 1]")
        if not self.soc_in_frac <= self.target_soc_frac <= 1.0:
            raise ValueError(f"target_soc_frac(={self.target_soc_frac}) must be in [soc_in_frac, 1]")


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One sample of a connector's meter in OCPP units (``soc_pct`` is None without an EV)."""

    energy_wh: float
    power_w: float
    current_a: float
    voltage_v: float
    soc_pct: float | None
    export_wh: float = 0.0  # energy given back (V2G): Energy.Active.Export.Register


class Meter:
    """The energy register of one connector and the EV charging through it.

    Args:
        max_power_kw: The connector's rating.
        dc: DC connector (the EV follows its DC curve) or AC (its on-board charger).
        voltage_v: Line-to-neutral voltage for AC, the battery-side voltage for DC.
        phases: AC phases (1 or 3); DC counts as one.
        profiles: The run's shared cache of charge profiles.
        energy_wh: The register's reading at start (it never runs backwards).
    """

    __slots__ = (
        "_anchor_t_s",
        "_anchor_tau_s",
        "_profile",
        "_soc_frac",
        "charging",
        "dc",
        "energy_wh",
        "ev",
        "jump_wh",
        "limit_kw",
        "max_power_kw",
        "phases",
        "profiles",
        "stuck",
        "voltage_v",
    )

    def __init__(
        self,
        max_power_kw: float,
        dc: bool,
        voltage_v: float,
        phases: int,
        profiles: ProfileCache,
        energy_wh: float = 0.0,
    ) -> None:
        """A meter with no EV plugged in."""
        if not max_power_kw > 0:
            raise ValueError(f"max_power_kw(={max_power_kw}) must be > 0")
        if not voltage_v > 0:
            raise ValueError(f"voltage_v(={voltage_v}) must be > 0")
        if phases not in (1, 3):
            raise ValueError(f"phases(={phases}) must be 1 or 3")
        self.max_power_kw = max_power_kw
        self.dc = dc
        self.voltage_v = voltage_v
        self.phases = 1 if dc else phases
        self.profiles = profiles
        self.energy_wh = energy_wh
        self.ev: EVSession | None = None
        self.charging = False
        self.limit_kw = math.inf
        self.stuck = False  # a fault: the register stops counting
        self.jump_wh = 0.0  # a fault: the register reads this much more than it counted
        self._soc_frac = 0.0
        self._profile: ChargeProfile | None = None
        self._anchor_t_s = 0.0
        self._anchor_tau_s = 0.0

    @property
    def soc_frac(self) -> float:
        """State of charge of the plugged-in EV at the last `advance` (0 without an EV)."""
        return self._soc_frac

    def plug(self, ev: EVSession, t_s: float) -> None:
        """An EV plugs in at ``t_s``; it draws power only once `start` is called."""
        self.advance(t_s)
        self.ev = ev
        self._soc_frac = ev.soc_in_frac
        self.charging = False
        self._rebuild(t_s)

    def unplug(self, t_s: float) -> None:
        """The EV leaves at ``t_s``."""
        self.advance(t_s)
        self.ev = None
        self.charging = False
        self._profile = None

    def start(self, t_s: float) -> None:
        """Energy flows from ``t_s`` on (transaction started, EVSE enabled)."""
        self.advance(t_s)
        self.charging = True
        self._rebuild(t_s)

    def suspend(self, t_s: float) -> None:
        """Energy stops at ``t_s`` (transaction stopped, connector made unavailable or faulted)."""
        self.advance(t_s)
        self.charging = False
        self._profile = None

    def set_limit_kw(self, limit_kw: float, t_s: float) -> None:
        """The charging-profile limit changes to ``limit_kw`` (inf: none) at ``t_s``."""
        if limit_kw == self.limit_kw:
            return
        self.advance(t_s)
        self.limit_kw = limit_kw
        self._rebuild(t_s)

    def cap_kw(self) -> float:
        """The power cap in force now: the least of the rating and the profile limit."""
        return min(self.max_power_kw, self.limit_kw)

    def advance(self, t_s: float) -> None:
        """Integrate the energy drawn up to ``t_s`` (no-op for a time not after the last one)."""
        profile, ev = self._profile, self.ev
        if profile is None or ev is None or t_s <= self._anchor_t_s:
            self._anchor_t_s = max(self._anchor_t_s, t_s)
            return
        tau_s = self._anchor_tau_s + (t_s - self._anchor_t_s)
        soc_frac = min(profile.soc_at(tau_s), ev.target_soc_frac)
        if not self.stuck:
            self.energy_wh += (soc_frac - self._soc_frac) * ev.model.capacity_kwh * _W_PER_KW
        self._soc_frac = soc_frac
        self._anchor_t_s = t_s
        self._anchor_tau_s = tau_s

    def power_kw(self) -> float:
        """Power drawn at the last `advance`."""
        profile, ev = self._profile, self.ev
        if profile is None or ev is None or self._soc_frac >= ev.target_soc_frac:
            return 0.0
        return profile.power_at(self._soc_frac)

    def full(self) -> bool:
        """The EV has reached its target and draws no more power."""
        return self.ev is not None and self._soc_frac >= self.ev.target_soc_frac

    def read(self, t_s: float) -> MeterReading:
        """Advance to ``t_s`` and return what the meter shows."""
        self.advance(t_s)
        power_w = 0.0 if self.stuck else kw_to_w(self.power_kw())
        return MeterReading(
            energy_wh=round(self.energy_wh + self.jump_wh, 1),
            power_w=round(power_w, 1),
            current_a=round(power_w / (self.voltage_v * self.phases), 2),
            voltage_v=self.voltage_v,
            soc_pct=round(self._soc_frac * 100.0, 1) if self.ev is not None else None,
        )

    def _rebuild(self, t_s: float) -> None:
        """Choose the charge profile for the current cap and enter it at the current SoC."""
        self._anchor_t_s = t_s
        ev = self.ev
        cap_kw = self.cap_kw()
        if ev is None or not self.charging or cap_kw <= 0:
            self._profile = None
            return
        self._profile = self.profiles.get(ev.model, self.dc, cap_kw)
        self._anchor_tau_s = self._profile.time_at(self._soc_frac)
