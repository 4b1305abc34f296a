"""Security profiles 2 and 3 against a TLS CSMS with a CA made in the test (trustme)."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from virtual_chargers.connection import SecurityConfig, SecurityError, client_ssl_context, load_password
from virtual_chargers.csms import Csms
from virtual_chargers.testing import ChargerSet

PASSWORD = "s3cret-Passw0rd-for-CP1"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, require_client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    if require_client_cert:
        ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_profile_2_tls_and_basic_auth_and_the_password_stays_out_of_logs(
    arun: Any, tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Right password boots over wss://; a wrong one is refused (401); neither appears in frames or logs."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("CT_PASSWORD", PASSWORD)
    (tmp_path / "wrong.txt").write_text("not-the-password-at-all\n")
    good = SecurityConfig(profile=2, password_env="CT_PASSWORD", ca_file=ca_file)
    bad = SecurityConfig(profile=2, password_file=tmp_path / "wrong.txt", ca_file=ca_file)
    log_path = tmp_path / "frames.jsonl"

    async def scenario() -> None:
        csms = Csms(ssl_context=_server_context(ca, False), passwords={"CP1": PASSWORD, "CP2": PASSWORD})
        async with csms:
            assert csms.url.startswith("wss://")
            async with ChargerSet(
                csms.url,
                speed=600.0,
                state_dir=tmp_path / "a",
                log_path=log_path,
                security=good,
                password=load_password(good),
                ssl_context=client_ssl_context(good),
            ) as fleet:
                cp = await fleet.add("CP1")
                await fleet.wait_booted(cp)
                handler = await csms.wait_connected("CP1")
                new_key = "rotated-Key-0123456789"
                assert (await handler.change_configuration("AuthorizationKey", new_key)).status == "Accepted"
                await cp.plug_in(1)
                await csms.records16.wait_for(lambda: len(csms.records16.starts) == 1, 10)
            async with ChargerSet(
                csms.url,
                speed=600.0,
                state_dir=tmp_path / "b",
                security=bad,
                password=load_password(bad),
                ssl_context=client_ssl_context(bad),
                backoff_base_s=60,
            ) as fleet:
                cp2 = await fleet.add("CP2")
                with pytest.raises(TimeoutError, match="refused the credentials"):
                    await fleet.wait_booted(cp2, 1.0)
            assert ("CP2", "bad credentials") in csms.refused
            assert "CP2" not in [c for c, _ in csms.records16.boots]

    arun(scenario())
    text = log_path.read_text()
    assert '"BootNotification"' in text
    assert PASSWORD not in text
    assert "rotated-Key-0123456789" not in text
    assert "not-the-password-at-all" not in caplog.text
    assert PASSWORD not in caplog.text
    for line in text.splitlines():
        json.loads(line)


@pytest.mark.slow
def test_profile_3_client_certificate_accepted_and_a_foreign_one_refused(
    arun: Any, tmp_path: Path, ca: trustme.CA
) -> None:
    """A client certificate from the CSMS's CA boots; one from another CA fails the TLS handshake."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ours = ca.issue_cert("CP1")
    ours.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cp1.pem"))
    foreign = trustme.CA().issue_cert("CP2")
    foreign.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cp2.pem"))
    good = SecurityConfig(profile=3, ca_file=ca_file, cert_file=tmp_path / "cp1.pem")
    bad = SecurityConfig(profile=3, ca_file=ca_file, cert_file=tmp_path / "cp2.pem")

    async def scenario() -> None:
        async with Csms(ssl_context=_server_context(ca, True)) as csms:
            async with ChargerSet(
                csms.url, speed=600.0, state_dir=tmp_path / "a", security=good, ssl_context=client_ssl_context(good)
            ) as fleet:
                cp = await fleet.add("CP1")
                await fleet.wait_booted(cp)
            async with ChargerSet(
                csms.url,
                speed=600.0,
                state_dir=tmp_path / "b",
                security=bad,
                ssl_context=client_ssl_context(bad),
                backoff_base_s=60,
            ) as fleet:
                cp2 = await fleet.add("CP2")
                with pytest.raises(TimeoutError, match="not online"):
                    await fleet.wait_booted(cp2, 1.0)
                assert cp2.last_connect_error is not None
            assert [c for c, _ in csms.records16.boots] == ["CP1"]
            await asyncio.sleep(0)

    arun(scenario())


def test_security_settings_fail_with_clear_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile without its password or certificate, or an empty password source, names the fix."""
    with pytest.raises(SecurityError, match="--password-env"):
        SecurityConfig(profile=1)
    with pytest.raises(SecurityError, match="--cert"):
        SecurityConfig(profile=3)
    monkeypatch.delenv("CT_NOPE", raising=False)
    with pytest.raises(SecurityError, match="CT_NOPE is not set"):
        load_password(SecurityConfig(profile=1, password_env="CT_NOPE"))
    (tmp_path / "empty").write_text("")
    with pytest.raises(SecurityError, match="is empty"):
        load_password(SecurityConfig(profile=2, password_file=tmp_path / "empty"))
