"""A graceful stop of `chargetwin chargers` leaves no transaction open at the CSMS, unless --leave-open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from virtual_chargers.fleet import FleetOptions, plan_quick, run_chargers

pytestmark = pytest.mark.slow  # whole loopback sessions stopped at shutdown: about 1.5 s each

N = 3
DURATION_S = 900.0  # every quick plan's first EV plugs in within 600 s and stays at least 1,800 s


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_stop_ends_running_transactions_with_reason_local(
    arun: Any, raw_csms: Any, tmp_path: Path, version: str
) -> None:
    """Every transaction running at the end is stopped (1.6 reason Local; 2.0.1 Ended, stoppedReason Local)."""
    plans = plan_quick(N, DURATION_S, seed=3)
    assert all(p.sessions[0].t_s + p.sessions[0].dwell_s > DURATION_S for p in plans)  # still charging at the end

    async def scenario() -> Any:
        async with raw_csms() as csms:
            opts = FleetOptions(csms_url=csms.url, ocpp=version, speed=600.0, duration_s=DURATION_S)
            summary = await run_chargers(plans, opts, None, tmp_path)
            return csms, summary

    csms, summary = arun(scenario())
    assert len(csms.ended) == N
    assert csms.open_tx == {}
    if version == "1.6":
        assert [e["reason"] for e in csms.ended] == ["Local"] * N
    else:
        assert [e["transactionInfo"]["stoppedReason"] for e in csms.ended] == ["Local"] * N
        assert [e["triggerReason"] for e in csms.ended] == ["StopAuthorized"] * N
    assert summary.transactions_ended == N


def test_leave_open_keeps_transactions_open_at_the_csms(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """With leave_open (--leave-open) the CSMS keeps the transactions, for tests of its own cleanup."""
    plans = plan_quick(N, DURATION_S, seed=3)

    async def scenario() -> Any:
        async with raw_csms() as csms:
            opts = FleetOptions(csms_url=csms.url, speed=600.0, duration_s=DURATION_S, leave_open=True)
            await run_chargers(plans, opts, None, tmp_path)
            return csms

    csms = arun(scenario())
    assert len(csms.open_tx) == N
    assert csms.ended == []
