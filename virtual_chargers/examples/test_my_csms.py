"""Example: test your CSMS with virtual chargers.

    pytest virtual_chargers/examples/test_my_csms.py --csms ws://127.0.0.1:9000
    pytest virtual_chargers/examples/test_my_csms.py          # against the built-in reference CSMS

Copy this file into your own test suite; the ``virtual_charger`` fixture comes with chargetwin.
"""


def test_csms_accepts_boot_and_records_a_charging_session(virtual_charger):
    """The CSMS accepts the boot, authorizes the tag and answers StartTransaction with a transaction id."""
    cp = virtual_charger("CP-EXAMPLE-1", config={"MeterValueSampleInterval": "60"})
    cp.wait_booted(timeout_s=10)
    cp.plug_in(1, id_tag="04A2B3C4")
    start = cp.wait_for("StartTransaction", direction="tx", timeout_s=10)
    assert start["idTag"] == "04A2B3C4"
    cp.wait_for("MeterValues", direction="tx", timeout_s=10)
    cp.unplug(1)
    stop = cp.wait_for("StopTransaction", direction="tx", timeout_s=10)
    assert stop["reason"] == "EVDisconnected"
    assert cp.sent("Authorize") == [{"idTag": "04A2B3C4"}]
