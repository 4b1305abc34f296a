"""The scenario's `ev_side` section reaches a 2.0.1 CSMS through the bridged stations.

Connector standards are in each station's device model (Connector.ConnectorType per EVSE), Plug & Charge
sessions are authorised with the EV's eMAID (idToken type eMAID) and its contract certificate's OCSP data
(Authorize.iso15118CertificateHashData, use case C07), and ISO 15118 EVs send their needs in
NotifyEVChargingNeeds: the simulated EV's energy need, power and departure. A CSMS of raw frames records
what it received. Loopback on 127.0.0.1, port 0; every wait is bounded and everything started is stopped.
"""

from datetime import datetime, timedelta

import pytest

from sim.metrics import sessions_frame
from tests.conftest import make_scenario
from tests.virtual_chargers.raw_csms import RawCsms
from virtual_chargers.v201.certificates import ContractIssuer

SPEED = 5000.0
AC_KW, DC_KW = 22.0, 50.0


def scenario(csms_url: str):
    """An AC station (type2) and a DC station (ccs2) at one site; every EV speaks ISO 15118 with a contract."""
    return make_scenario(
        name="ev_side",
        seed=5,
        start="2026-03-02T08:00:00+01:00",
        horizon_days=0.25,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 1000.0,
                    "chargers": [
                        {"model": "ac22", "count": 1, "power_kw": AC_KW, "current": "ac", "connector": "type2"},
                        {"model": "dc50", "count": 1, "power_kw": DC_KW, "current": "dc", "connector": "ccs2"},
                    ],
                }
            ]
        },
        fleet=[
            {
                "preset": "tesla_model_3_lr",
                "share": 1,
                "iso15118_share": 1.0,
                "plug_and_charge_share": 1.0,
            }
        ],
        ev_side={"market": "eu", "authorization": {}},
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 2.0},
                "dwell_min": {"dist": "uniform", "low": 30, "high": 90},
                "max_queue": 0,
            }
        ],
        manager={"kind": "ocpp", "csms": csms_url, "ocpp": "2.0.1", "speed": SPEED, "response_timeout_s": 5.0},
    )


def connector_type_request(evse_id: int) -> dict:
    """GetVariables of the Connector component's ConnectorType on one EVSE."""
    component = {"name": "Connector", "evse": {"id": evse_id, "connectorId": 1}}
    return {"getVariableData": [{"component": component, "variable": {"name": "ConnectorType"}}]}


async def run(paced_run):
    """The paced run; the CSMS reads both stations' connector types once they are up."""
    csms = await RawCsms(version="2.0.1").start()

    async def read_types(_runner) -> dict:
        return {c: await csms.call(c, "GetVariables", connector_type_request(1)) for c in ("a.01", "a.02")}

    try:
        result, types = await paced_run(scenario(csms.url), read_types)
    finally:
        await csms.stop()
    return result, csms, types


@pytest.mark.slow
def test_ev_side_reaches_the_csms(paced_run, arun):
    """Connector types in the device model, eMAID tokens with contract OCSP data, the EV's needs."""
    result, csms, types = arun(run(paced_run), timeout_s=90)
    for charger, want in (("a.01", "cType2"), ("a.02", "cCCS2")):
        (answer,) = types[charger]["getVariableResult"]
        assert (answer["attributeStatus"], answer["attributeValue"]) == ("Accepted", want), charger

    tables = result.tables
    sessions = sessions_frame(tables)
    plugged = sessions[sessions["evse_id"].notna()]
    assert len(plugged) >= 3
    issuer = ContractIssuer(tables.scenario.seed)
    emaids = {issuer.emaid(int(sid)): sid for sid in plugged["session_id"]}

    # Authorize: the eMAID as an eMAID token, with the OCSP data of the contract certificate of that session.
    authorizations = csms.of("Authorize")
    assert len(authorizations) == len(plugged)
    for a in authorizations:
        token = a.payload["idToken"]
        assert token["type"] == "eMAID"
        assert token["idToken"] in emaids
        (ocsp,) = a.payload["iso15118CertificateHashData"]
        assert ocsp == issuer.hash_data(int(emaids[token["idToken"]]))[0]
    started = [e.payload for e in csms.of("TransactionEvent") if "idToken" in e.payload]
    assert started
    assert {e["idToken"]["type"] for e in started} == {"eMAID"}

    # NotifyEVChargingNeeds: the simulated EV's need (Wh), power limit and departure, per session.
    needs = [n.payload["chargingNeeds"] for n in csms.of("NotifyEVChargingNeeds")]
    assert len(needs) == len(plugged)
    params = [cn.get("dcChargingParameters") or cn["acChargingParameters"] for cn in needs]
    got_wh = sorted(p["energyAmount"] for p in params)
    want_wh = sorted(round(kwh * 1000) for kwh in plugged["energy_requested_kwh"])
    assert got_wh == pytest.approx(want_wh, abs=1)
    for cn, p in zip(needs, params, strict=True):
        if cn["requestedEnergyTransfer"] == "DC":
            assert 0 < p["evMaxPower"] <= DC_KW * 1000
    # drivers stay their planned dwell (they do not leave when charged): a departure is the one announced
    start = datetime.fromisoformat("2026-03-02T08:00:00+01:00")
    announced = [datetime.fromisoformat(cn["departureTime"].replace("Z", "+00:00")) for cn in needs]
    left = plugged[plugged["outcome"] == "served"]["departure_t_s"]
    assert len(left) >= 2
    for t_s in left:
        t = start + timedelta(seconds=float(t_s))
        assert min(abs((a - t).total_seconds()) for a in announced) <= 1.0, t
