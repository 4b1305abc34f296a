"""OCPP 2.0.1 functional block D, Local Authorization List: SendLocalList, GetLocalListVersion, and its use.

The list maps idTokens to their idTokenInfo. With LocalAuthListCtrlr.Enabled, a token on the list is
decided by it: offline always (C12), online without asking the CSMS when AuthCtrlr.LocalPreAuthorize is
true and the entry is Accepted (C13). LocalAuthListCtrlr.Entries counts the entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from virtual_chargers.v201.device_model import ComponentKey, VariableKey

if TYPE_CHECKING:
    from virtual_chargers.v201.device_model import DeviceModel

__all__ = ["LocalListMixin"]


def _key(id_token: dict[str, Any]) -> tuple[str, str]:
    return (str(id_token.get("idToken", id_token.get("id_token"))), str(id_token.get("type")))


class LocalListMixin:
    """SendLocalList / GetLocalListVersion handlers and the local list's say in authorization."""

    if TYPE_CHECKING:
        dm: DeviceModel

    local_list: dict[tuple[str, str], dict[str, Any]]  # (idToken, type) → idTokenInfo (wire form)
    local_list_version: int

    def _init_local_list(self) -> None:
        self.local_list = {}
        self.local_list_version = 0

    def _local_list_enabled(self) -> bool:
        return self.dm.bool_value("LocalAuthListCtrlr", "Enabled")

    @on(Action.send_local_list)
    def on_send_local_list(
        self, version_number: int, update_type: str, local_authorization_list: list[dict[str, Any]] | None = None
    ) -> call_result.SendLocalList:
        """D01 (Full: the list becomes this one) and D02 (Differential: add, update, or remove without info)."""
        if not self._local_list_enabled():
            return call_result.SendLocalList(status="Failed")
        entries = local_authorization_list or []
        if update_type == "Differential" and version_number <= self.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        new = {} if update_type == "Full" else dict(self.local_list)
        for entry in entries:
            token = entry["id_token"]
            info = entry.get("id_token_info")
            key = (str(token["id_token"]), str(token["type"]))
            if info is None:
                new.pop(key, None)
            else:
                new[key] = info
        self.local_list = new
        self.local_list_version = version_number
        self.dm.write(ComponentKey("LocalAuthListCtrlr"), VariableKey("Entries"), str(len(new)))
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        """D03: the version of the list (0: none installed, or the list is disabled)."""
        return call_result.GetLocalListVersion(
            version_number=self.local_list_version if self._local_list_enabled() else 0
        )

    def local_decision(self, id_token: dict[str, Any], online: bool) -> bool | None:
        """Whether the local list authorizes ``id_token`` now (None: it has no say, ask the CSMS or fall back)."""
        if not self._local_list_enabled():
            return None
        info = self.local_list.get(_key(id_token))
        if info is None:
            return None
        accepted = info.get("status") == "Accepted"
        if online:
            return True if accepted and self.dm.bool_value("AuthCtrlr", "LocalPreAuthorize") else None
        return accepted if self.dm.bool_value("AuthCtrlr", "LocalAuthorizeOffline") else None
