"""pytest plugin for testing a CSMS with virtual OCPP chargers (registered as a ``pytest11`` entry point).

Tests stay synchronous: chargers run in an event loop on a background thread and the fixture hands out
`SyncCharger` handles whose methods block until done (every wait has a timeout)::

    def test_my_csms_starts_a_transaction(virtual_charger):
        cp = virtual_charger("CP0001")                 # connects to --csms (or a reference CSMS)
        cp.wait_booted()
        cp.plug_in(1, id_tag="04A2B3C4")
        start = cp.wait_for("StartTransaction", direction="tx")
        assert cp.sent("Authorize")[0]["idTag"] == "04A2B3C4"

Options: ``--csms URL`` (default: a reference CSMS started for the session on 127.0.0.1),
``--csms-speed`` (simulated seconds per wall second, default 60), ``--csms-ocpp`` (1.6 or 2.0.1).

Conformance cases (`virtual_chargers.conformance`) run as tests marked ``conformance``: a test that takes
the ``conformance_case`` argument is repeated for every case of ``--csms-ocpp``, and
``run_conformance_case(case)`` passes, fails with the frames exchanged, or skips (not applicable, or
manual without ``--csms-api``)::

    def test_conformance(conformance_case, run_conformance_case):
        run_conformance_case(conformance_case)

``pytest --pyargs virtual_chargers.conformance.suite --csms URL -m conformance`` runs that very test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ChargerLoop", "SyncCharger"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--csms URL`` and friends."""
    group = parser.getgroup("chargetwin", "virtual OCPP chargers")
    group.addoption("--csms", default=None, help="websocket URL of the CSMS under test, e.g. ws://127.0.0.1:9000")
    group.addoption("--csms-speed", type=float, default=60.0, help="simulated seconds per wall second")
    group.addoption("--csms-ocpp", default="1.6", choices=["1.6", "2.0.1"], help="OCPP version of the chargers")
    group.addoption("--csms-api", default=None, help="HTTP endpoint making the CSMS send requests (conformance)")
    group.addoption("--csms-valid-tag", default="CONFTAG01", help="an id tag the CSMS accepts (conformance)")
    group.addoption("--csms-invalid-tag", default=None, help="an id tag the CSMS answers Invalid (conformance)")


_REFERENCE_CSMS = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``conformance`` marker."""
    config.addinivalue_line("markers", "conformance: an OCPP conformance case of chargetwin run against --csms")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Repeat a test taking ``conformance_case`` for every case of ``--csms-ocpp``, marked ``conformance``."""
    if "conformance_case" not in metafunc.fixturenames:
        return
    from virtual_chargers.conformance import all_cases, select_cases

    ocpp = str(metafunc.config.getoption("--csms-ocpp"))
    cases = select_cases(all_cases(), ocpp)
    params = [pytest.param(c, id=f"{ocpp}-{c.id}", marks=pytest.mark.conformance) for c in cases]
    metafunc.parametrize("conformance_case", params)


class ChargerLoop:
    """An asyncio loop on a daemon thread; `run` executes a coroutine there and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="virtual-chargers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30.0) -> Any:
        """Run ``coro`` on the loop; raise TimeoutError after ``timeout_s`` wall seconds."""
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout_s), self.loop)
        return future.result(timeout_s + 5.0)

    def close(self) -> None:
        """Cancel what is left, stop the loop and join the thread."""

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(15.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10.0)
        self.loop.close()


class SyncCharger:
    """A blocking handle on a virtual charger running in the `ChargerLoop`."""

    def __init__(self, charger: Any, loop: ChargerLoop) -> None:
        self.charger = charger
        self._loop = loop

    @property
    def id(self) -> str:
        """The charger id."""
        return str(self.charger.spec.id)

    def wait_booted(self, timeout_s: float = 10.0) -> None:
        """Block until the CSMS accepted the boot."""
        from virtual_chargers.testing import ChargerSet

        self._loop.run(ChargerSet.wait_booted(self.charger, timeout_s), timeout_s + 1)

    def plug_in(self, connector_id: int = 1, id_tag: str = "TAG0001", ev: Any = None, timeout_s: float = 10.0) -> None:
        """An EV plugs in and presents ``id_tag`` (authorize, start a transaction)."""
        self._loop.run(self.charger.plug_in(connector_id, ev, id_tag), timeout_s)

    def unplug(self, connector_id: int = 1, timeout_s: float = 10.0) -> None:
        """The EV leaves (the transaction stops with EVDisconnected)."""
        self._loop.run(self.charger.unplug(connector_id), timeout_s)

    def wait_for(self, action: str, direction: str = "rx", timeout_s: float = 10.0, after: int = 0) -> dict[str, Any]:
        """Block until a request ``action`` arrives from the CSMS (``rx``) or is sent by the charger (``tx``)."""
        result: dict[str, Any] = self._loop.run(
            self.charger.wait_for(action, direction, timeout_s, after=after), timeout_s + 1
        )
        return result

    def sent(self, action: str) -> list[dict[str, Any]]:
        """Payloads of the ``action`` requests the charger sent."""
        return list(self.charger.sent(action))

    def received(self, action: str) -> list[dict[str, Any]]:
        """Payloads of the ``action`` requests the CSMS sent."""
        return list(self.charger.received(action))

    def call(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, timeout_s: float = 10.0) -> Any:
        """Run ``fn(charger, *args)`` on the charger's loop, e.g. a fault: ``cp.call(lambda c: c.apply_fault(f))``."""
        return self._loop.run(fn(self.charger, *args), timeout_s)


