"""Typed identifiers: plain strings at runtime, distinct types for the checker."""

from typing import NewType

__all__ = ["ChargerId", "EvseId", "SessionId", "SiteId"]

SiteId = NewType("SiteId", str)
ChargerId = NewType("ChargerId", str)
EvseId = NewType("EvseId", str)
SessionId = NewType("SessionId", int)
