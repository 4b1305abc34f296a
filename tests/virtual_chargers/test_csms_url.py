"""CSMS URLs: ``<base>/<id>`` by default, or a template with ``{id}`` in the path or the query string."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.cli import main
from sim.config.ocpp import OcppManager, csms_url_problem
from virtual_chargers.connection import charger_url
from virtual_chargers.testing import ChargerSet


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("{url}", "/CP.01"),  # today's default: <base>/<id>
        ("{url}/", "/CP.01"),
        ("{url}/ocpp", "/ocpp/CP.01"),
        ("{url}/ws/ocpp/{{id}}/", "/ws/ocpp/CP.01/"),  # trailing slash after the id
        ("{url}/ocpp?chargePointId={{id}}", "/ocpp?chargePointId=CP.01"),  # the id in the query string
    ],
)
def test_chargers_connect_where_the_url_or_template_says(
    arun: Any, raw_csms: Any, tmp_path: Path, template: str, path: str
) -> None:
    """The CSMS sees the request path the URL form defines, and the charger boots through it."""

    async def scenario() -> list[str]:
        async with raw_csms() as csms:
            url = template.format(url=csms.url)
            async with ChargerSet(url, speed=600.0, state_dir=tmp_path) as fleet:
                cp = await fleet.add("CP.01")
                await fleet.wait_booted(cp)
            return csms.paths

    assert arun(scenario()) == [path]


def test_ids_are_percent_encoded_where_they_land() -> None:
    """An id with characters a query value cannot hold reaches the CSMS intact."""
    assert charger_url("ws://h/ocpp?cp={id}&v=1", "A&B=C") == "ws://h/ocpp?cp=A%26B%3DC&v=1"
    assert charger_url("ws://h/ws/{id}/", "a:b@c") == "ws://h/ws/a:b@c/"
    assert charger_url("ws://h/ws/", "é") == "ws://h/ws/%C3%A9"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://h/ocpp", "ws:// or wss://"),
        ("ws://h/ocpp/{cp}", "{cp}"),
        ("ws://h/ocpp/{id", "not a valid URL template"),
    ],
)
def test_bad_urls_are_refused_with_the_fix(url: str, fragment: str) -> None:
    """A wrong scheme or placeholder is an error that names the fix, in the scenario and on the command line."""
    problem = csms_url_problem(url)
    assert problem is not None
    assert fragment in problem
    with pytest.raises(ValueError, match="charger id goes|wss"):
        OcppManager(kind="ocpp", csms=url)


def test_cli_refuses_a_bad_template_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """`chargetwin chargers --csms` with an unknown placeholder: exit 2, one line naming --csms and {id}."""
    rc = main(["chargers", "--count", "1", "--csms", "ws://127.0.0.1:9/ocpp/{station}"])
    err = capsys.readouterr()
    assert rc == 2
    assert "--csms" in err.err + err.out
    assert "{id}" in err.err + err.out
