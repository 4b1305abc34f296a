"""Offline queue state: keyed by CSMS URL and charger id, kept in the user's cache dir, and reported when replayed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.cli import default_state_dir
from virtual_chargers.testing import ChargerSet

NO_METER = {"MeterValueSampleInterval": "0"}


def test_messages_queued_for_one_csms_go_to_that_csms_only_and_are_reported(
    arun: Any, raw_csms: Any, tmp_path: Path
) -> None:
    """A StartTransaction left unanswered by CSMS A is not replayed to CSMS B, and is delivered to A next run."""

    async def scenario() -> tuple[int, int, int, int]:
        async with raw_csms({"StartTransaction": lambda _: None}) as a, raw_csms() as b:
            async with ChargerSet(a.url, speed=600.0, state_dir=tmp_path, response_timeout_s=60) as fleet:
                cp = await fleet.add("CP1", config=NO_METER)
                await fleet.wait_booted(cp)
                await cp.plug_in(1)
                await a.wait_until(lambda: len(a.calls("StartTransaction")) == 1)
            # the run ended with A's answer outstanding: the message stays in the store
            async with ChargerSet(b.url, speed=600.0, state_dir=tmp_path) as fleet:
                cp = await fleet.add("CP1", config=NO_METER)
                await fleet.wait_booted(cp)
                await asyncio.sleep(0.3)
                to_b = len(b.calls("StartTransaction"))
                earlier_to_b = fleet.log.summary.queued_from_earlier_run
            a.answers.clear()
            async with ChargerSet(a.url, speed=600.0, state_dir=tmp_path) as fleet:
                cp = await fleet.add("CP1", config=NO_METER, start=False)
                left = len(cp.queue)
                fleet.start(cp)
                await fleet.wait_booted(cp)
                await fleet.wait_queues_empty(10)
                return to_b, earlier_to_b, left, fleet.log.summary.queued_from_earlier_run

    to_b, earlier_to_b, left, earlier_to_a = arun(scenario())
    assert to_b == 0
    assert earlier_to_b == 0
    assert left == 1  # the StartTransaction A never answered
    assert earlier_to_a == left


def test_default_state_dir_is_the_users_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without --state-dir the queues live in the user's cache directory, not the working directory."""
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG_CACHE_HOME sets the cache directory on Linux only")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_state_dir() == tmp_path / "cache" / "chargetwin" / "chargers"
