"""A live detector in a process of its own: ``rate`` events per second, in messages of 100
(``detector_batch.avsc``), and a heartbeat every second, until stopped (SIGTERM).

    python -m benchmarks.feed_live BOOTSTRAP EVENTS_TOPIC STATUS_TOPIC DETECTOR RATE

Prints how many events it sent when it stops. Used by the latency benchmark to measure
alert-to-result latency while detector data keeps arriving.
"""

from __future__ import annotations

import signal
import sys
import time

import numpy as np
from confluent_kafka import Producer

from mmstream.feeders import produce_heartbeat
from mmstream.formats.detector import encode_batch
from mmstream.model import DetectorEvent
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
    rng = np.random.default_rng(11)
    sent, seq, t0, beat = 0, 10**9, time.monotonic(), 0.0
    while not stop:
        due = int((time.monotonic() - t0) * per_s)
        while sent + BATCH <= due:
            now = now_ns()
            events = [DetectorEvent(f"{detector}-live-{seq + i}", detector, seq + i, now - i,
                                    float(rng.uniform(0, 360)), float(rng.uniform(-90, 90)), 1.0)
                      for i in range(BATCH)][::-1]  # fmt: skip
            producer.produce(topic, encode_batch(detector, events), key=detector.encode())
            seq, sent = seq + BATCH, sent + BATCH
        if time.monotonic() - beat >= 1.0:
            produce_heartbeat(producer, status, detector, now_ns())
            beat = time.monotonic()
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(30)
    print(sent, flush=True)


if __name__ == "__main__":
    main()
