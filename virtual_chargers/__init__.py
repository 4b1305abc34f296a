"""Emulated OCPP charge points (1.6J and 2.0.1) for testing a real CSMS, and the bridge to the simulation.

Public API of the version-independent core (OCPP versions build on it; see `virtual_chargers.v16`
and `virtual_chargers.v201`):

- `clock.SimClock(speed, start)`: simulated time ``t_s()``/``now()``, ``await sleep(sim_s)``,
  ``sleep_until(t_s)``, ``to_wall_s``/``to_sim_s``; `clock.ChargerClock`: one charger's view with an
  injectable clock error (``set_error(error_s, drift_ppm)``, ``timestamp()``); `clock.ocpp_time`.
- `meter.Meter`: the EV on a connector (``plug``/``start``/``suspend``/``unplug``,
  ``set_limit_kw``, ``read(t_s) -> MeterReading`` in Wh, W, A, V, %) along `sim.ev.ChargeProfile`;
  `meter.EVSession(model, soc_in_frac, target_soc_frac)`; unit conversions ``amps_to_kw``,
  ``kw_to_amps``, ``kw_to_w``, ``w_to_kw`` (the only place OCPP units meet kW).
- `framelog.FrameLog(clock, path, secrets)`: JSONL frames (``frame(charger, "tx"|"rx", raw)``),
  ``rtt``, ``timeout``, ``violation``; ``summary`` is a mergeable `framelog.Summary`.
- `txqueue.TxStore(path, commit_window_s)` → ``queue(charger) -> TxQueue``: persisted, ordered, bounded
  transaction messages (``put``, ``peek``, ``done``, ``failed_attempt``, ``set_tx_id``/``tx_id``); a writer
  thread commits each window with fsync, and ``peek`` shows a message only once it is on disk.
- `wire`: ``validate(version, message_type_id, action, payload)`` against the official schemas the `ocpp`
  library ships (precompiled, the library's error classes), ``to_wire``/``snake_keys`` (the library's key
  names, cached), ``from_frame``, ``handle_call`` (the library's CALL handling on that fast path).
- `connection.SecurityConfig(profile, password_env, password_file, ca_file, cert_file, key_file)`,
  ``load_password``, ``client_ssl_context``, `connection.Backoff` (seeded jitter), ``connect_charger``.
- `faults.load_faults(path) -> FaultTimeline` (``for_charger(id)``), fault kinds as pydantic models.
- `base.VirtualCharger(spec: ChargerSpec, ctx: ChargerContext)`: ``run()``, ``stop()``, ``request(call)``,
  ``request_wire(action, payload)``, ``share_power()`` (a ``ChargerSpec.shared_power_kw`` cabinet),
  ``enqueue(action, payload, tx_ref)``, ``plug_in``/``unplug``, ``wait_for(action)``, ``sent(action)``,
  ``received(action)``, ``apply_fault``/``schedule_faults``, ``request_reboot(hard)``; subclasses
  implement ``boot``, ``after_boot``, ``send_heartbeat``, ``send_queued``, ``plug_in``, ``unplug``,
  ``sample_meter``, ``on_reboot``, ``on_connector_fault`` and the ``@on`` handlers.
- `fleet`: run many chargers in one process or several (``run_fleet``), from a scenario or a count.
- `csms`: the reference CSMS (``chargetwin csms``). It dispatches by websocket subprotocol:
  ``ocpp1.6`` to `csms.Csms16Handler`, ``ocpp2.0.1`` to ``virtual_chargers.v201.csms.Csms201Handler``
  (imported lazily), constructed as ``Handler(charger_id, connection, records, response_timeout_s=…,
  on_frame=…)`` and served with ``await handler.start()``.
- `pytest_plugin`: the ``--csms`` option and the ``virtual_charger`` fixture (a pytest11 entry point).

Importing this package changes nothing in the `ocpp` library: our own connections validate frames with
`wire` (synchronously, without the library's thread pool), and its settings stay as they are for any other
code in the process, a user's own CSMS tests under the pytest plugin included.
"""
