"""`chargetwin conformance`: the suite against the reference CSMS, a deliberately broken one, its reports."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16.enums import Action

from sim.cli import main
from virtual_chargers.clock import SimClock
from virtual_chargers.conformance import Outcome, SuiteConfig, all_cases, run_cases, select_cases
from virtual_chargers.conformance.api import HttpApi, ReferenceApi
from virtual_chargers.conformance.report import OutDir, OutputError, build_report, junit_xml, render_html
from virtual_chargers.csms import Csms, Csms16Handler
from virtual_chargers.framelog import FrameLog

pytest_plugins = ["pytester"]

BAD_TAG = "CONFBADTAG"
# A few cases of every kind, for the default run; the whole suite is marked slow.
SMOKE = ("CORE_00[146]", "CORE_101", "SC_101", "NEG_00[13458]", "NEG_011", "B_001", "E_001", "F_101", "K_002")


@pytest.fixture(autouse=True)
def _quiet_ocpp_logger() -> Iterator[None]:
    """The library logs a traceback for every bad frame the negative cases send on purpose."""
    logger = logging.getLogger("ocpp")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


async def _suite(csms: Csms, ocpp: str, patterns: tuple[str, ...] = (), *, api: Any = "reference") -> dict[str, Any]:
    """Run the selected cases against ``csms``; returns {case id: result}."""
    csms.records16.rejected_tags.add(BAD_TAG)
    csms.records201.rejected_tokens.add(BAD_TAG)
    cfg = SuiteConfig(
        csms.url,
        ocpp,
        api=ReferenceApi(csms) if api == "reference" else api,
        invalid_id_tag=BAD_TAG,
        timeout_s=1.0,
        case_timeout_s=20.0,
    )
    results = await run_cases(select_cases(all_cases(), ocpp, patterns), cfg, FrameLog(SimClock(1.0)))
    return {r.case.id: r for r in results}


def _failing(results: dict[str, Any]) -> dict[str, str]:
    return {cid: r.message for cid, r in results.items() if r.outcome is Outcome.FAIL}


def test_case_registry_is_complete_and_consistent() -> None:
    """Ids unique per version; every block of the issue has cases; CSMS-initiated cases carry instructions."""
    cases = all_cases()
    blocks16 = {c.block for c in cases if c.ocpp == "1.6"}
    assert blocks16 == {
        "Core", "Smart Charging", "Remote Trigger", "Firmware Management", "Local Auth List", "Reservation", "Negative"
    }  # fmt: skip
    letters = {c.block[0] for c in cases if c.ocpp == "2.0.1" and c.block != "Negative"}
    assert letters == set("ABCDEFGHJKLN")
    assert all(c.manual for c in cases if c.csms_action)
    assert select_cases(cases, "2.0.1", ["E*", "K*"]) == [c for c in sorted(cases, key=lambda c: c.id)
                                                         if c.ocpp == "2.0.1" and c.id[0] in "EK"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_reference_csms_passes_the_smoke_cases(arun: Any, ocpp: str) -> None:
    """The default run's subset: every selected case passes against the reference CSMS with its API."""

    async def go() -> dict[str, Any]:
        async with Csms() as csms:
            return await _suite(csms, ocpp, SMOKE)

    results = arun(go(), 60)
    assert len(results) >= 6
    assert _failing(results) == {}
    assert {r.outcome for r in results.values()} == {Outcome.PASS}


@pytest.mark.slow
@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_reference_csms_passes_every_case(arun: Any, ocpp: str) -> None:
    """The whole suite: every case passes (with the CSMS API no case is manual; a wrong password is N/A)."""

    async def go() -> dict[str, Any]:
        async with Csms() as csms:
            return await _suite(csms, ocpp)

    results = arun(go(), 240)
    assert _failing(results) == {}
    not_passed = {cid for cid, r in results.items() if r.outcome is not Outcome.PASS}
    assert not_passed == {"NEG_014"}  # security profile 0 has no password to get wrong


