"""Charging profiles in the virtual chargers (1.6J and 2.0.1) against a CSMS of our own.

The CSMS here is raw OCPP-J frames over `websockets` on 127.0.0.1 (port 0), sending what strict
third-party CSMSs send: profiles without ``startSchedule``, a TxProfile in the same breath as the
StartTransaction answer, charger-wide maximum profiles. The chargers run on a clock the test steps, so
every limit and energy below follows from the profiles' definitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from tests.conftest import make_scenario
from tests.virtual_chargers.conftest import PacedRunner
from virtual_chargers.base import ChargerSpec, ConnectorSpec
from virtual_chargers.clock import SimClock, ocpp_time
from virtual_chargers.testing import ChargerSet

START = datetime(2026, 3, 2, tzinfo=UTC)
DAY_S = 86400


class SteppedClock(SimClock):
    """Simulated time that moves only when the test moves it; timers still sleep ``sim_s / speed`` wall seconds."""

    def __init__(self, start: datetime = START, speed: float = 600.0) -> None:
        """Simulated second 0 at ``start``."""
        super().__init__(speed, start)
        self.now_s = 0.0

    def t_s(self) -> float:
        """The time the test set."""
        return self.now_s


# Every request a charger sends gets a valid answer; {tx} is a fresh transaction id.
_ANSWERS_16: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "BootNotification": lambda p, n: {"currentTime": ocpp_time(START), "interval": 300, "status": "Accepted"},
    "Heartbeat": lambda p, n: {"currentTime": ocpp_time(START)},
    "Authorize": lambda p, n: {"idTagInfo": {"status": "Accepted"}},
    "StartTransaction": lambda p, n: {"transactionId": n, "idTagInfo": {"status": "Accepted"}},
    "StopTransaction": lambda p, n: {},
}
_ANSWERS_201: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "BootNotification": lambda p, n: {"currentTime": ocpp_time(START), "interval": 300, "status": "Accepted"},
    "Heartbeat": lambda p, n: {"currentTime": ocpp_time(START)},
    "Authorize": lambda p, n: {"idTokenInfo": {"status": "Accepted"}},
    "TransactionEvent": lambda p, n: {"idTokenInfo": {"status": "Accepted"}} if "idToken" in p else {},
    "NotifyEVChargingNeeds": lambda p, n: {"status": "Accepted"},
}


class RawCsms:
    """A CSMS of our own: answers every request, records every frame, sends calls when the test asks.

    Args:
        version: "1.6" or "2.0.1" (the subprotocol and the answers).
        after_answer: Called with (charger id, action, request payload, answer) for each request; the
            ``(action, payload)`` calls it returns are sent right after the answer, in the same burst of
            writes, before the charger could have handled the answer.
        current_time: What its clock reads for BootNotification and Heartbeat answers (None: `START`).
    """

    def __init__(
        self,
        version: str = "1.6",
        after_answer: Callable[[str, str, dict[str, Any], dict[str, Any]], list[tuple[str, dict[str, Any]]]]
        | None = None,
        current_time: Callable[[], datetime] | None = None,
    ) -> None:
        """A CSMS not yet listening; ``async with`` starts it on a free port."""
        self.version = version
        self.current_time = current_time  # what the CSMS's clock reads (None: the simulated calendar's start)
        self.answers = _ANSWERS_16 if version == "1.6" else _ANSWERS_201
        self.after_answer = after_answer
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []  # (charger, action, payload, answer)
        self.call_results: dict[str, dict[str, Any]] = {}  # our call's id → the charger's answer
        self._conns: dict[str, ServerConnection] = {}
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tx_ids = itertools.count(1001)
        self._changed = asyncio.Event()
        self._server: Any = None
        self.url = ""

    async def __aenter__(self) -> RawCsms:
        protocol = Subprotocol("ocpp1.6" if self.version == "1.6" else "ocpp2.0.1")
        self._server = await serve(self._handle, "127.0.0.1", 0, subprotocols=[protocol])
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 10)

    async def _handle(self, ws: ServerConnection) -> None:
        charger = ws.request.path.rsplit("/", 1)[-1] if ws.request is not None else "?"
        self._conns[charger] = ws
        with contextlib.suppress(Exception):
            async for raw in ws:
                frame = json.loads(raw)
                if frame[0] == 2:
                    _, uid, action, payload = frame
                    make = self.answers.get(action)
                    answer = make(payload, next(self._tx_ids)) if make else {}
                    if "currentTime" in answer and self.current_time is not None:
                        answer["currentTime"] = ocpp_time(self.current_time())
                    await ws.send(json.dumps([3, uid, answer]))
                    follow = self.after_answer(charger, action, payload, answer) if self.after_answer else []
                    for call_action, call_payload in follow:
                        call_id = f"csms-{next(self._ids)}"
                        self._waiters[call_id] = asyncio.get_running_loop().create_future()
                        await ws.send(json.dumps([2, call_id, call_action, call_payload]))
                    self.requests.append((charger, action, payload, answer))
                elif frame[0] in (3, 4):
                    waiter = self._waiters.pop(frame[1], None)
                    result = frame[2] if frame[0] == 3 else {"callError": frame[2]}
                    self.call_results[frame[1]] = result
                    if waiter is not None and not waiter.done():
                        waiter.set_result(result)
                self._changed.set()

    async def call(self, charger: str, action: str, payload: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
        """Send a request to ``charger`` and return its answer (a CallError as ``{"callError": code}``)."""
        await self.wait_for(lambda: charger in self._conns, timeout_s)
        uid = f"csms-{next(self._ids)}"
        waiter = self._waiters[uid] = asyncio.get_running_loop().create_future()
        await self._conns[charger].send(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(waiter, timeout_s)

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait (wall seconds) until ``predicate()`` holds."""

        async def poll() -> None:
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

        await asyncio.wait_for(poll(), timeout_s)

    def sent(self, action: str, charger: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the requests ``action`` the chargers sent."""
        return [p for c, a, p, _ in self.requests if a == action and (charger is None or c == charger)]


# ---------------------------------------------------------------------- profiles in both versions' words


def profile16(
    profile_id: int,
    purpose: str,
    stack_level: int,
    kind: str,
    periods: list[tuple[int, float]],
    *,
    start: datetime | None = None,
    recurrency: str | None = None,
    duration_s: int | None = None,
    transaction_id: Any = None,
) -> dict[str, Any]:
    """A 1.6 csChargingProfiles in W."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": w} for s, w in periods],
    }
    if start is not None:
        schedule["startSchedule"] = ocpp_time(start)
    if duration_s is not None:
        schedule["duration"] = duration_s
    p: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if recurrency is not None:
        p["recurrencyKind"] = recurrency
    if transaction_id is not None:
        p["transactionId"] = transaction_id
    return p


