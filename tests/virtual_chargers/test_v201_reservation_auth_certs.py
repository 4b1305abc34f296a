"""OCPP 2.0.1 reservations (H), local authorization list (D) and certificate management / ISO 15118 (A, M).

Against a raw-frame CSMS (`conftest.RawCsms`), a use case per test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from virtual_chargers.clock import ocpp_time
from virtual_chargers.testing import ChargerSet

SPEED = 600.0
_uid = iter(range(1, 10_000))


async def call(csms: Any, action: str, payload: dict[str, Any]) -> Any:
    """Send a CSMS request as a raw frame; return the answer's payload (or the whole CallError)."""
    uid = f"c{next(_uid)}"
    answer = await csms.send("/CS1", json.dumps([2, uid, action, payload]), reply_id=uid)
    return answer[2] if answer[0] == 3 else answer


def statuses(csms: Any, evse_id: int) -> list[str]:
    return [p["connectorStatus"] for p in csms.calls("StatusNotification") if p["evseId"] == evse_id]


async def station(fleet: ChargerSet, **kwargs: Any) -> Any:
    cp = await fleet.add("CS1", ocpp="2.0.1", connectors=2, **kwargs)
    await fleet.wait_booted(cp)
    return cp


def expiry(cp: Any, after_s: float) -> str:
    return ocpp_time(cp.clock.now() + dt.timedelta(seconds=after_s))


# ---------------------------------------------------------------------------------------------- H reservation


def test_h01_reserved_evse_serves_only_its_token_and_the_transaction_names_the_reservation(
    arun: Any, raw_csms: Any, tmp_path: Path
) -> None:
    """H01: Reserved status; another token is refused there; the reserved token's TransactionEvent has reservationId."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet)
            token = {"idToken": "RES-1", "type": "ISO14443"}
            res = await call(
                csms, "ReserveNow", {"id": 7, "expiryDateTime": expiry(cp, 3600), "idToken": token, "evseId": 1}
            )
            assert res == {"status": "Accepted"}
            await csms.wait_until(lambda: statuses(csms, 1)[-1:] == ["Reserved"])
            again = await call(
                csms, "ReserveNow", {"id": 8, "expiryDateTime": expiry(cp, 3600), "idToken": token, "evseId": 1}
            )
            assert again == {"status": "Occupied"}  # another reservation on the same EVSE
            await cp.plug_in(1, id_tag="SOMEONE-ELSE")
            await asyncio.sleep(0.2)
            assert not [p for p in csms.calls("TransactionEvent") if "idToken" in p]
            assert csms.calls("Authorize") == []  # refused at the station, the CSMS is not asked
            await cp.unplug(1)
            await cp.plug_in(1, id_tag="RES-1")
            await csms.wait_until(lambda: any("idToken" in p for p in csms.calls("TransactionEvent")))
            event = next(p for p in csms.calls("TransactionEvent") if "idToken" in p)
            assert event["reservationId"] == 7
            assert event["idToken"]["idToken"] == "RES-1"

    arun(scenario())


def test_h01_reservation_expires_with_a_status_update(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """At expiryDateTime the EVSE is Available again and ReservationStatusUpdate says Expired."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet)
            token = {"idToken": "RES-2", "type": "ISO14443"}
            res = await call(
                csms, "ReserveNow", {"id": 3, "expiryDateTime": expiry(cp, 120), "idToken": token, "evseId": 2}
            )
            assert res["status"] == "Accepted"
            await csms.wait_until(lambda: bool(csms.calls("ReservationStatusUpdate")), 10)
            assert csms.calls("ReservationStatusUpdate") == [{"reservationId": 3, "reservationUpdateStatus": "Expired"}]
            await csms.wait_until(lambda: statuses(csms, 2)[-2:] == ["Reserved", "Available"])

    arun(scenario())