def test_without_a_csms_api_csms_initiated_cases_are_manual_with_instructions(arun: Any) -> None:
    """No API: RemoteStart is not run but reported manual, naming the charger id to use."""

    async def go() -> dict[str, Any]:
        async with Csms() as csms:
            return await _suite(csms, "1.6", ("CORE_101", "CORE_002"), api=None)

    results = arun(go(), 30)
    assert results["CORE_002"].outcome is Outcome.PASS
    manual = results["CORE_101"]
    assert manual.outcome is Outcome.MANUAL
    assert "CT-CORE_101" in manual.message
    assert "RemoteStartTransaction" in manual.message


class BrokenHandler(Csms16Handler):
    """A CSMS with three defects.

    NotSupported to Authorize, StopTransaction never answered, StatusNotification accepted unchecked.
    """

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        """A mandatory Core action answered as if unsupported."""
        raise NotSupportedError(details={"cause": "no authorization here"})

    async def route_message(self, raw_msg: str) -> None:
        """Drop StopTransaction; answer any StatusNotification, valid or not."""
        msg = json.loads(raw_msg) if raw_msg.startswith("[") and raw_msg.endswith("]") else None
        if isinstance(msg, list) and len(msg) == 4 and msg[0] == 2:
            if msg[2] == "StopTransaction":
                return
            if msg[2] == "StatusNotification":
                await self._send(json.dumps([3, msg[1], {}]))
                return
        await super().route_message(raw_msg)


class BrokenCsms(Csms):
    """The reference CSMS with `BrokenHandler` for 1.6 chargers."""

    handler16 = BrokenHandler


@pytest.mark.slow
def test_a_broken_csms_fails_exactly_the_matching_cases(arun: Any) -> None:
    """Each defect fails the cases that exercise it, and no other case changes verdict."""

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with Csms() as good, BrokenCsms() as broken:
            return await _suite(good, "1.6"), await _suite(broken, "1.6")

    good, broken = arun(go(), 300)
    authorize = {"CORE_004", "CORE_005", "CORE_006"}  # the cases that send Authorize
    stop = {"CORE_006", "CORE_007", "CORE_010", "CORE_011", "CORE_102", "NEG_011"}  # ... StopTransaction
    invalid_status = {"NEG_001", "NEG_002", "NEG_003"}  # ... an invalid StatusNotification
    assert set(_failing(broken)) - set(_failing(good)) == authorize | stop | invalid_status
    assert set(_failing(good)) & (authorize | stop | invalid_status) == set()
    assert "NotSupported" in broken["CORE_004"].message
    assert "no answer in time" in broken["CORE_007"].message
    assert "expected a CallError" in broken["NEG_001"].message
    frames = [f["frame"] for f in broken["CORE_007"].frames]
    assert any('"StopTransaction"' in f for f in frames)  # the failure shows the frames exchanged


def test_the_csms_api_over_http_runs_csms_initiated_cases(arun: Any) -> None:
    """`HttpApi` POSTs {chargerId, action, payload}; an adapter over the reference CSMS makes the cases pass."""
    orders: list[dict[str, Any]] = []

    async def go() -> dict[str, Any]:
        async with Csms() as csms:
            loop = asyncio.get_running_loop()
            ref = ReferenceApi(csms)

            class Adapter(BaseHTTPRequestHandler):
                def do_POST(self) -> None:  # noqa: N802 - the http.server API
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    orders.append(body)
                    fut = asyncio.run_coroutine_threadsafe(
                        ref.send(body["chargerId"], body["action"], body["payload"]), loop
                    )
                    fut.result(10)
                    self.send_response(204)
                    self.end_headers()

                def log_message(self, *args: Any) -> None:
                    pass

            server = ThreadingHTTPServer(("127.0.0.1", 0), Adapter)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                api = HttpApi(f"http://127.0.0.1:{server.server_address[1]}/send")
                return await _suite(csms, "1.6", ("CORE_101", "RES_101"), api=api)
            finally:
                server.shutdown()
                server.server_close()
                thread.join(10)

    results = arun(go(), 60)
    assert _failing(results) == {}
    assert [o["action"] for o in orders] == ["RemoteStartTransaction", "ReserveNow"]
    assert orders[0]["chargerId"] == "CT-CORE_101"
    assert orders[0]["payload"]["idTag"] == "CONFREMOTE1"


