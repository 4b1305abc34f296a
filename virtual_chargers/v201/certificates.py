"""OCPP 2.0.1 certificate management (blocks A and M) and the ISO 15118 Plug & Charge messages.

CSMS → station: InstallCertificate (M05), GetInstalledCertificateIds (M03), DeleteCertificate (M04) and
CertificateSigned (A02/A03, M02). Station → CSMS: SignCertificate (a CSR with a key pair made here, A02
and M02), Get15118EVCertificate (M01) and GetCertificateStatus (M06). Certificates are parsed with
`cryptography`; a certificate that does not parse, or a signed one whose key is not the one the station
asked to sign, is Rejected. Installed certificates are identified by their certificateHashData (SHA256
over the issuer's name and public key, and the serial number), as the specification defines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from virtual_chargers.v201.device_model import ComponentKey, VariableKey

if TYPE_CHECKING:
    from virtual_chargers.base import ChargerSpec
    from virtual_chargers.v201.device_model import DeviceModel

__all__ = ["CertificatesMixin", "ContractIssuer", "InstalledCertificate", "hash_data"]

_PEM_END = "-----END CERTIFICATE-----"


def _pem_chain(text: str) -> list[x509.Certificate]:
    """The certificates of a PEM chain, leaf first; ValueError if there is none or one does not parse."""
    parts = [p + _PEM_END for p in text.split(_PEM_END) if "-----BEGIN CERTIFICATE-----" in p]
    if not parts:
        raise ValueError("no PEM certificate")
    return [x509.load_pem_x509_certificate(p.strip().encode("ascii")) for p in parts]


def hash_data(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> dict[str, str]:
    """The certificateHashData of ``cert`` (SHA256): issuer name hash, issuer key hash, serial number in hex.

    The issuer's key is ``issuer``'s public key, or ``cert``'s own for a self-signed root.
    """
    key_source = issuer if issuer is not None else cert
    key_bytes = key_source.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_key_bits = _subject_public_key_bits(key_bytes)
    name_hash = hashes.Hash(hashes.SHA256())
    name_hash.update(cert.issuer.public_bytes())
    key_hash = hashes.Hash(hashes.SHA256())
    key_hash.update(public_key_bits)
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": name_hash.finalize().hex(),
        "issuerKeyHash": key_hash.finalize().hex(),
        "serialNumber": format(cert.serial_number, "x"),
    }


class ContractIssuer:
    """The eMSP sub-CA of simulated Plug & Charge contracts: eMAIDs and their certificates' OCSP data.

    A contract certificate is identified by its issuer (name and key hashes) and its serial number, so
    the OCSP data of contract ``n`` is the issuer's with serial ``n``; no certificate is minted per
    session. The key is derived from ``seed``: the same run sends the same data.
    """

    _SECP256R1_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

    def __init__(self, seed: int = 0, responder_url: str = "http://ocsp.chargetwin.invalid") -> None:
        """An issuer whose key follows from ``seed``; ``responder_url`` goes into every OCSP request."""
        secret = int.from_bytes(hashlib.sha256(f"contract-ca:{seed}".encode()).digest(), "big")
        key = ec.derive_private_key(secret % (self._SECP256R1_ORDER - 1) + 1, ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chargetwin contract sub-CA")])
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.issuer_name_hash = hashlib.sha256(name.public_bytes()).hexdigest()
        self.issuer_key_hash = hashlib.sha256(_subject_public_key_bits(spki)).hexdigest()
        self.responder_url = responder_url

    @staticmethod
    def emaid(n: int) -> str:
        """The eMAID of contract ``n`` (ISO 15118-2 Annex H without separators: country, provider, C, id)."""
        return f"ZZCTWC{n:09d}"

    def hash_data(self, n: int) -> list[dict[str, str]]:
        """``iso15118CertificateHashData`` of contract ``n``'s certificate (OCSPRequestDataType, SHA256)."""
        return [
            {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": self.issuer_name_hash,
                "issuerKeyHash": self.issuer_key_hash,
                "serialNumber": format(n, "x"),
                "responderURL": self.responder_url,
            }
        ]


def _subject_public_key_bits(spki_der: bytes) -> bytes:
    """The BIT STRING contents of a DER SubjectPublicKeyInfo (what RFC 6960's issuerKeyHash hashes)."""

    # SEQUENCE { SEQUENCE algorithm, BIT STRING key }: skip the outer header and the algorithm, then the
    # BIT STRING's header and its unused-bits byte.
    def header(data: bytes, i: int) -> tuple[int, int]:
        length = data[i + 1]
        if length < 0x80:
            return i + 2, length
        n = length & 0x7F
        return i + 2 + n, int.from_bytes(data[i + 2 : i + 2 + n], "big")

    start, _ = header(spki_der, 0)
    alg_start, alg_len = header(spki_der, start)
    bits_start, bits_len = header(spki_der, alg_start + alg_len)
    return spki_der[bits_start + 1 : bits_start + bits_len]


