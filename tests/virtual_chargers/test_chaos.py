"""Chaos: the fault proxy, the invariants judged from the CSMS's side of the wire, the scenario files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16.enums import Action

from sim.cli import main
from virtual_chargers.conformance.chaos import (
    ChaosError,
    ChaosScenario,
    _Side,
    check_meter_order,
    check_transactions,
    load_chaos,
    run_chaos,
)
from virtual_chargers.csms import Csms, Csms16Handler

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "chaos"


def _call(uid: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, uid, action, payload])


def _mv(uid: str, tx: int, ts: str, wh: float) -> str:
    value = {"timestamp": ts, "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register"}]}
    return _call(uid, "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [value]})


def test_meter_order_check_flags_a_step_back_and_ignores_duplicates() -> None:
    """A MeterValues older than the one before breaks the invariant; a frame delivered twice does not."""
    ok = _Side(to_csms=[_mv("a", 1, "2030-01-01T00:00:00Z", 10), _mv("a", 1, "2030-01-01T00:00:00Z", 10),
                        _mv("b", 1, "2030-01-01T00:01:00Z", 20)])  # fmt: skip
    assert check_meter_order({"CP": ok}) == (
        True,
        {"meter_values_checked": 2, "out_of_order": [], "out_of_order_count": 0},
    )
    back = _Side(to_csms=[_mv("a", 1, "2030-01-01T00:01:00Z", 20), _mv("b", 1, "2030-01-01T00:00:00Z", 10)])
    held, detail = check_meter_order({"CP": back})
    assert not held
    assert detail["out_of_order_count"] == 1


def test_transaction_check_wants_one_id_per_start_and_every_stop_answered() -> None:
    """Two ids for one start (a retry counted twice) and an unanswered stop each break the invariant."""
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2030-01-01T00:00:00Z"}
    side = _Side(
        from_charger=[_call("s1", "StartTransaction", start), _call("s2", "StartTransaction", start)],
        to_csms=[_call("s1", "StartTransaction", start), _call("s2", "StartTransaction", start)],
        from_csms=[json.dumps([3, "s1", {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}]),
                   json.dumps([3, "s2", {"transactionId": 8, "idTagInfo": {"status": "Accepted"}}])],
    )  # fmt: skip
    held, detail = check_transactions({"CP": side})
    assert not held
    assert detail["several_transaction_ids_count"] == 1
    side.from_csms[1] = json.dumps([3, "s2", {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}])
    assert check_transactions({"CP": side})[0]
    side.from_charger.append(_call("e1", "StopTransaction", {"transactionId": 7, "meterStop": 5, "timestamp": "x"}))
    held, detail = check_transactions({"CP": side})
    assert not held
    assert detail["stops_unanswered"] == ["('CP', 7)"]


def test_chaos_files_load_and_typos_are_named(tmp_path: Path) -> None:
    """Every shipped scenario loads; an unknown key and a loss above 1 name the file and the field."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        assert load_chaos(path).chargers > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargers: 5\nfaults: {loss: 1.5, jiter_ms: 3}\n")
    with pytest.raises(ChaosError) as err:
        load_chaos(bad)
    lines = str(err.value).splitlines()
    assert f"{bad}: faults.loss: Input should be less than or equal to 1" in lines
    assert f"{bad}: faults.jiter_ms: unknown key; check the spelling" in lines


@pytest.mark.slow
def test_smoke_chaos_run_holds_its_invariants_against_the_reference_csms(arun: Any, tmp_path: Path) -> None:
    """Every fault kind on 12 chargers: every transaction once, meter values in order, all recovered."""
    scenario = load_chaos(SCENARIOS / "smoke.yaml")

    async def go() -> dict[str, Any]:
        async with Csms() as csms:
            return await run_chaos(scenario, csms.url, tmp_path)

    report = arun(go(), 150)
    inv = report["invariants"]
    assert inv["transactions_exactly_once"]["started"] == scenario.chargers
    assert report["held"], inv
    assert inv["meter_values_in_order"]["meter_values_checked"] > 0
    assert inv["no_charger_unknown"]["recovery_s"] is not None
    applied = report["faults_applied"]
    assert applied["lost"] > 0
    assert applied["disconnects"] >= 6  # the storm alone cuts 6


class CountsEveryStart(Csms16Handler):
    """A CSMS that gives a StartTransaction received twice a second transaction id."""

    @on(Action.start_transaction)
    def on_start_transaction(self, id_tag: str, **kwargs: Any) -> Any:
        """Forget the starts seen so far before handling this one."""
        self.records._start_ids.clear()
        return super().on_start_transaction(id_tag, **kwargs)


class CountingCsms(Csms):
    """The reference CSMS without its retry detection."""

    handler16 = CountsEveryStart


@pytest.mark.slow
def test_exactly_once_catches_a_csms_that_counts_a_duplicated_start_twice(arun: Any, tmp_path: Path) -> None:
    """Every frame duplicated: the reference gives one id per start, a CSMS without retry detection two."""
    scenario = ChaosScenario(
        chargers=3, fault_s=4, ramp_s=0.5, session_s=1, recovery_timeout_s=30, faults={"duplicate": 1.0}
    )

    async def go(cls: type[Csms]) -> dict[str, Any]:
        async with cls() as csms:
            return await run_chaos(scenario, csms.url, tmp_path / cls.__name__)

    good = arun(go(Csms), 60)["invariants"]["transactions_exactly_once"]
    bad = arun(go(CountingCsms), 60)["invariants"]["transactions_exactly_once"]
    assert good["held"]
    assert good["started"] == 3
    assert not bad["held"], bad
    assert bad["several_transaction_ids_count"] == 3


@pytest.mark.slow
def test_cli_chaos_writes_its_report_and_rejects_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--chaos FILE``: exit 0 with chaos.json when the invariants hold; a typo in the file exits 2."""
    small = tmp_path / "small.yaml"
    small.write_text("name: small\nchargers: 3\nfault_s: 3\nramp_s: 0.5\nsession_s: 1\nfaults: {loss: 0.02}\n")
    out = tmp_path / "out"
    assert main(["conformance", "--chaos", str(small), "--out", str(out)]) == 0
    report = json.loads((out / "chaos.json").read_text())
    assert report["kind"] == "chargetwin-chaos"
    assert set(report["invariants"]) == {"transactions_exactly_once", "meter_values_in_order", "no_charger_unknown"}
    small.write_text("chargers: 3\nfautls: {}\n")
    capsys.readouterr()
    assert main(["conformance", "--chaos", str(small), "--out", str(out)]) == 2
    assert "fautls: unknown key" in capsys.readouterr().err
