"""`V201Charger`: an OCPP 2.0.1 charging station on the `VirtualCharger` core, one mixin per functional block.

Each connector of the `ChargerSpec` is one EVSE (ids 1..n) with one connector (id 1). The blocks:
`station` (state, device-model settings), `availability` (G), `authorization` (C), `transactions` (E, J and
the driver), `smart_charging_messages` (K), `firmware` (L), `provisioning` (B), `remote_control` (F, P),
`reservation` (H), `local_list` (D) and `certificates` (A, M). Frames from the CSMS that are not OCPP-J get
RpcFrameworkError or MessageTypeNotSupported (`virtual_chargers.base`).
"""

from __future__ import annotations

from virtual_chargers.v201.remote_control import RemoteControlMixin
from virtual_chargers.v201.station import KEYS_16

__all__ = ["KEYS_16", "V201Charger"]


class V201Charger(RemoteControlMixin):
    """An emulated OCPP 2.0.1 charging station.

    Args:
        spec: What the station is.
        ctx: What all chargers of the process share.
        variables: Device-model values to set at start, keyed ``"Component.Variable"`` or
            ``"Component.Variable[Instance]"`` (e.g. ``{"SampledDataCtrlr.TxUpdatedInterval": "60"}``);
            ReadOnly ones too, as a station's configuration. Invalid values raise ValueError.
        default_ev: The EV a remote start or a bare `plug_in` plugs in.
        firmware_step_s: Simulated seconds each firmware step (download, install) takes.
        config: What the fleet, the CLI and the pytest plugin pass for both versions: ``Component.Variable``
            names, or 1.6 keys that have a 2.0.1 variable (`KEYS_16`).
    """
