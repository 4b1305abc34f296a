"""chargetwin simulation: scenario → event-driven run → results."""
