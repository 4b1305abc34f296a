"""Importing our packages and loading the pytest plugin leave the `ocpp` library exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Runs in a fresh interpreter (this test session has long imported everything): imports every `ocpp`
# module, records each module global (its identity, and its value or size where it has one), then imports
# every module of ours and the pytest plugin, and prints what differs. One global may grow:
# ``ocpp.routing.routables``, the list the library's own ``@on``/``@after`` decorators append handler names
# to (using the decorators is how the library is meant to be used); it must keep what it had.
_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    def walk(package):
        mod = importlib.import_module(package)
        names = [package]
        for info in pkgutil.walk_packages(mod.__path__, package + "."):
            names.append(info.name)
        return names

    def snapshot():
        out = {}
        for name in sorted(n for n in sys.modules if n == "ocpp" or n.startswith("ocpp.")):
            for attr, value in sorted(vars(sys.modules[name]).items()):
                if isinstance(value, (bool, int, float, str, type(None))):
                    shape = repr(value)
                elif isinstance(value, (dict, list, set)):
                    shape = f"{type(value).__name__} of {len(value)}"
                else:
                    shape = type(value).__name__
                out[f"{name}.{attr}"] = [id(value), shape]
        return out

    for name in walk("ocpp"):
        importlib.import_module(name)
    before = snapshot()
    before_routables = list(sys.modules["ocpp.routing"].routables)
    for package in ("virtual_chargers", "sim", "reports"):
        for name in walk(package):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:  # a module of an optional extra that is not installed
                if exc.name.split(".")[0] in ("virtual_chargers", "sim", "reports"):
                    raise
    import virtual_chargers.pytest_plugin
    after = snapshot()
    grows = "ocpp.routing.routables"
    routables = sys.modules["ocpp.routing"].routables
    changed = sorted(k for k in before if after.get(k) != before[k] and k != grows)
    if after[grows][0] != before[grows][0] or routables[: len(before_routables)] != before_routables:
        changed.append(grows)
    print(json.dumps({"checked": len(before), "changed": changed}))
    """
)


def test_importing_every_module_of_ours_changes_no_ocpp_global() -> None:
    """No module global of any `ocpp` module is rebound or resized by importing sim, reports or virtual_chargers."""
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["checked"] > 100  # the snapshot saw the library (messages, charge_point, routing, v16, v201…)
    assert result["changed"] == []


def test_a_pytest_session_with_our_plugin_keeps_the_library_default(tmp_path: Path) -> None:
    """A user's own test session that loads our pytest11 plugin still has the library's async validation on."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_users_csms.py").write_text(
        textwrap.dedent(
            """
            import ocpp.messages

            def test_library_default(pytestconfig):
                assert pytestconfig.pluginmanager.has_plugin("virtual_chargers.pytest_plugin")
                assert ocpp.messages.ASYNC_VALIDATION is True
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "virtual_chargers.pytest_plugin", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
