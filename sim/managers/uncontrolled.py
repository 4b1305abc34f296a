"""The `uncontrolled` manager: it sends nothing, so each connector charges at its maximum."""

from collections.abc import Sequence

from sim.managers.base import Command, Event, NetworkView

__all__ = ["Uncontrolled"]


class Uncontrolled:
    """Charge every EV as fast as the EV and the connector allow."""

    def handle(self, event: Event, network: NetworkView) -> Sequence[Command]:
        """Send no command."""
        return ()
