"""OCPP 2.0.1: the virtual charging station, its device model, and the 2.0.1 side of the reference CSMS."""
