"""Every EV-side KPI recomputed from the recorded tables of a results folder (docs/kpis.md, EV side).

The recomputations here share no code with `sim.ev_metrics`: they read the parquet tables
a run wrote and follow the definitions in docs/kpis.md.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.config import validate_data
from sim.engine import simulate
from sim.results import write_results

ROOT = Path(__file__).resolve().parents[2]
LOST = ("balked", "reneged", "failed", "incompatible", "priced_out", "rejected")  # left without charging
NEED_MET_KWH = 0.1
METHODS = ("none", "app", "rfid", "contactless", "qr", "plug_and_charge", "unknown")
SOURCES = ("iso15118", "telematics", "estimate")


def _scenario() -> dict:
    """The mixed market over 3 days, changed so every EV-side KPI has something to count.

    Three times the demand at the legacy site (misses of every kind), certificates refused often,
    and silent faults on the newer DC chargers (attempts on faulted ports).
    """
    data = yaml.safe_load((ROOT / "scenarios" / "mixed_market.yaml").read_text())
    data["horizon_days"] = 3
    for demand in data["demand"]:
        if demand["site"] == "legacy_plaza":
            demand["rate"]["per_hour"] = [3 * x for x in demand["rate"]["per_hour"]]
    pnc = data["ev_side"]["authorization"]["plug_and_charge"]
    pnc.update(certificate_failure_prob=0.3, fallback_share=0.6)
    data["serviceability"] = {
        "fault_modes": {
            "silent": {
                "error_code": "InternalError",
                "ttf": {"dist": "exponential", "mtbf_days": 1},
                "detected": False,
                "scope": "charger",
                "repair_min": 45,
            }
        },
        "hardware": {"dc250_nacs": ["silent"], "dc150_nevi": ["silent"]},
        "crews": [{"id": "c", "depot": {"lat": 37.3, "lon": -121.95}}],
    }
    return data


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder of `_scenario`."""
    out = tmp_path_factory.mktemp("ev") / "out"
    write_results(simulate(validate_data(_scenario(), "mixed", ROOT / "scenarios")), out)
    return out


@pytest.fixture(scope="module")
def rows(results):
    """Sessions joined with their EV-side rows, the plug attempts, the events and kpis.json."""
    sessions = pd.read_parquet(results / "sessions.parquet")
    ev = pd.read_parquet(results / "ev_sessions.parquet")
    both = sessions.merge(ev, on="session_id", validate="one_to_one")
    for column in ("site_id", "origin_site_id", "outcome", "cause", "auth_method", "needs_source"):
        both[column] = both[column].astype(object).where(both[column].notna(), None)
    attempts = pd.read_parquet(results / "plug_attempts.parquet")
    events = pd.read_parquet(results / "events.parquet")
    kpis = json.loads((results / "kpis.json").read_text())
    return both, attempts, events, kpis


def _share(hits: int | float, total: int | float) -> float | None:
    return hits / total if total else None


def _visits(attempts: pd.DataFrame) -> list[dict]:
    """One dict per visit (session, visit) whose first attempt was not on a silently faulted port."""
    out = []
    for (_, _), group in attempts.groupby(["session_id", "visit"], sort=True):
        group = group.sort_values("attempt")
        if str(group["cause"].iloc[0]) == "fault":
            continue
        out.append(
            {
                "family": str(group["ev_family"].iloc[0]),
                "model": str(group["charger_model"].iloc[0]),
                "first_ok": bool(group["ok"].iloc[0]),
                "any_ok": bool(group["ok"].any()),
                "handshakes": len(group),
                "interop": int((group["cause"].astype(str) == "interop").sum()),
            }
        )
    return out


def test_the_run_exercises_every_part_of_the_ev_side(rows):
    """Misses lost, redirected and waited, faulted ports, interop and certificate failures all occur."""
    both, attempts, _, kpis = rows
    n = kpis["ev_side"]["network"]
    for key in ("sessions_lost_to_compat", "compat_misses_redirected", "compat_misses_waited", "interop_failures",
                "certificate_failures", "sessions_failed_authorization", "adapter_sessions",
                "plug_and_charge_sessions", "sessions_incompatible"):  # fmt: skip
        assert n[key] > 0, key
    assert (attempts["cause"].astype(str) == "fault").any()
    assert n["redirected"] > n["redirected_served"]  # some redirected drivers were lost at the other site