def test_h02_cancel_and_the_answers_of_reserve_now(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """H02 cancel (Accepted, then Rejected for an unknown id); non-EVSE-specific, Occupied, Unknown EVSE."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet)
            token = {"idToken": "RES-3", "type": "ISO14443"}
            anywhere = await call(csms, "ReserveNow", {"id": 1, "expiryDateTime": expiry(cp, 3600), "idToken": token})
            assert anywhere == {"status": "Accepted"}
            await csms.wait_until(lambda: statuses(csms, 1)[-1:] == ["Reserved"])  # the first Available EVSE
            assert await call(csms, "CancelReservation", {"reservationId": 1}) == {"status": "Accepted"}
            await csms.wait_until(lambda: statuses(csms, 1)[-1:] == ["Available"])
            assert await call(csms, "CancelReservation", {"reservationId": 1}) == {"status": "Rejected"}
            await cp.plug_in(2, id_tag="DRIVER")
            busy = await call(
                csms, "ReserveNow", {"id": 2, "expiryDateTime": expiry(cp, 3600), "idToken": token, "evseId": 2}
            )
            assert busy == {"status": "Occupied"}
            nowhere = await call(
                csms, "ReserveNow", {"id": 4, "expiryDateTime": expiry(cp, 3600), "idToken": token, "evseId": 9}
            )
            assert nowhere == {"status": "Rejected"}

    arun(scenario())


def test_h_reservations_disabled_are_rejected(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """ReservationCtrlr.Enabled false: every ReserveNow is Rejected."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet, variables={"ReservationCtrlr.Enabled": "false"})
            token = {"idToken": "RES-4", "type": "ISO14443"}
            res = await call(
                csms, "ReserveNow", {"id": 1, "expiryDateTime": expiry(cp, 60), "idToken": token, "evseId": 1}
            )
            assert res == {"status": "Rejected"}

    arun(scenario())


# ---------------------------------------------------------------------------------------------- D local list


def _entry(token: str, status: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"idToken": {"idToken": token, "type": "ISO14443"}}
    if status is not None:
        entry["idTokenInfo"] = {"status": status}
    return entry


def test_d01_d02_d03_full_and_differential_updates_and_the_version(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """Full replaces, Differential adds/removes, an old version is a VersionMismatch, GetLocalListVersion tells."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet)
            assert await call(csms, "GetLocalListVersion", {}) == {"versionNumber": 0}
            full = {
                "versionNumber": 1,
                "updateType": "Full",
                "localAuthorizationList": [_entry("A", "Accepted"), _entry("B", "Blocked")],
            }
            assert await call(csms, "SendLocalList", full) == {"status": "Accepted"}
            assert set(cp.local_list) == {("A", "ISO14443"), ("B", "ISO14443")}
            stale = {
                "versionNumber": 1,
                "updateType": "Differential",
                "localAuthorizationList": [_entry("C", "Accepted")],
            }
            assert await call(csms, "SendLocalList", stale) == {"status": "VersionMismatch"}
            diff = {
                "versionNumber": 2,
                "updateType": "Differential",
                "localAuthorizationList": [_entry("B", None), _entry("C", "Accepted")],
            }
            assert await call(csms, "SendLocalList", diff) == {"status": "Accepted"}
            assert set(cp.local_list) == {("A", "ISO14443"), ("C", "ISO14443")}
            assert await call(csms, "GetLocalListVersion", {}) == {"versionNumber": 2}
            assert cp.dm.value("LocalAuthListCtrlr", "Entries") == "2"
            empty = {"versionNumber": 3, "updateType": "Full"}
            assert await call(csms, "SendLocalList", empty) == {"status": "Accepted"}
            assert cp.local_list == {}

    arun(scenario())


def test_c13_local_list_authorizes_without_the_csms_and_decides_offline(
    arun: Any, raw_csms: Any, tmp_path: Path
) -> None:
    """LocalPreAuthorize: a listed Accepted token starts charging with no Authorize; offline, Blocked is refused."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet, variables={"AuthCtrlr.LocalPreAuthorize": "true"})
            full = {
                "versionNumber": 1,
                "updateType": "Full",
                "localAuthorizationList": [_entry("A", "Accepted"), _entry("B", "Blocked")],
            }
            assert await call(csms, "SendLocalList", full) == {"status": "Accepted"}
            await cp.plug_in(1, id_tag="A")
            await csms.wait_until(lambda: any("idToken" in p for p in csms.calls("TransactionEvent")))
            assert csms.calls("Authorize") == []
            token_b = {"idToken": "B", "type": "ISO14443"}
            assert cp.local_decision(token_b, online=False) is False
            assert cp.local_decision({"idToken": "A", "type": "ISO14443"}, online=False) is True
            assert cp.local_decision({"idToken": "Z", "type": "ISO14443"}, online=False) is None  # not listed
            assert cp.local_decision(token_b, online=True) is None  # online, a non-Accepted entry asks the CSMS

    arun(scenario())


def test_d_local_list_disabled_fails_updates(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """LocalAuthListCtrlr.Enabled false: SendLocalList Failed, version 0."""

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            await station(fleet, variables={"LocalAuthListCtrlr.Enabled": "false"})
            full = {"versionNumber": 1, "updateType": "Full", "localAuthorizationList": [_entry("A", "Accepted")]}
            assert await call(csms, "SendLocalList", full) == {"status": "Failed"}
            assert await call(csms, "GetLocalListVersion", {}) == {"versionNumber": 0}

    arun(scenario())


# ---------------------------------------------------------------------------------------------- certificates


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _ocsp_ids(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """RFC 6960 CertID of ``cert`` as `cryptography`'s OCSP builder computes it (SHA256)."""
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return {
        "issuerNameHash": req.issuer_name_hash.hex(),
        "issuerKeyHash": req.issuer_key_hash.hex(),
        "serialNumber": format(req.serial_number, "x"),
    }


def test_m03_m04_m05_install_list_and_delete_certificates(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """Install a root (hash data as RFC 6960 defines it), list it by type, delete it; garbage is Rejected."""
    root, _ = _ca("V2G Root")

    async def scenario() -> None:
        async with raw_csms() as csms, ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet:
            cp = await station(fleet)
            assert await call(csms, "GetInstalledCertificateIds", {}) == {"status": "NotFound"}
            bad = await call(
                csms, "InstallCertificate", {"certificateType": "V2GRootCertificate", "certificate": "nope"}
            )
            assert bad == {"status": "Rejected"}
            ok = await call(
                csms, "InstallCertificate", {"certificateType": "V2GRootCertificate", "certificate": _pem(root)}
            )
            assert ok == {"status": "Accepted"}
            assert cp.dm.value("SecurityCtrlr", "CertificateEntries") == "1"
            listed = await call(csms, "GetInstalledCertificateIds", {"certificateType": ["V2GRootCertificate"]})
            assert listed["status"] == "Accepted"
            (entry,) = listed["certificateHashDataChain"]
            assert entry["certificateType"] == "V2GRootCertificate"
            assert entry["certificateHashData"] == {"hashAlgorithm": "SHA256", **_ocsp_ids(root, root)}
            other = await call(csms, "GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]})
            assert other == {"status": "NotFound"}
            hash_data = entry["certificateHashData"]
            assert await call(csms, "DeleteCertificate", {"certificateHashData": hash_data}) == {"status": "Accepted"}
            assert await call(csms, "DeleteCertificate", {"certificateHashData": hash_data}) == {"status": "NotFound"}
            assert cp.dm.value("SecurityCtrlr", "CertificateEntries") == "0"

    arun(scenario())


def test_a02_sign_certificate_then_certificate_signed_installs_only_a_cert_for_our_key(
    arun: Any, raw_csms: Any, tmp_path: Path
) -> None:
    """SignCertificate carries a CSR for the station; CertificateSigned of it is Accepted, of another key Rejected."""
    ca, ca_key = _ca("CSMS CA")

    def issue(public_key: Any, name: str) -> x509.Certificate:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(ca_key, hashes.SHA256())
        )

    async def scenario() -> None:
        async with (
            raw_csms({"SignCertificate": lambda _: {"status": "Accepted"}}) as csms,
            ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet,
        ):
            cp = await station(fleet)
            assert await cp.sign_certificate() == "Accepted"
            (req,) = csms.calls("SignCertificate")
            assert req["certificateType"] == "ChargingStationCertificate"
            csr = x509.load_pem_x509_csr(req["csr"].encode("ascii"))
            assert csr.is_signature_valid
            assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CS1"
            stranger = issue(ec.generate_private_key(ec.SECP256R1()).public_key(), "CS1")
            wrong = await call(csms, "CertificateSigned", {"certificateChain": _pem(stranger) + _pem(ca)})
            assert wrong == {"status": "Rejected"}
            signed = issue(csr.public_key(), "CS1")
            right = await call(csms, "CertificateSigned", {"certificateChain": _pem(signed) + _pem(ca)})
            assert right == {"status": "Accepted"}
            (installed,) = cp.certificates
            assert installed.certificate_type == "ChargingStationCertificate"
            assert installed.hash_data == {"hashAlgorithm": "SHA256", **_ocsp_ids(signed, ca)}

    arun(scenario())


@pytest.mark.parametrize(
    ("requested", "certificate_type"),
    [("SignChargingStationCertificate", "ChargingStationCertificate"), ("SignV2GCertificate", "V2GCertificate")],
)
def test_a03_m02_trigger_message_asks_for_a_signed_certificate(
    arun: Any, raw_csms: Any, tmp_path: Path, requested: str, certificate_type: str
) -> None:
    """TriggerMessage Sign...Certificate: Accepted, then a SignCertificate of that type with a valid CSR."""

    async def scenario() -> Any:
        async with (
            raw_csms({"SignCertificate": lambda _: {"status": "Accepted"}}) as csms,
            ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet,
        ):
            await station(fleet)
            assert await call(csms, "TriggerMessage", {"requestedMessage": requested}) == {"status": "Accepted"}
            await csms.wait_until(lambda: bool(csms.calls("SignCertificate")))
            return csms.calls("SignCertificate")

    (req,) = arun(scenario())
    assert req["certificateType"] == certificate_type
    assert x509.load_pem_x509_csr(req["csr"].encode("ascii")).is_signature_valid


def test_m01_get_15118_ev_certificate_forwards_the_exi_both_ways(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """The EV's EXI request reaches the CSMS as sent; its EXI answer comes back to the caller."""
    answer = {"status": "Accepted", "exiResponse": "RVhJLXJlc3BvbnNl"}

    async def scenario() -> Any:
        async with (
            raw_csms({"Get15118EVCertificate": lambda _: answer}) as csms,
            ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet,
        ):
            cp = await station(fleet)
            res = await cp.get_15118_ev_certificate("RVhJLXJlcXVlc3Q=")
            return res, csms.calls("Get15118EVCertificate")

    res, sent = arun(scenario())
    assert res.status == "Accepted"
    assert res.exi_response == answer["exiResponse"]
    assert sent == [
        {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "RVhJLXJlcXVlc3Q="}
    ]


def test_m06_get_certificate_status_sends_the_rfc6960_cert_id(arun: Any, raw_csms: Any, tmp_path: Path) -> None:
    """The OCSP request data identifies the certificate exactly as an RFC 6960 OCSP request would."""
    ca, ca_key = _ca("MO Sub-CA")
    answer = {"status": "Accepted", "ocspResult": "T0NTUA=="}

    async def scenario() -> Any:
        async with (
            raw_csms({"GetCertificateStatus": lambda _: answer}) as csms,
            ChargerSet(csms.url, speed=SPEED, state_dir=tmp_path) as fleet,
        ):
            cp = await station(fleet)
            res = await cp.get_certificate_status(ca, ca, "http://ocsp.example")
            return res, csms.calls("GetCertificateStatus")

    res, sent = arun(scenario())
    assert res.status == "Accepted"
    (req,) = sent
    assert req["ocspRequestData"] == {
        "hashAlgorithm": "SHA256",
        **_ocsp_ids(ca, ca),
        "responderURL": "http://ocsp.example",
    }


@pytest.mark.parametrize("action", ["ReserveNow", "SendLocalList", "InstallCertificate", "CertificateSigned"])
def test_blocks_are_no_longer_answered_not_supported(action: str) -> None:
    """Each message has a handler on the 2.0.1 station."""
    from virtual_chargers.v201 import V201Charger  # type: ignore[attr-defined]

    handlers = {getattr(getattr(V201Charger, n), "_on_action", None) for n in dir(V201Charger)}
    assert action in handlers
