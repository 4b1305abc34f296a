"""`ChargerSet`: start virtual chargers against a CSMS inside one event loop, and stop them cleanly.

Used by the tests, the pytest plugin and the benchmark::

    async with ChargerSet(csms.url, speed=600, state_dir=tmp_path) as fleet:
        cp = await fleet.add("CP1")
        await fleet.wait_booted(cp)
        await cp.plug_in(1)
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Any

from sim.network_plan import AC_PHASES, AC_VOLTAGE_V, DC_PHASES, DC_VOLTAGE_V
from virtual_chargers.base import ChargerContext, ChargerSpec, ConnectorSpec, VirtualCharger
from virtual_chargers.clock import SimClock
from virtual_chargers.connection import SecurityConfig
from virtual_chargers.framelog import FrameLog
from virtual_chargers.txqueue import TxStore

__all__ = ["ChargerSet", "charger_class"]


def charger_class(ocpp: str) -> type[VirtualCharger]:
    """The charger class of OCPP version ``ocpp`` ("1.6" or "2.0.1")."""
    if ocpp == "1.6":
        from virtual_chargers.v16 import V16Charger

        return V16Charger
    if ocpp == "2.0.1":
        try:
            from virtual_chargers.v201 import V201Charger  # type: ignore[attr-defined]
        except ImportError as exc:
            raise ValueError(f"OCPP 2.0.1 chargers are not available in this build ({exc})") from None
        return V201Charger  # type: ignore[no-any-return]
    raise ValueError(f"ocpp must be 1.6 or 2.0.1, not {ocpp!r}")


class ChargerSet:
    """Chargers sharing one clock, frame log and queue store; each runs as a task until `close`.

    Args:
        csms_url: ws:// or wss:// URL of the CSMS (chargers add ``/<id>``).
        speed: Simulated seconds per wall second.
        state_dir: Folder of the persisted transaction queue (None: in memory).
        log_path: JSONL frame log (None: counts only).
        security, password, ssl_context: How chargers authenticate.
        leave_open: Leave running transactions open at the CSMS on `close` (False: stop them first, as
            `chargetwin chargers` does unless ``--leave-open``).
        context: More `ChargerContext` fields (backoff, timeouts, boot time…).
    """

    def __init__(
        self,
        csms_url: str,
        *,
        speed: float = 60.0,
        state_dir: Path | None = None,
        log_path: Path | None = None,
        security: SecurityConfig | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: SimClock | None = None,
        seed: int = 0,
        leave_open: bool = True,
        **context: Any,
    ) -> None:
        self.leave_open = leave_open
        self.clock = clock or SimClock(speed)
        self.log = FrameLog(self.clock, log_path, secrets=[password] if password else [])
        self.store = TxStore(state_dir / "txqueue.sqlite" if state_dir is not None else None)
        self.ctx = ChargerContext(
            clock=self.clock,
            log=self.log,
            store=self.store,
            csms_url=csms_url,
            security=security or SecurityConfig(),
            password=password,
            ssl_context=ssl_context,
            seed=seed,
            **context,
        )
        self.chargers: dict[str, VirtualCharger] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> ChargerSet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def add(
        self,
        charger_id: str,
        *,
        ocpp: str = "1.6",
        connectors: int = 1,
        power_kw: float = 22.0,
        dc: bool = False,
        start: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Create a charger (and start it unless ``start`` is False); ``kwargs`` go to its class."""
        spec = ChargerSpec(
            charger_id,
            tuple(
                ConnectorSpec(
                    power_kw,
                    dc=dc,
                    voltage_v=DC_VOLTAGE_V if dc else AC_VOLTAGE_V,
                    phases=DC_PHASES if dc else AC_PHASES,
                )
                for _ in range(connectors)
            ),
        )
        charger = charger_class(ocpp)(spec, self.ctx, **kwargs)
        self.chargers[charger_id] = charger
        if start:
            self.start(charger)
        return charger

    async def add_spec(self, spec: ChargerSpec, *, ocpp: str = "1.6", start: bool = True, **kwargs: Any) -> Any:
        """Create a charger from its spec (and start it unless ``start`` is False)."""
        charger = charger_class(ocpp)(spec, self.ctx, **kwargs)
        self.chargers[spec.id] = charger
        if start:
            self.start(charger)
        return charger

    def start(self, charger: VirtualCharger) -> None:
        """Run a charger created with ``start=False``."""
        self._tasks[charger.spec.id] = asyncio.ensure_future(charger.run())

    async def stop_charger(self, charger: VirtualCharger, timeout_s: float = 10.0) -> None:
        """Stop one charger and wait for its task."""
        await charger.stop()
        task = self._tasks.pop(charger.spec.id, None)
        if task is not None:
            await asyncio.wait_for(task, timeout_s)

    @staticmethod
    async def wait_booted(charger: VirtualCharger, timeout_s: float = 10.0) -> None:
        """Wait (wall seconds) until the charger's boot is accepted; the error says why it is not."""
        try:
            await asyncio.wait_for(charger.online.wait(), timeout_s)
        except TimeoutError:
            why = charger.last_connect_error or "no accepted BootNotification"
            raise TimeoutError(f"{charger.spec.id} not online within {timeout_s} s: {why}") from None

    async def wait_all_booted(self, timeout_s: float = 30.0) -> None:
        """Wait until every charger is online."""
        await asyncio.wait_for(asyncio.gather(*(c.online.wait() for c in self.chargers.values())), timeout_s)

    async def wait_queues_empty(self, timeout_s: float = 30.0) -> None:
        """Wait until every transaction message was delivered."""

        async def poll() -> None:
            while any(len(c.queue) for c in self.chargers.values()):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout_s)

    async def stop_transactions(self, timeout_s: float = 15.0) -> None:
        """End every running transaction as stopped locally, then let online chargers deliver their queues.

        Waits up to wall ``timeout_s``, so the CSMS is left with no transaction open; what is not delivered
        stays queued for the next run.
        """
        for charger in self.chargers.values():
            await charger.stop_transactions_locally()

        async def drained() -> None:
            while any(len(c.queue) for c in self.chargers.values() if c.online.is_set()):
                await asyncio.sleep(0.02)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained(), timeout_s)

    async def close(self) -> None:
        """Stop every charger (first its transactions, unless ``leave_open``), then close the log and the store."""
        if not self.leave_open:
            await self.stop_transactions()
        for charger in self.chargers.values():
            await charger.stop()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=15.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            self.store.close()
        self.log.close()