def test_compatibility_kpis_of_the_network(rows):
    """arrivals, misses and their share, and what followed each miss: lost, redirected or waited."""
    both, _, _, kpis = rows
    n = kpis["ev_side"]["network"]
    miss = both["compat_miss"]
    lost = both["outcome"].isin(LOST)
    redirected = both["origin_site_id"].notna()
    assert n["arrivals"] == len(both) == kpis["network"]["sessions_arrived"]
    assert n["compat_misses"] == miss.sum()
    assert n["compat_miss_share"] == pytest.approx(miss.sum() / len(both))
    assert n["sessions_lost_to_compat"] == (miss & lost).sum()
    assert n["sessions_incompatible"] == (both["outcome"] == "incompatible").sum()
    assert n["compat_misses_redirected"] == (miss & redirected & ~lost).sum()
    assert n["compat_misses_waited"] == (miss & ~redirected & ~lost).sum()
    assert (
        n["sessions_lost_to_compat"] + n["compat_misses_redirected"] + n["compat_misses_waited"] == n["compat_misses"]
    )
    assert n["redirected"] == redirected.sum()
    assert n["redirected_served"] == (redirected & (both["outcome"] == "served")).sum()


def test_a_miss_counted_as_waited_queued_and_then_charged_or_stayed(rows):
    """`compat_misses_waited` means what it says: every such driver has a queued event and was not lost."""
    both, _, events, _ = rows
    waited = both[both["compat_miss"] & both["origin_site_id"].isna() & ~both["outcome"].isin(LOST)]
    assert len(waited) > 0
    queued = set(events.loc[events["event"].astype(str) == "queued", "session_id"])
    assert set(waited["session_id"]) <= queued
    assert set(waited["outcome"]) <= {"served", "interrupted", "ongoing"}


def test_compatibility_kpis_per_site_count_at_the_first_site(rows):
    """Per site: first arrivals, misses, losses at the site of the miss; the arrivals balance with redirects."""
    both, _, _, kpis = rows
    first_site = both["origin_site_id"].where(both["origin_site_id"].notna(), both["site_id"])
    redirected = both["origin_site_id"].notna()
    for site_id, k in kpis["ev_side"]["sites"].items():
        here = both[first_site == site_id]
        miss = here["compat_miss"]
        lost = here["outcome"].isin(LOST)
        assert k["first_arrivals"] == len(here), site_id
        assert k["compat_misses"] == miss.sum()
        assert k["compat_miss_share"] == pytest.approx(_share(miss.sum(), len(here)))
        assert k["sessions_lost_to_compat"] == (miss & lost).sum()
        assert k["sessions_incompatible"] == (here["outcome"] == "incompatible").sum()
        assert k["compat_misses_redirected"] == (miss & ~lost & here["origin_site_id"].notna()).sum()
        assert k["compat_misses_waited"] == (miss & ~lost & here["origin_site_id"].isna()).sum()
        assert k["redirected_away"] == (both["origin_site_id"] == site_id).sum()
        assert k["redirected_in"] == (redirected & (both["site_id"] == site_id)).sum()
        sessions_arrived = kpis["sites"][site_id]["sessions_arrived"]
        assert k["first_arrivals"] - k["redirected_away"] + k["redirected_in"] == sessions_arrived
    assert sum(k["redirected_in"] for k in kpis["ev_side"]["sites"].values()) > 0


def test_visit_and_handshake_kpis(rows):
    """Visits to ports not silently faulted; handshakes, interop failures and success rates over them."""
    _, attempts, _, kpis = rows
    n = kpis["ev_side"]["network"]
    visits = _visits(attempts)
    handshakes = sum(v["handshakes"] for v in visits)
    interop = sum(v["interop"] for v in visits)
    assert n["visits"] == len(visits)
    assert n["handshakes"] == handshakes
    assert n["interop_failures"] == interop
    assert n["interop_failure_rate"] == pytest.approx(interop / handshakes)
    assert n["first_attempt_success_rate"] == pytest.approx(np.mean([v["first_ok"] for v in visits]))
    assert n["success_after_retries_rate"] == pytest.approx(np.mean([v["any_ok"] for v in visits]))
    assert n["certificate_failures"] == (attempts["cause"].astype(str) == "certificate").sum()
    assert len(visits) < attempts.groupby(["session_id", "visit"]).ngroups  # faulted ports were left out


