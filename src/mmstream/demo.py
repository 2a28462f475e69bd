"""The end-to-end demo: broker, service, simulated neutrino stream, a GW alert, its results."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer

from mmstream.analyses.registry import Registry
from mmstream.app import App
from mmstream.config import Settings, load_settings
from mmstream.feeders import (
    Injection,
    background_events,
    igwn_alert,
    produce_context,
    produce_events,
    produce_heartbeats,
    simulated_schema,
    simulated_schema_paths,
    with_fields,
    with_injections,
)
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.messages import headers_of
from mmstream.times import format_utc, now_ns


def run_demo(
    bootstrap: str,
    *,
    timeout: float = 120.0,
    ra: float = 120.0,
    dec: float = -30.0,
    rate_hz: float = 0.02,
    serve: bool = False,
) -> list[dict[str, Any]]:
    """Run the whole chain once on ``bootstrap``; print and return the results for the alert.

    With ``serve``, the service (and its dashboard) keeps running until Ctrl-C or SIGTERM.
    """
    t_start = time.monotonic()
    run = uuid.uuid4().hex[:6]
    settings = load_settings(
        kafka={"bootstrap.servers": bootstrap},
        group_id="mmstream-demo",
        # One instance name for every demo run: with static group membership a new run takes
        # over the last one's alert partitions at once. A name per run would wait for the old
        # member's session to expire (45 s after a broker restart restored it).
        instance="mmstream-demo",
        # the simulated detector sends its own fields and its conditions; a closed shutter
        # is excluded from the livetime
        detector_schemas={"icecube": simulated_schema_paths()},
        context_rules=[{"key": "shutter.3", "equals": "closed", "reason": "shutter 3 closed"}],
    )
    registry = Registry.discover()
    service = App(settings, registry)
    thread = threading.Thread(target=service.run, name="mmstream-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not service.ready.wait(0.2):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start (see the error above)")
    print(f"[demo] service running with {[s.label for s in registry]} on {bootstrap}")
    dashboard = service.http.address if service.http is not None else None

    t_alert = now_ns() - 600 * NS_PER_S
    superevent = f"MS{run}"
    planted = Injection(
        t_alert + int(2.5 * NS_PER_S), ra + 0.4, dec - 0.3, 0.6, event_id=f"icecube-planted-{run}"
    )
    detector = "icecube"
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    end = now_ns()
    events = with_fields(with_injections(
        detector,
        background_events(detector, end - 1200 * NS_PER_S, end, rate_hz, seed=int(run, 16)),
        [planted],
    ), seed=int(run, 16))  # fmt: skip
    produce_events(producer, settings.detector_topic(detector), events, simulated_schema())
    closed = (t_alert - 300 * NS_PER_S, t_alert - 240 * NS_PER_S)
    produce_context(producer, settings.topics().context(detector), detector, [
        (end - 86_400 * NS_PER_S, "calibration", "cal-2026-11"),
        (end - 86_400 * NS_PER_S, "shutter.3", "open"),
        (closed[0], "shutter.3", "closed"), (closed[1], "shutter.3", "open"),
        (t_alert + 200 * NS_PER_S, "calibration", "cal-2026-12"),
    ])  # fmt: skip
    print(f"[demo] sent {detector}'s conditions: shutter 3 closed {format_utc(closed[0])} .. "
          f"{format_utc(closed[1])} (60 s), calibration cal-2026-11 then cal-2026-12 from "
          f"{format_utc(t_alert + 200 * NS_PER_S)}")  # fmt: skip
    produce_heartbeats(
        producer, settings.status_topic(detector), detector, end - 1200 * NS_PER_S, end
    )
    print(
        f"[demo] sent {len(events)} simulated {detector} events over the last 1200 s, "
        f"including {planted.event_id} at {format_utc(planted.time_ns)} "
        f"(ra {planted.ra_deg:.2f}, dec {planted.dec_deg:.2f})"
    )
    # a broken upstream's message first: a dead letter with its reason, and the service goes on
    producer.produce("igwn.gwalert", value=f"not an alert ({run})".encode())
    producer.produce(
        "igwn.gwalert",
        value=igwn_alert(superevent, time_ns=t_alert, ra_deg=ra, dec_deg=dec, sigma_deg=3.0),
    )
    producer.flush(30)
    print(f"[demo] published a malformed message to igwn.gwalert: it goes to "
          f"{settings.deadletter_topic} with its reason (mmstream deadletter list)")  # fmt: skip
    print(
        f"[demo] published GW alert {superevent} (t = {format_utc(t_alert)}, "
        f"sky map centred at ra {ra}, dec {dec}, 3 deg)"
    )
    try:
        results = collect_results(settings, registry, superevent, timeout)
        for value, headers in results:
            print_result(value, headers)
        print(f"[demo] done in {time.monotonic() - t_start:.1f} s")
        if serve and dashboard is not None:
            print(f"[demo] dashboard at {dashboard} (this alert: {dashboard}alert/{superevent});"
                  " jobs, dead letters, livetime and latency at /jobs, /deadletters, /livetime, "
                  "/latency; metrics at /metrics. Ctrl-C stops the service.",
                  flush=True)  # fmt: skip
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            while not stop.wait(0.5) and thread.is_alive():
                pass
        elif serve:
            print("[demo] the dashboard is not served (its port is taken; see the log above)")
    finally:
        service.stop()
        thread.join(30)
    return [decode_result(v) for v, _ in results]


def collect_results(
    settings: Settings, registry: Registry, alert_id: str, timeout: float
) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"demo-listener-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    # the analyses an LVK alert triggers (the supernova search waits for SNEWS or Super-K)
    specs = [s for s in registry if s.sources is None or "LVK" in s.sources]
    consumer.subscribe([settings.result_topic(s.name) for s in specs])
    wanted = len(specs)
    found: list[tuple[bytes, dict[str, bytes]]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < wanted and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            if msg.key() == alert_id.encode():
                found.append((msg.value() or b"", headers_dict(headers_of(msg))))
    finally:
        consumer.close()
    if len(found) < wanted:
        raise RuntimeError(
            f"only {len(found)} of {wanted} results for {alert_id} within {timeout} s"
        )
    return found


def print_result(value: bytes, headers: dict[str, bytes]) -> None:
    record = decode_result(value)
    print()
    print(
        f"=== result {record['result_id']}  {record['analysis']}@{record['analysis_version']}"
        f"  [{record['status']}]"
    )
    print(f"    alert   : {record['alert']['alert_id']} {record['alert']['revision']}")
    print(f"    summary : {record['summary']}")
    for event in record["events"][:5]:
        values = ", ".join(f"{k}={v:.4g}" for k, v in sorted(event["values"].items()))
        print(f"    event   : {event['event_id']}  {values}")
    if len(record["events"]) > 5:
        print(f"    ...       {len(record['events']) - 5} more")
    for ex in record["excluded"]:
        print(f"    excluded: {ex['detector']} {format_utc(ex['start_ns'])} .. "
              f"{format_utc(ex['end_ns'])}: {ex['reason']}")  # fmt: skip
    print("    headers :")
    for key, raw in headers.items():
        shown = str(uuid.UUID(bytes=raw)) if key == "_id" and len(raw) == 16 else raw.decode()
        if key in ("mmstream-inputs", "mmstream-window"):
            shown = json.dumps(json.loads(shown))
        print(f"      {key}: {shown}")
