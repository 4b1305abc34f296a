"""Example: test your CSMS with virtual OCPP 2.0.1 charging stations.

    pytest virtual_chargers/examples/test_my_csms_201.py --csms-ocpp 2.0.1 --csms ws://127.0.0.1:9000
    pytest virtual_chargers/examples/test_my_csms_201.py --csms-ocpp 2.0.1   # against the reference CSMS

Copy this file into your own test suite; the ``virtual_charger`` fixture comes with chargetwin.
"""


def test_csms_accepts_boot_and_records_a_charging_session(virtual_charger):
    """The CSMS accepts the boot, authorizes the token and acknowledges every TransactionEvent in order."""
    cp = virtual_charger("CS-EXAMPLE-1", variables={"SampledDataCtrlr.TxUpdatedInterval": "60"})
    cp.wait_booted(timeout_s=10)
    cp.plug_in(1, id_tag="04A2B3C4")
    started = cp.wait_for("TransactionEvent", direction="tx", timeout_s=10)
    assert started["eventType"] == "Started"
    assert started["idToken"] == {"idToken": "04A2B3C4", "type": "ISO14443"}
    cp.wait_for("TransactionEvent", direction="tx", timeout_s=10, after=1)  # a periodic Updated
    n = len(cp.sent("TransactionEvent"))
    cp.unplug(1)
    while (event := cp.wait_for("TransactionEvent", direction="tx", timeout_s=10, after=n))["eventType"] != "Ended":
        n += 1  # periodic Updated events queued before the EV left come first
    assert event["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    events = cp.sent("TransactionEvent")
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert cp.sent("Authorize") == [{"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}]
