"""Message ids come from the charger's generator, injected as the ocpp library's ChargePoint has it."""

import asyncio
import itertools

from tests.virtual_chargers.raw_csms import RawCsms
from virtual_chargers.testing import ChargerSet


async def frames_with_our_ids(ocpp: str) -> list[tuple[str, str]]:
    """A charger whose ``_unique_id_generator`` counts m1, m2 …: boots, reports, sends a heartbeat."""
    csms = await RawCsms(version=ocpp).start()
    try:
        async with ChargerSet(csms.url, speed=60.0) as chargers:
            charger = await chargers.add("cp-1", ocpp=ocpp, start=False)
            counter = itertools.count(1)
            charger._unique_id_generator = lambda: f"m{next(counter)}"
            chargers.start(charger)
            await asyncio.wait_for(charger.online.wait(), 10)
            await asyncio.wait_for(charger.send_heartbeat(), 10)
    finally:
        await csms.stop()
    return [(r.unique_id, r.action) for r in csms.received if r.charger == "cp-1"]


def test_injected_message_ids_are_the_frames_ids(arun):
    """Every Call the CSMS receives carries the next id of the injected generator, in order, for both versions."""
    for ocpp in ("1.6", "2.0.1"):
        frames = arun(frames_with_our_ids(ocpp), timeout_s=30)
        assert frames[0] == ("m1", "BootNotification")
        assert frames[-1][1] == "Heartbeat"
        assert [uid for uid, _ in frames] == [f"m{i}" for i in range(1, len(frames) + 1)], ocpp
