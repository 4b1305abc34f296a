"""OCPP 2.0.1 TransactionEvents survive a CSMS outage: all arrive once, in order, seqNo continuous, offline flagged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

N = 20


def test_csms_stopped_mid_transaction_then_restarted(arun: Any, tmp_path: Path) -> None:
    """20 stations charge; the CSMS goes away; they end that transaction and run a whole one offline.

    After the CSMS returns every TransactionEvent arrives, in order, with seqNo 0, 1, 2 … per transaction
    and ``offline: true`` on the events generated without a connection; the only copy is the resend of
    an event whose answer the outage swallowed.
    """

    async def scenario() -> None:
        received: list[tuple[str, dict[str, Any]]] = []  # (station, TransactionEvent payload) in arrival order

        def on_frame(station: str, direction: str, raw: str) -> None:
            if direction == "rx" and raw.startswith("[2,"):
                frame = json.loads(raw)
                if frame[2] == "TransactionEvent":
                    received.append((station, frame[3]))

        csms = await Csms(on_frame=on_frame).start()
        port = csms.port
        async with ChargerSet(csms.url, speed=600.0, state_dir=tmp_path, backoff_base_s=5, backoff_max_s=20) as fleet:
            stations = [
                await fleet.add(f"CS{i:03d}", ocpp="2.0.1", variables={"SampledDataCtrlr.TxUpdatedInterval": "60"})
                for i in range(N)
            ]
            await fleet.wait_all_booted(20)
            for cp in stations:
                await cp.plug_in(1, id_tag=f"TAG{cp.spec.id}")
            rec = csms.records201
            await rec.wait_for(lambda: sum(e.event_type == "Started" for e in rec.tx_events) == N, 20)
            await asyncio.sleep(0.3)  # a few periodic Updated events each, online
            await csms.stop()
            await asyncio.wait_for(asyncio.gather(*(_offline(cp) for cp in stations)), 10)
            generated_online = len(received)
            await asyncio.sleep(0.3)  # Updated events pile up in the queue
            for cp in stations:
                await cp.unplug(1)
                await cp.plug_in(1, id_tag=f"TAG{cp.spec.id}")  # a whole transaction while offline
            await asyncio.sleep(0.2)
            for cp in stations:
                await cp.unplug(1)
            queued = sum(len(cp.queue) for cp in stations)
            assert queued >= 4 * N  # at least: Updated and Ended of the first, Started and Ended of the second
            restarted = Csms(port=port, on_frame=on_frame)
            await restarted.start()
            try:
                await fleet.wait_queues_empty(30)
            finally:
                await restarted.stop()
            summary = fleet.log.summary
            errors = [e for cp in stations for e in cp.errors]

        assert errors == []
        assert summary.transactions_started == 2 * N
        assert summary.transactions_ended == 2 * N
        assert summary.transactions_confirmed == 2 * N
        assert summary.queued_delivered >= queued
        assert summary.violation_count == 0, summary.violations
        # An event the CSMS received as it went down, but whose answer never reached the station, is sent
        # again: OCPP delivers at least once and seqNo lets the CSMS drop the copy. Anything else seen
        # twice, or a copy that differs from the first, is a bug.
        first_seen: dict[tuple[str, int], dict[str, Any]] = {}
        delivered: list[tuple[str, dict[str, Any]]] = []
        resent_by_station: dict[str, int] = {}
        for station, payload in received:
            key = (payload["transactionInfo"]["transactionId"], payload["seqNo"])
            if key in first_seen:
                assert payload == first_seen[key], f"seqNo {key} reused for another event"
                resent_by_station[station] = resent_by_station.get(station, 0) + 1
                continue
            first_seen[key] = payload
            delivered.append((station, payload))
        assert all(n == 1 for n in resent_by_station.values()), resent_by_station  # only the one in flight
        assert len(delivered) >= generated_online + queued - len(resent_by_station)
        by_station: dict[str, list[dict[str, Any]]] = {}
        for station, payload in delivered:
            by_station.setdefault(station, []).append(payload)
        assert len(by_station) == N
        for station, events in by_station.items():
            stamps = [e["timestamp"] for e in events]
            assert stamps == sorted(stamps), station
            txs: dict[str, list[dict[str, Any]]] = {}
            for e in events:
                txs.setdefault(e["transactionInfo"]["transactionId"], []).append(e)
            assert len(txs) == 2, station
            first, second = txs.values()
            for tx in (first, second):
                assert [e["seqNo"] for e in tx] == list(range(len(tx))), station
                assert tx[0]["eventType"] == "Started", station
                assert tx[-1]["eventType"] == "Ended", station
            flags = [e.get("offline", False) for e in first]
            assert flags == sorted(flags), station  # online events first, then the offline ones
            assert not flags[0], station
            assert flags[-1], station  # its Ended happened offline
            assert sum(flags) >= 2, station  # periodic Updated events while offline, then Ended
            assert all(e.get("offline") is True for e in second), station
            assert second[0]["idToken"]["idToken"] == f"TAG{station}", station

    async def _offline(cp: Any) -> None:
        while cp.online.is_set():
            await asyncio.sleep(0.01)

    arun(scenario(), timeout_s=90)
