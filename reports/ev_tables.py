"""EV-side KPI tables: compatibility, handshakes, authorisation, vehicle data; values rounded here only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reports.document import Table
from reports.kpi_tables import MAX_TABLE_SITES, _count, _energy, _number, _percent

__all__ = ["ev_sites_table", "ev_table", "needs_table"]

_SOURCES = (("iso15118", "ISO 15118"), ("telematics", "Telematics"), ("estimate", "Estimated"),
            ("known", "Known (either)"))  # fmt: skip
_METHODS = (("plug_and_charge", "Plug & Charge"), ("rfid", "RFID"), ("app", "the app"), ("contactless", "a card"),
            ("qr", "a QR code"), ("unknown", "a way not modelled"))  # fmt: skip


def _count_share(count: Any, share: Any) -> str:
    return f"{_count(count)} ({_percent(share)})"


def ev_table(ev: Mapping[str, Any]) -> Table:
    """The network EV-side KPIs of kpis.json's "ev_side" object, one per row."""
    n = ev["network"]
    rows = [
        ("Compatibility misses", _count_share(n["compat_misses"], n["compat_miss_share"])),
        ("Sessions lost to compatibility", _count(n["sessions_lost_to_compat"])),
        ("Left: no port fits the EV", _count(n["sessions_incompatible"])),
        ("Redirected to another site (served there)", f"{_count(n['redirected'])} ({_count(n['redirected_served'])})"),
        ("Sessions on an adapter", _count(n["adapter_sessions"])),
        ("First-attempt success", _percent(n["first_attempt_success_rate"])),
        ("Success after retries", _percent(n["success_after_retries_rate"])),
        ("Handshake failure rate (interop)", _percent(n["interop_failure_rate"])),
        ("Sessions failed: interop", _count(n["sessions_failed_interop"])),
        ("Sessions failed: authorisation", _count(n["sessions_failed_authorization"])),
        ("Sessions with known needs", _percent(n["known_needs_share"])),
        *(
            (f"Started with {label}", f"{_percent(n['auth_method_share'][m])}, {_number(n['auth_mean_s'][m])} s")
            for m, label in _METHODS
            if n["auth_method_share"][m]
        ),
    ]
    note = (
        f"Market {ev['market']}, CSMS over {ev['csms_protocol']}. Compatibility miss: free ports but none that fits"
        " the EV, or none at the site; lost: the driver did not charge in the end. Success rates per visit of a"
        " driver to a working port; started with: share of plugged-in sessions and mean time from plug-in to power."
    )
    return Table("EV-side KPIs", ("KPI", "Value"), rows, note=note)


def needs_table(energy: Mapping[str, Mapping[str, Any]]) -> Table:
    """Energy delivered against the need of served sessions, by what the manager knew of it."""
    rows = [
        (
            label,
            _count(energy[key]["sessions"]),
            _energy(energy[key]["energy_requested_kwh"]),
            _energy(energy[key]["energy_delivered_kwh"]),
            _percent(energy[key]["delivered_share"]),
            _percent(energy[key]["need_met_share"]),
        )
        for key, label in _SOURCES
    ]
    note = "Served sessions. Need met: delivered to within 0.1 kWh of the request; –: no such session."
    headers = ("Needs known from", "Sessions", "Requested", "Delivered", "Delivered / requested", "Need met")
    return Table("Energy against the need", headers, rows, note=note)


def ev_sites_table(sites: Mapping[str, Mapping[str, Any]], site_names: Mapping[str, str],
                   order: Sequence[str]) -> Table:  # fmt: skip
    """Compatibility per site (at most ``MAX_TABLE_SITES``, in `order`): misses and what followed."""
    shown = [s for s in order if s in sites][:MAX_TABLE_SITES]
    rows = [
        (
            site_id,
            site_names.get(site_id, ""),
            _count(k["first_arrivals"]),
            _count_share(k["compat_misses"], k["compat_miss_share"]),
            _count(k["sessions_lost_to_compat"]),
            _count(k["sessions_incompatible"]),
            _count(k["redirected_away"]),
            _count(k["redirected_in"]),
        )
        for site_id in shown
        for k in [sites[site_id]]
    ]
    headers = ("Site", "Name", "First arrivals", "Misses", "Lost", "No port fits", "Redirected away", "Redirected in")
    note = "First arrivals: drivers who came to the site first (not redirected there); misses and losses count there."
    if more := len(sites) - len(shown):
        note = f"The {len(shown)} sites with the most arrivals; {more} more sites in kpis.json. " + note
    return Table("Compatibility per site", headers, rows, label_columns=2, note=note)
