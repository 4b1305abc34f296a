"""Transaction messages survive a CSMS outage and an emulator restart: all arrive, in order, once."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

N = 50


def test_csms_stopped_mid_transaction_then_restarted_loses_and_duplicates_nothing(arun: Any, tmp_path: Path) -> None:
    """50 chargers charge; the CSMS goes away; they stop offline; after restart every message arrives in order."""

    async def scenario() -> None:
        csms = await Csms().start()
        port = csms.port
        delivered: list[tuple[str, str, list[Any]]] = []  # (charger, action, frame) as the CSMS saw them

        def on_frame(charger: str, direction: str, raw: str) -> None:
            if direction == "rx" and raw.startswith("[2,"):
                import json

                frame = json.loads(raw)
                if frame[2] in ("StartTransaction", "StopTransaction", "MeterValues"):
                    delivered.append((charger, frame[2], frame))

        csms.on_frame = on_frame
        async with ChargerSet(csms.url, speed=600.0, state_dir=tmp_path, backoff_base_s=5, backoff_max_s=20) as fleet:
            chargers = [await fleet.add(f"CP{i:03d}", config={"MeterValueSampleInterval": "60"}) for i in range(N)]
            await fleet.wait_all_booted(20)
            for cp in chargers:
                await cp.plug_in(1, id_tag=f"TAG{cp.spec.id}")
            await csms.records16.wait_for(lambda: len(csms.records16.starts) == N, 20)
            await asyncio.sleep(0.3)  # a few meter values each
            await csms.stop()
            await asyncio.wait_for(asyncio.gather(*(_offline(cp) for cp in chargers)), 10)
            await asyncio.sleep(0.3)  # meter values pile up in the queue
            for cp in chargers:
                await cp.unplug(1)
            queued = sum(len(cp.queue) for cp in chargers)
            assert queued >= 2 * N  # at least meter values and the stop of each
            restarted = Csms(port=port, on_frame=on_frame)
            restarted.records16._ids = csms.records16._ids  # the CSMS's transaction ids go on
            await restarted.start()
            try:
                await fleet.wait_queues_empty(30)
            finally:
                await restarted.stop()
            summary = fleet.log.summary

        assert summary.transactions_started == N
        assert summary.transactions_ended == N
        assert summary.transactions_confirmed == N
        assert summary.queued_delivered >= queued
        by_charger: dict[str, list[tuple[str, list[Any]]]] = {}
        for cid, action, frame in delivered:
            by_charger.setdefault(cid, []).append((action, frame))
        assert len(by_charger) == N
        for cid, frames in by_charger.items():
            actions = [a for a, _ in frames]
            assert actions[0] == "StartTransaction", cid
            assert actions[-1] == "StopTransaction", cid
            assert actions.count("StartTransaction") == 1, cid
            assert actions.count("StopTransaction") == 1, cid
            stamps = [
                f[3]["timestamp"] if a != "MeterValues" else f[3]["meterValue"][0]["timestamp"] for a, f in frames
            ]
            assert stamps == sorted(stamps), cid
            tx_ids = {f[3]["transactionId"] for a, f in frames if a != "StartTransaction"}
            assert len(tx_ids) == 1, cid  # every later message carries the id the CSMS gave
        stop_ids = [f[3]["transactionId"] for fs in by_charger.values() for a, f in fs if a == "StopTransaction"]
        assert sorted(stop_ids) == list(range(1, N + 1))

    async def _offline(cp: Any) -> None:
        while cp.online.is_set():
            await asyncio.sleep(0.01)

    arun(scenario(), timeout_s=90)


def test_emulator_restart_delivers_what_was_queued(arun: Any, tmp_path: Path) -> None:
    """Messages queued while the CSMS was down are sent by a new emulator process using the same state folder."""

    async def scenario() -> None:
        with socket.socket() as s:  # a free port: the CSMS is down there first, and comes up there later
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        async with ChargerSet(url, speed=600.0, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1")
            await cp.plug_in(1)
            await asyncio.sleep(0.2)
            await cp.unplug(1)
            queued = len(cp.queue)
            assert queued >= 2
        async with Csms(port=port) as csms, ChargerSet(url, speed=600.0, state_dir=tmp_path) as fleet:
            cp = await fleet.add("CP1")
            await fleet.wait_booted(cp)
            await fleet.wait_queues_empty(10)
            assert fleet.log.summary.queued_from_earlier_run == queued
            rec = csms.records16
            assert len(rec.starts) == 1
            assert len(rec.stops) == 1
            (tx,) = rec.transactions.values()
            assert tx.stop is not None
            assert tx.stop["transactionId"] == tx.transaction_id

    arun(scenario())