@dataclass(frozen=True)
class InstalledCertificate:
    """A certificate the station holds: its use (certificateType) and PEM text."""

    certificate_type: str
    pem: str
    hash_data: dict[str, str]


class CertificatesMixin:
    """Certificate handlers of a `V201Charger` and its requests for ISO 15118 Plug & Charge."""

    if TYPE_CHECKING:
        dm: DeviceModel
        spec: ChargerSpec
        request: Callable[[Any], Awaitable[Any]]

    certificates: list[InstalledCertificate]
    _csr_keys: dict[str, ec.EllipticCurvePrivateKey]  # certificateType asked to sign → its private key

    def _init_certificates(self) -> None:
        self.certificates = []
        self._csr_keys = {}

    def _count_certificates(self) -> None:
        self.dm.write(ComponentKey("SecurityCtrlr"), VariableKey("CertificateEntries"), str(len(self.certificates)))

    @on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str) -> call_result.InstallCertificate:
        """M05: install a root certificate; Rejected when it does not parse."""
        try:
            chain = _pem_chain(certificate)
        except ValueError:
            return call_result.InstallCertificate(status="Rejected")
        self.certificates.append(InstalledCertificate(certificate_type, certificate, hash_data(chain[0])))
        self._count_certificates()
        return call_result.InstallCertificate(status="Accepted")

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(
        self, certificate_type: list[str] | None = None
    ) -> call_result.GetInstalledCertificateIds:
        """M03: the hash data of the installed certificates of the asked types (all without a filter)."""
        found = [c for c in self.certificates if not certificate_type or c.certificate_type in certificate_type]
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        chains = [{"certificateType": c.certificate_type, "certificateHashData": c.hash_data} for c in found]
        return call_result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data_chain=chains)

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any]) -> call_result.DeleteCertificate:
        """M04: delete the certificate with this hash data (NotFound if none)."""
        wanted = {
            "issuerNameHash": str(certificate_hash_data["issuer_name_hash"]).lower(),
            "issuerKeyHash": str(certificate_hash_data["issuer_key_hash"]).lower(),
            "serialNumber": str(certificate_hash_data["serial_number"]).lower().lstrip("0") or "0",
        }
        for c in self.certificates:
            have = {k: c.hash_data[k].lower() for k in wanted}
            have["serialNumber"] = have["serialNumber"].lstrip("0") or "0"
            if have == wanted:
                self.certificates.remove(c)
                self._count_certificates()
                return call_result.DeleteCertificate(status="Accepted")
        return call_result.DeleteCertificate(status="NotFound")

    async def sign_certificate(self, certificate_type: str = "ChargingStationCertificate") -> str:
        """A02/M02: make a key pair and send its CSR in SignCertificate; returns the CSMS's status."""
        key = ec.generate_private_key(ec.SECP256R1())
        org = self.dm.value("SecurityCtrlr", "OrganizationName") or self.spec.vendor
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, self.spec.id), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        self._csr_keys[certificate_type] = key
        pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        res = await self.request(call.SignCertificate(csr=pem, certificate_type=certificate_type))
        return str(res.status)

    @on(Action.certificate_signed)
    def on_certificate_signed(
        self, certificate_chain: str, certificate_type: str | None = None
    ) -> call_result.CertificateSigned:
        """A02/M02: install the signed certificate if it parses and carries the key of our last CSR."""
        kind = certificate_type or "ChargingStationCertificate"
        key = self._csr_keys.get(kind)
        try:
            chain = _pem_chain(certificate_chain)
        except ValueError:
            return call_result.CertificateSigned(status="Rejected")
        ours = key is not None and chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if not ours:
            return call_result.CertificateSigned(status="Rejected")
        del self._csr_keys[kind]
        issuer = chain[1] if len(chain) > 1 else None
        self.certificates = [c for c in self.certificates if c.certificate_type != kind]
        self.certificates.append(InstalledCertificate(kind, certificate_chain, hash_data(chain[0], issuer)))
        self._count_certificates()
        return call_result.CertificateSigned(status="Accepted")

    async def get_15118_ev_certificate(self, exi_request: str, action: str = "Install") -> Any:
        """M01: forward an EV's ISO 15118 certificate request (base64 EXI) to the CSMS; returns its answer."""
        return await self.request(
            call.Get15118EVCertificate(
                iso15118_schema_version="urn:iso:15118:2:2013:MsgDef", action=action, exi_request=exi_request
            )
        )

    async def get_certificate_status(self, cert: x509.Certificate, issuer: x509.Certificate, responder_url: str) -> Any:
        """M06: ask the CSMS for the OCSP status of ``cert`` (issued by ``issuer``); returns its answer."""
        data = hash_data(cert, issuer)
        ocsp = {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": data["issuerNameHash"],
            "issuerKeyHash": data["issuerKeyHash"],
            "serialNumber": data["serialNumber"],
            "responderURL": responder_url,
        }
        return await self.request(call.GetCertificateStatus(ocsp_request_data=ocsp))
