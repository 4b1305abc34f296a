"""OCPP 2.0.1 functional block K, SmartCharging: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule.

Profiles are converted and stacked by `virtual_chargers.v201.smart_charging`; their limit applies to the
simulated power from the moment they are installed, and a charging state they change is reported.
"""

from __future__ import annotations

import math
from typing import Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from sim.charging_profiles import ChargingProfilePurpose, composite_schedule
from virtual_chargers.clock import ocpp_time
from virtual_chargers.v16.profiles import schedule_to_ocpp
from virtual_chargers.v201.smart_charging import PURPOSES, ProfileError, profile_from_ocpp
from virtual_chargers.v201.transactions import TransactionsMixin

__all__ = ["SmartChargingMixin"]


class SmartChargingMixin(TransactionsMixin):
    """Functional block K, SmartCharging of a `V201Charger`."""

    def _install_profile(self, evse_id: int, profile: dict[str, Any]) -> None:
        """Convert and install a ChargingProfileType; re-report the charging state it changes."""
        c = self.connectors.get(evse_id) or next(iter(self.connectors.values()))
        schedule = profile["charging_schedule"][0]
        if len(schedule["charging_schedule_period"]) > self.dm.int_value("SmartChargingCtrlr", "PeriodsPerSchedule"):
            raise ProfileError("more periods than SmartChargingCtrlr.PeriodsPerSchedule")
        if int(profile["stack_level"]) > self.dm.int_value("SmartChargingCtrlr", "ProfileStackLevel"):
            raise ProfileError("stackLevel above SmartChargingCtrlr.ProfileStackLevel")
        if schedule["charging_rate_unit"] not in self.dm.list_value("SmartChargingCtrlr", "RateUnit"):
            raise ProfileError(f"chargingRateUnit {schedule['charging_rate_unit']} is not supported")
        t_s = self.clock.t_s()
        bidirectional = c.spec.discharge_kw > 0 and evse_id in self.connectors  # one EVSE, not the station
        converted = profile_from_ocpp(
            profile, self.ctx.clock.t_s_of, c.spec.voltage_v, c.meter.phases, received_t_s=t_s,
            allow_discharge=bidirectional,
        )  # fmt: skip
        for x in self.connectors.values():
            x.sync(t_s)
        running = self.connectors[evse_id].tx_ref if evse_id in self.connectors else None
        self.profiles.install(evse_id, converted, profile.get("transaction_id"), running)
        self._profile_accepted(evse_id, converted)
        self._count_profiles()
        self._after_limit_change(t_s)

    def _after_limit_change(self, t_s: float) -> None:
        for x in self.connectors.values():
            x.sync(t_s)
            self._report_charging_state(x)

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any) -> Any:
        """SetChargingProfile: the limit applies to the simulated power from now on."""
        try:
            self._install_profile(evse_id, charging_profile)
        except ProfileError as exc:
            return call_result.SetChargingProfile(
                status="Rejected", status_info={"reason_code": "InvalidProfile", "additional_info": str(exc)[:512]}
            )
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """ClearChargingProfile by id or criteria: Accepted when something went, else Unknown."""
        criteria = charging_profile_criteria or {}
        purpose_name = criteria.get("charging_profile_purpose")
        t_s = self.clock.t_s()
        for x in self.connectors.values():
            x.sync(t_s)
        removed = self.profiles.clear(
            profile_id=charging_profile_id,
            evse_id=criteria.get("evse_id"),
            purpose=PURPOSES[purpose_name] if purpose_name else None,
            stack_level=criteria.get("stack_level"),
        )
        self._count_profiles()
        self._after_limit_change(t_s)
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **kwargs: Any
    ) -> Any:
        """GetCompositeSchedule of an EVSE (0: the station's ChargingStationMaxProfiles) in A or W."""
        if evse_id == 0:
            c = next(iter(self.connectors.values()))
            profiles = tuple(p for p in c.profile_set.profiles if p.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX)
            max_kw = self.spec.shared_power_kw or sum(x.spec.max_power_kw for x in self.connectors.values())
        elif evse_id in self.connectors:
            c = self.connectors[evse_id]
            profiles = c.profile_set.profiles
            max_kw = c.spec.max_power_kw
        else:
            return call_result.GetCompositeSchedule(status="Rejected")
        unit = charging_rate_unit or ("W" if c.spec.dc else "A")
        t0_s = float(math.floor(self.clock.t_s()))
        steps = composite_schedule(profiles, t0_s, t0_s + max(1, duration), c.profile_set.tx_start_t_s)
        schedule = schedule_to_ocpp(steps, t0_s, duration, unit, max_kw, c.spec.voltage_v, c.meter.phases)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": ocpp_time(self.ctx.clock.at(t0_s)),
                "charging_rate_unit": unit,
                "charging_schedule_period": schedule["chargingSchedulePeriod"],
            },
        )