def test_interop_by_pair(rows):
    """One entry per EV family × charger model with visits; each rate over that pair's visits alone."""
    _, attempts, _, kpis = rows
    visits = pd.DataFrame(_visits(attempts))
    pairs = kpis["ev_side"]["interop_by_pair"]
    assert {(p["ev_family"], p["charger_model"]) for p in pairs} == set(zip(visits["family"], visits["model"],
                                                                             strict=True))  # fmt: skip
    for p in pairs:
        v = visits[(visits["family"] == p["ev_family"]) & (visits["model"] == p["charger_model"])]
        assert p["visits"] == len(v)
        assert p["handshakes"] == v["handshakes"].sum()
        assert p["interop_failures"] == v["interop"].sum()
        assert p["first_attempt_success_rate"] == pytest.approx(v["first_ok"].mean())
        assert p["success_after_retries_rate"] == pytest.approx(v["any_ok"].mean())
        assert p["interop_failure_rate"] == pytest.approx(v["interop"].sum() / v["handshakes"].sum())


def test_session_failure_and_authorisation_kpis(rows):
    """Failed sessions by cause, adapters, Plug & Charge, and how plugged sessions were started and how fast."""
    both, _, _, kpis = rows
    n = kpis["ev_side"]["network"]
    failed = both["outcome"] == "failed"
    assert n["sessions_failed_interop"] == (failed & (both["cause"] == "interop")).sum()
    assert n["sessions_failed_authorization"] == (failed & (both["cause"] == "authorization")).sum()
    plugged = both[both["plug_t_s"].notna()]
    assert n["adapter_sessions"] == plugged["adapter_used"].sum()
    assert n["plug_and_charge_sessions"] == (plugged["auth_method"] == "plug_and_charge").sum()
    for method in METHODS:
        mine = plugged[plugged["auth_method"] == method]
        assert n["auth_method_share"][method] == pytest.approx(len(mine) / len(plugged)), method
        if len(mine):
            assert n["auth_mean_s"][method] == pytest.approx(mine["auth_s"].mean()), method
        else:
            assert n["auth_mean_s"][method] is None, method


def test_vehicle_data_kpis(rows):
    """Known needs and the needs sources: shares of plugged sessions."""
    both, _, _, kpis = rows
    n = kpis["ev_side"]["network"]
    plugged = both[both["plug_t_s"].notna()]
    assert n["known_needs_share"] == pytest.approx((plugged["needs_source"] != "estimate").mean())
    for source in SOURCES:
        assert n["needs_source_share"][source] == pytest.approx((plugged["needs_source"] == source).mean()), source
    assert 0 < n["known_needs_share"] < 1


def test_energy_against_the_need(rows):
    """Served sessions by needs source: requested, delivered, their ratio and the share met to within 0.1 kWh."""
    both, _, _, kpis = rows
    served = both[both["outcome"] == "served"]
    groups = {s: served[served["needs_source"] == s] for s in SOURCES}
    groups["known"] = served[served["needs_source"] != "estimate"]
    groups["estimated"] = served[served["needs_source"] == "estimate"]
    for name, group in groups.items():
        k = kpis["ev_side"]["energy_vs_need"][name]
        requested = group["energy_requested_kwh"].sum()
        delivered = group["energy_delivered_kwh"].sum()
        met = (group["energy_delivered_kwh"] >= group["energy_requested_kwh"] - NEED_MET_KWH).sum()
        assert k["sessions"] == len(group), name
        assert k["energy_requested_kwh"] == pytest.approx(requested)
        assert k["energy_delivered_kwh"] == pytest.approx(delivered)
        assert k["delivered_share"] == pytest.approx(_share(delivered, requested))
        assert k["need_met_share"] == pytest.approx(_share(met, len(group)))
    assert kpis["ev_side"]["energy_vs_need"]["known"]["sessions"] > 0


def test_market_and_protocol_echo_the_scenario(rows):
    """`market` and `csms_protocol` are the scenario's."""
    _, _, _, kpis = rows
    data = _scenario()["ev_side"]
    assert (kpis["ev_side"]["market"], kpis["ev_side"]["csms_protocol"]) == (data["market"], data["csms_protocol"])
