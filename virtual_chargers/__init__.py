"""Emulated OCPP charge points (1.6J and 2.0.1) and the bridge to the simulation."""
