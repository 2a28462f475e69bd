"""A live detector in a process of its own: ``rate`` events per second, in messages of 100
(``detector_batch.avsc``), and a heartbeat every second, until stopped (SIGTERM).

    python -m benchmarks.feed_live BOOTSTRAP EVENTS_TOPIC STATUS_TOPIC DETECTOR RATE

Prints how many events it sent when it stops. Used by the latency benchmark to measure
alert-to-result latency while detector data keeps arriving. It shares the machine with the
service it loads, so it is kept lean: records written straight from numpy's draws (no
event objects) and a wake-up every 10 ms (made of DetectorEvent objects and woken every 2 ms,
it took 60 % of a core at 20,000 events/s; a real detector sends from its own machine).
"""

from __future__ import annotations

import signal
import sys
import time

import numpy as np
from confluent_kafka import Producer

from mmstream.feeders import produce_heartbeat
from mmstream.formats.avro import encode_single, load_schema
from mmstream.formats.detector import BATCH_SCHEMA
from mmstream.times import now_ns

BATCH = 100


def main() -> None:
    bootstrap, topic, status, detector, rate = sys.argv[1:6]
    per_s = float(rate)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    stop = False

    def halt(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, halt)
    schema = load_schema(BATCH_SCHEMA)
    rng = np.random.default_rng(11)
    sent, seq, t0, beat = 0, 10**9, time.monotonic(), 0.0
    while not stop:
        due = int((time.monotonic() - t0) * per_s)
        while sent + BATCH <= due:
            now = now_ns()
            ra, dec = rng.uniform(0, 360, BATCH).tolist(), rng.uniform(-90, 90, BATCH).tolist()
            events = [{"event_id": f"{detector}-live-{seq + i}", "detector": detector,
                       "seq": seq + i, "time_ns": now - i, "ra_deg": ra[i], "dec_deg": dec[i],
                       "sigma_deg": 1.0, "energy_gev": None, "derived_from": [], "source": ""}
                      for i in range(BATCH - 1, -1, -1)]  # in time order  # fmt: skip
            value = encode_single(schema, {"detector": detector, "events": events})
            producer.produce(topic, value, key=detector.encode())
            seq, sent = seq + BATCH, sent + BATCH
        if time.monotonic() - beat >= 1.0:
            produce_heartbeat(producer, status, detector, now_ns())
            beat = time.monotonic()
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(30)
    print(sent, flush=True)


if __name__ == "__main__":
    main()
