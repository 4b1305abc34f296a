"""OCPP 2.0.1 charging profiles on the connectors' `sim.charging_profiles.ProfileSet`s.

A 2.0.1 ``ChargingProfileType`` differs from 1.6's in names only as far as the simulation is concerned
(``id``, ``ChargingStationMaxProfile``, a list of schedules of which the first applies), so it is
renamed and converted to kW by the 1.6 converter, which in turn uses the unit conversions of
`virtual_chargers.meter`. `StationProfiles` adds what 2.0.1 asks beyond one connector: profiles set
on EVSE 0 apply to every EVSE, ids are unique per station, and ClearChargingProfile criteria name the
EVSE a profile was set for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sim.charging_profiles import ChargingProfile, ChargingProfilePurpose, ProfileSet
from virtual_chargers.v16.profiles import from_ocpp

__all__ = ["PURPOSES", "ProfileError", "StationProfiles", "profile_from_ocpp"]

PURPOSES = {
    "ChargingStationMaxProfile": ChargingProfilePurpose.CHARGE_POINT_MAX,
    "TxDefaultProfile": ChargingProfilePurpose.TX_DEFAULT,
    "TxProfile": ChargingProfilePurpose.TX,
}


class ProfileError(ValueError):
    """A profile the station rejects, with the reason (short enough for statusInfo.additionalInfo)."""


def profile_from_ocpp(
    profile: Mapping[str, Any],
    t_s_of: Callable[[datetime], float],
    voltage_v: float,
    phases: int,
    *,
    received_t_s: float,
    allow_discharge: bool = False,
) -> ChargingProfile:
    """A 2.0.1 ChargingProfileType (snake_case keys, as the ocpp library passes it) in kW and t_s.

    Without ``startSchedule`` every kind counts from the transaction start, and a ChargingStationMaxProfile
    from ``received_t_s`` (see `virtual_chargers.v16.profiles.from_ocpp`, where 1.6 and 2.0.1 agree).

    Raises:
        ProfileError: For a profile a station must reject.
    """
    purpose = PURPOSES.get(str(profile.get("charging_profile_purpose")))
    if purpose is None:
        raise ProfileError(f"unknown chargingProfilePurpose {profile.get('charging_profile_purpose')!r}")
    as_16 = {
        **profile,
        "charging_profile_id": profile["id"],
        "charging_profile_purpose": purpose.value,
        "charging_schedule": profile["charging_schedule"][0],
    }
    try:
        return from_ocpp(as_16, t_s_of, voltage_v, phases, received_t_s=received_t_s, allow_discharge=allow_discharge)
    except (ValueError, KeyError) as exc:
        raise ProfileError(str(exc)) from exc


class StationProfiles:
    """The charging profiles of a station, kept in each EVSE's `ProfileSet`.

    Args:
        sets: EVSE id → the profile set of its connector (the sets stay owned by the connectors).
    """

    def __init__(self, sets: Mapping[int, ProfileSet]) -> None:
        self._sets = dict(sets)
        self._installed_on: dict[int, int] = {}  # profile id → evseId it was set for (0: station)

    @property
    def count(self) -> int:
        """Profiles installed (SmartChargingCtrlr.EntriesChargingProfiles)."""
        return len(self._installed_on)

    def install(
        self, evse_id: int, profile: ChargingProfile, transaction_id: str | None, running_tx_id: str | None
    ) -> None:
        """Install a profile as SetChargingProfile does.

        Args:
            evse_id: The EVSE of the request (0: the whole station).
            profile: The profile in kW.
            transaction_id: The profile's transactionId, if any.
            running_tx_id: The transaction running on the EVSE, if any.

        Raises:
            ProfileError: A station-wide profile on an EVSE, a TxProfile on EVSE 0, without a transaction
                or for another one, an unknown EVSE.
        """
        purpose = profile.purpose
        if evse_id == 0:
            if purpose is ChargingProfilePurpose.TX:
                raise ProfileError("a TxProfile needs an EVSE, not evseId 0")
            targets = list(self._sets.values())
        else:
            if evse_id not in self._sets:
                raise ProfileError(f"no EVSE {evse_id}")
            if purpose is ChargingProfilePurpose.CHARGE_POINT_MAX:
                raise ProfileError("a ChargingStationMaxProfile goes on evseId 0")
            if purpose is ChargingProfilePurpose.TX:
                if running_tx_id is None:
                    raise ProfileError(f"no transaction on EVSE {evse_id} for a TxProfile")
                if transaction_id is not None and transaction_id != running_tx_id:
                    raise ProfileError(f"transaction {transaction_id} is not the one on EVSE {evse_id}")
            targets = [self._sets[evse_id]]
        self.clear(profile_id=profile.profile_id)  # ids are unique per station, whichever EVSE had it
        try:
            for target in targets:
                target.install(profile)
        except ValueError as exc:
            raise ProfileError(str(exc)) from exc
        self._installed_on[profile.profile_id] = evse_id
        # ProfileSet replaced any profile of the same purpose and stack level: forget those ids.
        present = {p.profile_id for s in self._sets.values() for p in s.profiles}
        self._installed_on = {pid: e for pid, e in self._installed_on.items() if pid in present}

    def clear(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: ChargingProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove profiles as ClearChargingProfile does and return how many went (0 is OCPP's Unknown).

        An id selects that profile alone; otherwise every given criterion must match, ``evse_id`` being
        the EVSE the profile was set for (0: station-wide); no criterion at all clears every profile.
        """
        if profile_id is not None:
            chosen = {profile_id} & set(self._installed_on)
        else:
            chosen = {
                p.profile_id
                for s in self._sets.values()
                for p in s.profiles
                if (evse_id is None or self._installed_on.get(p.profile_id) == evse_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)
            }
        for pid in chosen:
            for profile_set in self._sets.values():
                profile_set.clear(profile_id=pid)
            self._installed_on.pop(pid, None)
        return len(chosen)

    def forget_missing(self) -> None:
        """Drop ids a ProfileSet removed by itself (TxProfiles at the end of a transaction)."""
        present = {p.profile_id for s in self._sets.values() for p in s.profiles}
        self._installed_on = {pid: e for pid, e in self._installed_on.items() if pid in present}
