"""OCPP 2.0.1 functional block C, Authorization: Authorize online, the local list and cache, offline rules."""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v201 import call

from virtual_chargers.base import CsmsCallError, OfflineError
from virtual_chargers.v201.availability import AvailabilityMixin

__all__ = ["AuthorizationMixin"]


class AuthorizationMixin(AvailabilityMixin):
    """Functional block C, Authorization of a `V201Charger`."""

    async def authorize(
        self, id_token: dict[str, Any], certificate_hash_data: list[dict[str, str]] | None = None
    ) -> bool:
        """Ask the CSMS when online; offline, AuthCtrlr.OfflineTxForUnknownIdEnabled decides.

        ``certificate_hash_data``: the OCSP data of an ISO 15118 contract certificate (Plug & Charge, C07),
        sent as ``iso15118CertificateHashData`` beside the eMAID token.
        """
        if not self.dm.bool_value("AuthCtrlr", "Enabled"):
            return True
        local = self.local_decision(id_token, online=self.accepted)
        if local is not None:
            return local
        if self.accepted:
            try:
                res = await self.request(
                    call.Authorize(id_token=id_token, iso15118_certificate_hash_data=certificate_hash_data)
                )
            except (TimeoutError, OfflineError, CsmsCallError, OCPPError):
                return self._offline_authorize()
            return bool(res.id_token_info["status"] == "Accepted")
        return self._offline_authorize()

    def _offline_authorize(self) -> bool:
        return self.dm.bool_value("AuthCtrlr", "LocalAuthorizeOffline") and self.dm.bool_value(
            "AuthCtrlr", "OfflineTxForUnknownIdEnabled"
        )