def _report(tmp_path: Path, arun: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with BrokenCsms() as csms:
            return await _suite(csms, "1.6", ("CORE_00[1-4]", "NEG_014"))

    results = list(arun(go(), 60).values())
    meta = {"csms": "x", "ocpp": "1.6", "security_profile": 0, "csms_api": True, "started": "t", "duration_s": 1.0}
    return build_report(meta, results)


def test_reports_count_by_block_and_show_failure_frames(tmp_path: Path, arun: Any) -> None:
    """JSON counts add up per block; HTML and JUnit carry each verdict and the failing case's frames."""
    report = _report(tmp_path, arun)
    outcomes = [c["outcome"] for c in report["cases"]]
    assert report["summary"] == {o: outcomes.count(o) for o in ("pass", "fail", "not_applicable", "manual")}
    assert sum(sum(b.values()) for b in report["blocks"].values()) == len(outcomes)
    failed = [c for c in report["cases"] if c["outcome"] == "fail"]
    assert [c["id"] for c in failed] == ["CORE_004"]
    assert failed[0]["frames"]
    assert all(c["frames"] == [] for c in report["cases"] if c["outcome"] != "fail")
    page = render_html(report)
    assert "CORE_004" in page
    assert "Authorize" in page
    assert "Summary by functional block" in page
    suite = ET.fromstring(junit_xml(report))
    assert suite.get("tests") == str(len(outcomes))
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == str(outcomes.count("not_applicable"))
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert "Authorize" in (failure.text or "")


def test_out_dir_refuses_foreign_folders_and_replaces_previous_reports(tmp_path: Path) -> None:
    """A folder with other files is refused untouched; an earlier report is replaced; a file is refused."""
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "kpis.json").write_text("{}")
    with pytest.raises(OutputError, match="not a conformance report"):
        OutDir(foreign)
    assert (foreign / "kpis.json").read_text() == "{}"
    with pytest.raises(OutputError, match="is a file"):
        OutDir(foreign / "kpis.json")
    target = tmp_path / "conf"
    for run in range(2):
        out = OutDir(target)
        (out.tmp / "conformance.json").write_text(json.dumps({"kind": "chargetwin-conformance", "run": run}))
        out.commit()
    assert json.loads((target / "conformance.json").read_text())["run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "results"]


def test_cli_runs_writes_reports_and_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Against the in-process reference CSMS: exit 0, three files and JUnit; bad --select / --out exit 2."""
    out, junit = tmp_path / "conf", tmp_path / "conf.xml"
    code = main(["conformance", "--ocpp", "1.6", "--select", "CORE_00[12],CORE_101", "--out", str(out),
                 "--junit", str(junit)])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["conformance.json", "frames.jsonl", "report.html"]
    report = json.loads((out / "conformance.json").read_text())
    assert [c["id"] for c in report["cases"]] == ["CORE_001", "CORE_002", "CORE_101"]
    assert report["summary"]["pass"] == 3
    assert report["csms_api"] is True
    assert '"RemoteStartTransaction"' in (out / "frames.jsonl").read_text()
    assert ET.parse(junit).getroot().get("tests") == "3"
    capsys.readouterr()
    assert main(["conformance", "--ocpp", "1.6", "--select", "ZZZ*", "--out", str(out)]) == 2
    assert "no OCPP 1.6 case id matches" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["conformance", "--ocpp", "1.6", "--out", str(tmp_path / "mine")]) == 2
    assert "not a conformance report" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.slow
def test_pytest_runs_the_suite_with_the_conformance_marker(pytester: pytest.Pytester) -> None:
    """``pytest --pyargs virtual_chargers.conformance.suite -m conformance``: one test per selected case."""
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", "--pyargs", "virtual_chargers.conformance.suite",
        "-m", "conformance", "-k", "CORE_001 or CORE_101 or NEG_001 or NEG_014",
    )  # fmt: skip
    result.assert_outcomes(passed=3, skipped=1)