def profile201(
    profile_id: int, purpose: str, stack_level: int, kind: str, periods: list[tuple[int, float]], **kw: Any
) -> dict[str, Any]:
    """The same profile as a 2.0.1 ChargingProfileType."""
    p16 = profile16(
        profile_id, purpose.replace("ChargePointMax", "ChargingStationMax"), stack_level, kind, periods, **kw
    )
    schedule = {"id": profile_id, **p16.pop("chargingSchedule")}
    p = {"id": p16.pop("chargingProfileId"), **p16, "chargingSchedule": [schedule]}
    if "transactionId" in p:
        p["transactionId"] = str(p["transactionId"])
    return p


class Dialect:
    """What differs between 1.6 and 2.0.1 for these tests: message names, fields and where answers live."""

    def __init__(self, version: str) -> None:
        self.version = version

    def set_profile(self, target: int, profile: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SetChargingProfile call for connector / EVSE ``target``."""
        if self.version == "1.6":
            return "SetChargingProfile", {"connectorId": target, "csChargingProfiles": profile}
        return "SetChargingProfile", {"evseId": target, "chargingProfile": profile}

    def profile(self, *args: Any, **kw: Any) -> dict[str, Any]:
        """A profile in this version's words (see `profile16`)."""
        return profile16(*args, **kw) if self.version == "1.6" else profile201(*args, **kw)

    async def composite(self, csms: RawCsms, charger: str, target: int, duration_s: int) -> list[tuple[int, float]]:
        """GetCompositeSchedule in W as (startPeriod, limit) pairs."""
        if self.version == "1.6":
            payload = {"connectorId": target, "duration": duration_s, "chargingRateUnit": "W"}
            answer = await csms.call(charger, "GetCompositeSchedule", payload)
            assert answer["status"] == "Accepted", answer
            periods = answer["chargingSchedule"]["chargingSchedulePeriod"]
        else:
            payload = {"evseId": target, "duration": duration_s, "chargingRateUnit": "W"}
            answer = await csms.call(charger, "GetCompositeSchedule", payload)
            assert answer["status"] == "Accepted", answer
            periods = answer["schedule"]["chargingSchedulePeriod"]
        return [(p["startPeriod"], p["limit"]) for p in periods]

    def tx_ids(self, csms: RawCsms, charger: str) -> dict[int, Any]:
        """Connector / EVSE → id of the transaction started on it, as the CSMS knows it."""
        if self.version == "1.6":
            return {
                p["connectorId"]: answer["transactionId"]
                for c, a, p, answer in csms.requests
                if c == charger and a == "StartTransaction"
            }
        return {
            p["evse"]["id"]: p["transactionInfo"]["transactionId"]
            for p in csms.sent("TransactionEvent", charger)
            if p["eventType"] == "Started"
        }


VERSIONS = ["1.6", "2.0.1"]


async def _wait_tx(csms: RawCsms, dialect: Dialect, cp: Any, connector: int) -> Any:
    """Wait until the CSMS and the charger both know the transaction on ``connector``; return its id."""
    await csms.wait_for(lambda: connector in dialect.tx_ids(csms, cp.spec.id), 10)
    tx_id = dialect.tx_ids(csms, cp.spec.id)[connector]
    await csms.wait_for(lambda: cp.connectors[connector].tx_id == str(tx_id), 10)
    return tx_id


@pytest.mark.parametrize("version", VERSIONS)
def test_profiles_without_start_schedule_are_accepted_and_the_composite_is_their_stack(
    version: str, arun: Any, tmp_path: Path
) -> None:
    """Absolute and Recurring profiles with and without startSchedule are Accepted; GetCompositeSchedule is their stack.

    Without startSchedule a schedule counts from the start of charging (the transaction), and a charger-wide
    maximum from its receipt. Installed (W, times in simulated seconds):
      charger max, Absolute, no start, received at 100: 11000 until 1900, then 7000;
      connector 1 TxDefault level 0, Recurring Daily from 3600: 9000 for 7200 s, then 5000, every day;
      connector 1 TxProfile level 1, Absolute, no start, transaction from 500: 6000, 10000 from 1500, until 2500;
      connector 2 TxDefault level 1, Recurring Daily, no start, transaction from 700: 4000, 8000 from 4300, daily.
    """
    d = Dialect(version)
    max_purpose = "ChargePointMaxProfile"

    async def scenario() -> None:
        clock = SteppedClock()
        async with RawCsms(version) as csms, ChargerSet(csms.url, clock=clock, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1", ocpp=version, connectors=2, power_kw=22.0)
            await fleet.wait_booted(cp)

            async def install(target: int, profile: dict[str, Any]) -> None:
                answer = await csms.call("CP1", *d.set_profile(target, profile))
                assert answer["status"] == "Accepted", (profile, answer)

            clock.now_s = 100.0
            await install(0, d.profile(1, max_purpose, 0, "Absolute", [(0, 11000.0), (1800, 7000.0)]))
            daily = d.profile(
                2, "TxDefaultProfile", 0, "Recurring", [(0, 9000.0), (7200, 5000.0)],
                start=START + timedelta(seconds=3600), recurrency="Daily",
            )  # fmt: skip
            await install(1, daily)
            clock.now_s = 500.0
            await cp.plug_in(1, id_tag="ALICE")
            tx_id = await _wait_tx(csms, d, cp, 1)
            clock.now_s = 600.0
            tx_profile = d.profile(
                3, "TxProfile", 1, "Absolute", [(0, 6000.0), (1000, 10000.0)], duration_s=2000, transaction_id=tx_id
            )
            await install(1, tx_profile)
            # window [600, 100600): 6000 | 10000 from 1500 | 7000 from 1900 (max steps down; the TxProfile ends
            # at 2500 and the daily one starts at 3600, both above 7000) | 5000 from 10800 | 7000 from 90000
            # (the next day's 9000 period) | 5000 from 97200
            expected_1 = [
                (0, 6000.0),
                (900, 10000.0),
                (1300, 7000.0),
                (10200, 5000.0),
                (89400, 7000.0),
                (96600, 5000.0),
            ]
            assert await d.composite(csms, "CP1", 1, 100000) == expected_1

            clock.now_s = 700.0
            await install(
                2, d.profile(4, "TxDefaultProfile", 1, "Recurring", [(0, 4000.0), (3600, 8000.0)], recurrency="Daily")
            )
            await cp.plug_in(2, id_tag="BOB")
            await _wait_tx(csms, d, cp, 2)
            clock.now_s = 800.0
            # window [800, 90800): 4000 (under the max) | 7000 from 4300 (max below 8000) | 4000 from 87100 | 7000
            # from 90700
            assert await d.composite(csms, "CP1", 2, 90000) == [
                (0, 4000.0),
                (3500, 7000.0),
                (86300, 4000.0),
                (89900, 7000.0),
            ]
            # the whole charger: its maximum alone
            assert await d.composite(csms, "CP1", 0, 3600) == [(0, 11000.0), (1100, 7000.0)]

    arun(scenario())


def _tx_profile_on_start(d: Dialect, profile_ids: itertools.count) -> Any:
    """An ``after_answer`` hook: a 3.7 kW TxProfile for the transaction just answered, right behind the answer."""

    def hook(charger: str, action: str, payload: dict[str, Any], answer: dict[str, Any]) -> list[Any]:
        if d.version == "1.6" and action == "StartTransaction":
            connector, tx_id = payload["connectorId"], answer["transactionId"]
        elif d.version == "2.0.1" and action == "TransactionEvent" and payload["eventType"] == "Started":
            connector, tx_id = payload["evse"]["id"], payload["transactionInfo"]["transactionId"]
        else:
            return []
        profile = d.profile(next(profile_ids), "TxProfile", 2, "Relative", [(0, 3700.0)], transaction_id=tx_id)
        return [d.set_profile(connector, profile)]

    return hook


@pytest.mark.parametrize("version", VERSIONS)
def test_tx_profile_sent_with_the_start_answer_is_accepted_for_every_transaction(
    version: str, arun: Any, tmp_path: Path
) -> None:
    """A CSMS that sends the TxProfile in the same write burst as the StartTransaction (TransactionEvent) answer.

    Every one of 12 transactions (4 chargers x 3 sessions) gets Accepted and runs capped at 3.7 kW.
    """
    d = Dialect(version)
    n_chargers, n_sessions = 4, 3

    async def scenario() -> None:
        clock = SteppedClock()
        csms = RawCsms(version, after_answer=_tx_profile_on_start(d, itertools.count(100)))
        async with csms, ChargerSet(csms.url, clock=clock, state_dir=tmp_path) as fleet:
            cps = [await fleet.add(f"CP{i}", ocpp=version, power_kw=11.0) for i in range(n_chargers)]
            await fleet.wait_all_booted(20)
            for k in range(n_sessions):
                clock.now_s = 1000.0 * (k + 1)
                for cp in cps:
                    await cp.plug_in(1, id_tag=f"T{k}")
                await csms.wait_for(lambda k=k: len(csms.call_results) == n_chargers * (k + 1), 10)
                for cp in cps:
                    assert cp.connectors[1].limit_kw(clock.now_s) == pytest.approx(3.7)
                for cp in cps:
                    await cp.unplug(1)
            answers = list(csms.call_results.values())
        assert len(answers) == n_chargers * n_sessions
        assert all(a.get("status") == "Accepted" for a in answers), answers

    arun(scenario())


def _session_energy_wh(d: Dialect, csms: RawCsms, charger: str) -> dict[int, float]:
    """Connector → energy of its (one) transaction as the CSMS was told: meter at the end − meter at the start."""
    if d.version == "1.6":
        starts = {
            answer["transactionId"]: (p["connectorId"], p["meterStart"])
            for c, a, p, answer in csms.requests
            if c == charger and a == "StartTransaction"
        }
        stops = {p["transactionId"]: p["meterStop"] for p in csms.sent("StopTransaction", charger)}
        return {connector: stops[tx] - start for tx, (connector, start) in starts.items()}

    def register(p: dict[str, Any]) -> float:
        (value,) = [
            float(s["value"])
            for s in p["meterValue"][0]["sampledValue"]
            if s.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
        ]
        return value

    events = csms.sent("TransactionEvent", charger)
    starts201 = {
        p["transactionInfo"]["transactionId"]: (p["evse"]["id"], register(p))
        for p in events
        if p["eventType"] == "Started"
    }
    ends = {p["transactionInfo"]["transactionId"]: register(p) for p in events if p["eventType"] == "Ended"}
    return {evse: ends[tx] - start for tx, (evse, start) in starts201.items()}


@pytest.mark.parametrize("version", VERSIONS)
def test_charge_point_max_is_shared_by_the_connectors_of_a_virtual_charger(
    version: str, arun: Any, tmp_path: Path
) -> None:
    """A 3.7 kW charger maximum (connector / EVSE 0) on two 11 kW connectors: together they draw 3.7 kW, not 7.4.

    EV 1 charges alone from 100 to 200 s at 3.7 kW, then both share it (1.85 kW each) until 3800 s. The energies
    the CSMS is told (meter at the end − at the start; 1.6 sends whole Wh) add up to 3.7 kW x 3700 s.
    """
    d = Dialect(version)

    async def scenario() -> dict[int, float]:
        clock = SteppedClock()
        async with RawCsms(version) as csms, ChargerSet(csms.url, clock=clock, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1", ocpp=version, connectors=2, power_kw=11.0)
            await fleet.wait_booted(cp)
            cap = d.profile(1, "ChargePointMaxProfile", 0, "Absolute", [(0, 3700.0)], start=START)
            assert (await csms.call("CP1", *d.set_profile(0, cap)))["status"] == "Accepted"
            clock.now_s = 100.0
            await cp.plug_in(1, id_tag="ALICE")
            await _wait_tx(csms, d, cp, 1)
            clock.now_s = 200.0
            await cp.plug_in(2, id_tag="BOB")
            await _wait_tx(csms, d, cp, 2)
            clock.now_s = 3800.0
            await cp.unplug(1)
            await cp.unplug(2)
            await fleet.wait_queues_empty(10)
            return _session_energy_wh(d, csms, "CP1")

    energy_wh = arun(scenario())
    whole_wh = 1.0 if version == "1.6" else 0.1  # resolution of the readings: 1.6 sends whole Wh
    assert energy_wh[2] == pytest.approx(1.85 * 3600 / 3.6, abs=2 * whole_wh)
    assert energy_wh[1] == pytest.approx(3.7 * 100 / 3.6 + 1.85 * 3600 / 3.6, abs=2 * whole_wh)
    assert sum(energy_wh.values()) == pytest.approx(3.7 * 3700 / 3.6, abs=4 * whole_wh)


def _bridged_scenario(csms_url: str, version: str) -> Any:
    """One site, one 2-connector 22 kW AC charger, half a day from noon, EVs that stay hours: sessions overlap."""
    return make_scenario(
        name="charger-max",
        seed=5,
        start="2026-03-02T12:00:00+01:00",
        horizon_days=0.5,
        network={
            "sites": [
                {
                    "id": "a",
                    "lat": 52.0,
                    "lon": 4.0,
                    "capacity_kw": 1000.0,
                    "chargers": [{"model": "ac22", "count": 1, "connectors": 2, "power_kw": 22.0, "current": "ac"}],
                }
            ]
        },
        fleet=[{"preset": "tesla_model_3_lr", "share": 1}, {"preset": "renault_zoe_ze50", "share": 1}],
        demand=[
            {
                "kind": "synthetic",
                "site": "a",
                "rate": {"kind": "constant", "per_hour": 2.0},
                "dwell_min": {"dist": "uniform", "low": 120, "high": 300},
                "max_queue": 1,
            }
        ],
        manager={
            "kind": "ocpp",
            "csms": csms_url,
            "ocpp": version,
            "speed": 5000.0,
            "response_timeout_s": 5.0,
            "meter_interval_s": 300,
        },
    )


def _max_at_boot(d: Dialect, limit_w: float) -> Any:
    """An ``after_answer`` hook: a charger-wide maximum (no startSchedule) right behind each BootNotification answer."""

    def hook(charger: str, action: str, payload: dict[str, Any], answer: dict[str, Any]) -> list[Any]:
        if action != "BootNotification":
            return []
        return [d.set_profile(0, d.profile(1, "ChargePointMaxProfile", 0, "Absolute", [(0, limit_w)]))]

    return hook


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_charge_point_max_is_shared_in_a_bridged_run(
    version: str, arun: Any, paced_run: PacedRunner, tmp_path: Path
) -> None:
    """A CSMS caps a two-connector charger at 3.7 kW: the simulated charger's total stays within it.

    The total is recomputed from the recorded charging intervals (each EV's curve at its state of charge) at
    every interval boundary and every simulated minute; the run has minutes with both connectors drawing.
    """
    d = Dialect(version)
    cap_kw = 3.7

    async def run() -> Any:
        csms = RawCsms(version, after_answer=_max_at_boot(d, cap_kw * 1000.0))
        async with csms:
            scenario = _bridged_scenario(csms.url, version)
            result, _ = await paced_run(scenario, frames_path=tmp_path / "frames.jsonl", drain_timeout_s=10.0)
            assert [a["status"] for a in csms.call_results.values()] == ["Accepted"]
            return result

    result = arun(run(), timeout_s=90)
    tables = result.tables
    iv = tables.intervals
    t_s = np.unique(
        np.concatenate([np.arange(0.0, tables.scenario.horizon_s, 60.0), iv["t0_s"], np.nextafter(iv["t1_s"], -np.inf)])
    )
    total_kw = np.zeros(len(t_s))
    drawing = np.zeros(len(t_s), dtype=int)
    for k in range(len(iv["t0_s"])):
        inside = (t_s >= iv["t0_s"][k]) & (t_s < iv["t1_s"][k])
        prof = tables.profiles[iv["profile"][k]]
        total_kw[inside] += prof.power_at_array(prof.soc_at_array(iv["tau0_s"][k] + t_s[inside] - iv["t0_s"][k]))
        drawing[inside] += 1
    assert total_kw.max() <= cap_kw * (1 + 1e-9)
    assert (drawing == 2).sum() > 60  # over an hour of simulated minutes with both connectors drawing
    np.testing.assert_allclose(total_kw[drawing == 2], cap_kw)


def _wall_now() -> datetime:
    return datetime.now(UTC)


def _timestamps(payload: Any) -> list[str]:
    """Every ``timestamp`` value anywhere in a payload."""
    if isinstance(payload, dict):
        found = [v for k, v in payload.items() if k == "timestamp" and isinstance(v, str)]
        return found + [t for v in payload.values() for t in _timestamps(v)]
    if isinstance(payload, list):
        return [t for v in payload for t in _timestamps(v)]
    return []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("csms_clock", ["wall", "simulated"])
def test_chargers_keep_the_simulated_calendar_and_report_the_csms_clock_offset(
    version: str, csms_clock: str, arun: Any, tmp_path: Path
) -> None:
    """Every timestamp a charger sends is the simulated calendar, whatever the CSMS's clock says at boot.

    The offset of the CSMS's clock (BootNotification currentTime − the simulated calendar) is in the QA
    summary, with a warning when it passes a minute: a CSMS on the wall clock is months off a calendar that
    starts on 2026-03-02, a CSMS answering with the simulated calendar is not off at all.
    """
    d = Dialect(version)
    on_wall = csms_clock == "wall"

    async def scenario() -> tuple[list[str], Any, datetime]:
        clock = SteppedClock()
        async with (
            RawCsms(version, current_time=_wall_now if on_wall else None) as csms,
            ChargerSet(csms.url, clock=clock, state_dir=tmp_path) as fleet,
        ):
            booted_wall = _wall_now()
            cp = await fleet.add("CP1", ocpp=version)
            await fleet.wait_booted(cp)
            clock.now_s = 100.0
            await cp.plug_in(1, id_tag="ALICE")
            await _wait_tx(csms, d, cp, 1)
            clock.now_s = 700.0
            await cp.unplug(1)
            await fleet.wait_queues_empty(10)
            stamps = [t for c, a, p, _ in csms.requests for t in _timestamps(p)]
            return stamps, fleet.log.summary, booted_wall

    stamps, summary, booted_wall = arun(scenario())
    simulated = {ocpp_time(START + timedelta(seconds=t)) for t in (0.0, 100.0, 700.0)}
    assert len(stamps) >= 4  # statuses, the transaction's start and end
    assert set(stamps) <= simulated
    offset = summary.to_dict()["csms_clock_offset"]
    assert offset["chargers"] == 1
    if on_wall:
        expected_s = (booted_wall - START).total_seconds()
        assert offset["median_s"] == pytest.approx(expected_s, abs=10.0)  # the boot took under 10 wall seconds
        assert "off the simulated calendar" in summary.to_dict()["warnings"][0]
    else:
        assert offset["median_s"] == 0.0
        assert summary.to_dict()["warnings"] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_profile_that_never_overlaps_the_run_is_a_qa_warning(version: str, arun: Any, tmp_path: Path) -> None:
    """Of three Absolute profiles, the one anchored on the CSMS's wall clock and the one already over warn.

    The run lasts a simulated day from 2026-03-02; profiles arrive at simulated second 100:
      id 1 from START + 3600 s for 2 h: inside the run, no warning;
      id 2 from the wall clock's now for 2 h: months after the run, warning;
      id 3 from START − 7200 s for 1 h: over before it arrived, warning.
    """
    d = Dialect(version)

    async def scenario() -> Any:
        clock = SteppedClock()
        async with (
            RawCsms(version) as csms,
            ChargerSet(csms.url, clock=clock, state_dir=tmp_path, run_end_t_s=float(DAY_S)) as fleet,
        ):
            cp = await fleet.add("CP1", ocpp=version)
            await fleet.wait_booted(cp)
            clock.now_s = 100.0
            starts = {1: START + timedelta(seconds=3600), 2: _wall_now(), 3: START - timedelta(seconds=7200)}
            durations = {1: 7200, 2: 7200, 3: 3600}
            for pid, start in starts.items():
                profile = d.profile(
                    pid, "TxDefaultProfile", pid, "Absolute", [(0, 4000.0)], start=start, duration_s=durations[pid]
                )
                assert (await csms.call("CP1", *d.set_profile(1, profile)))["status"] == "Accepted"
            return fleet.log.summary.to_dict()

    qa = arun(scenario())
    warnings = qa["warnings"]
    assert len(warnings) == 2, warnings
    assert "TxDefaultProfile 2 on 1" in warnings[0]
    assert "TxDefaultProfile 3 on 1" in warnings[1]
    assert all("never during the run" in w for w in warnings)


def test_a_bridged_run_warns_of_a_csms_on_its_wall_clock(arun: Any, paced_run: PacedRunner, tmp_path: Path) -> None:
    """In a paced run, a CSMS on the wall clock and its wall-clock profile are warnings in the QA summary."""
    d = Dialect("1.6")

    def profile_at_boot(charger: str, action: str, payload: dict[str, Any], answer: dict[str, Any]) -> list[Any]:
        if action != "BootNotification":
            return []
        start = datetime.fromisoformat(answer["currentTime"].replace("Z", "+00:00"))  # the CSMS's own clock
        profile = d.profile(9, "TxDefaultProfile", 0, "Absolute", [(0, 3700.0)], start=start, duration_s=3 * 3600)
        return [d.set_profile(0, profile)]

    async def run() -> Any:
        async with RawCsms("1.6", after_answer=profile_at_boot, current_time=_wall_now) as csms:
            scenario = _bridged_scenario(csms.url, "1.6").model_copy(update={"horizon_days": 0.02})  # 29 min
            result, _ = await paced_run(scenario, frames_path=tmp_path / "frames.jsonl", drain_timeout_s=10.0)
            assert [a["status"] for a in csms.call_results.values()] == ["Accepted"]
            return result, scenario.start

    before = _wall_now()
    result, sim_start = arun(run(), timeout_s=90)
    after = _wall_now()
    qa = result.qa
    # the CSMS's clock read between `before` and `after`; the simulated calendar then within the run
    horizon = timedelta(seconds=result.tables.scenario.horizon_s)
    offset_s = qa["csms_clock_offset"]["median_s"]
    assert (before - sim_start - horizon).total_seconds() <= offset_s <= (after - sim_start).total_seconds()
    assert "off the simulated calendar" in qa["warnings"][0]
    assert "TxDefaultProfile 9 on 0" in qa["warnings"][1]
    assert len(qa["warnings"]) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_whole_charger_composite_of_a_shared_cabinet_is_its_power_under_the_maximum(
    version: str, arun: Any, tmp_path: Path
) -> None:
    """Connector / EVSE 0 of a 30 kW cabinet with two 22 kW connectors: 30 kW, then 20 kW under a 20 kW maximum."""
    d = Dialect(version)

    async def scenario() -> tuple[Any, Any]:
        clock = SteppedClock()
        async with RawCsms(version) as csms, ChargerSet(csms.url, clock=clock, state_dir=tmp_path) as fleet:
            connector = ConnectorSpec(22.0, voltage_v=230.0, phases=3)
            cp = await fleet.add_spec(ChargerSpec("CP1", (connector, connector), shared_power_kw=30.0), ocpp=version)
            await fleet.wait_booted(cp)
            alone = await d.composite(csms, "CP1", 0, 600)
            cap = d.profile(1, "ChargePointMaxProfile", 0, "Absolute", [(0, 20000.0)])
            assert (await csms.call("CP1", *d.set_profile(0, cap)))["status"] == "Accepted"
            return alone, await d.composite(csms, "CP1", 0, 600)

    alone, capped = arun(scenario())
    assert alone == [(0, 30000.0)]
    assert capped == [(0, 20000.0)]