@pytest.fixture(scope="session")
def charger_loop() -> Iterator[ChargerLoop]:
    """The background event loop of the session's virtual chargers."""
    loop = ChargerLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def csms_url(request: pytest.FixtureRequest, charger_loop: ChargerLoop) -> Iterator[str]:
    """``--csms``, or the URL of a reference CSMS started for the session on 127.0.0.1."""
    url = request.config.getoption("--csms")
    if url:
        yield str(url)
        return
    from virtual_chargers.csms import Csms

    csms = charger_loop.run(Csms().start())
    request.config.stash[_REFERENCE_CSMS] = csms
    yield csms.url
    charger_loop.run(csms.stop())
    del request.config.stash[_REFERENCE_CSMS]


@pytest.fixture
def virtual_charger(
    request: pytest.FixtureRequest, charger_loop: ChargerLoop, csms_url: str, tmp_path: Path
) -> Iterator[Callable[..., SyncCharger]]:
    """Factory: ``virtual_charger("CP1", connectors=2, config={...})`` → a running `SyncCharger`.

    Every charger made in a test is stopped when the test ends; its frames go to ``tmp_path/frames.jsonl``.
    """
    from virtual_chargers.testing import ChargerSet

    speed = float(request.config.getoption("--csms-speed"))
    ocpp = str(request.config.getoption("--csms-ocpp"))

    async def make_set() -> ChargerSet:
        return ChargerSet(csms_url, speed=speed, state_dir=tmp_path, log_path=tmp_path / "frames.jsonl")

    fleet: ChargerSet = charger_loop.run(make_set())

    def make(charger_id: str, **kwargs: Any) -> SyncCharger:
        kwargs.setdefault("ocpp", ocpp)
        return SyncCharger(charger_loop.run(fleet.add(charger_id, **kwargs)), charger_loop)

    yield make
    charger_loop.run(fleet.close(), 30.0)


@pytest.fixture
def run_conformance_case(
    request: pytest.FixtureRequest, charger_loop: ChargerLoop, csms_url: str
) -> Callable[[Any], None]:
    """``run_conformance_case(case)``: run one conformance case against the CSMS; fail or skip as it says.

    Against the session's reference CSMS its own API is used, so CSMS-initiated cases run too; against
    ``--csms`` they need ``--csms-api`` and are skipped as manual otherwise.
    """
    import logging

    from virtual_chargers.clock import SimClock
    from virtual_chargers.conformance.api import HttpApi, ReferenceApi
    from virtual_chargers.conformance.runner import SuiteConfig, run_case
    from virtual_chargers.framelog import FrameLog

    opt = request.config.getoption
    reference = request.config.stash.get(_REFERENCE_CSMS, None)
    api: Any = HttpApi(str(opt("--csms-api"))) if opt("--csms-api") else None
    invalid = opt("--csms-invalid-tag")
    if reference is not None:
        logging.getLogger("ocpp").setLevel(logging.CRITICAL)  # its tracebacks of the negative cases' frames
        api = ReferenceApi(reference)
        invalid = invalid or "CONFBADTAG"
        reference.records16.rejected_tags.add(invalid)
        reference.records201.rejected_tokens.add(invalid)

    def run(case: Any) -> None:
        cfg = SuiteConfig(
            csms_url, case.ocpp, api=api, valid_id_tag=str(opt("--csms-valid-tag")), invalid_id_tag=invalid
        )
        log = FrameLog(SimClock(1.0))

        async def go() -> Any:
            return await run_case(case, cfg, log)

        result = charger_loop.run(go(), cfg.case_timeout_s + 10.0)
        outcome = str(result.outcome)
        if outcome == "fail":
            frames = "\n".join(f"{f['t']:8.3f} {f['dir']} {f['frame'][:500]}" for f in result.frames[-30:])
            pytest.fail(f"{case.id} {case.title}: {result.message}\nchecks: {case.checks}\n{frames}", pytrace=False)
        if outcome in ("not_applicable", "manual"):
            pytest.skip(f"{outcome}: {result.message}")

    return run
