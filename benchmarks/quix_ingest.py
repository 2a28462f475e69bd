"""The peer: a Quix Streams application reading the same topic and doing the work of
mmstream's detector path (mmstream's column decoder, the same validation, the same
EventStore) a message at a time, as a Quix app's per-message callback does; mmstream's
feed validates and stores a consumed batch at once. Run by suite.py with the
peers' Python (its own environment: quixstreams pins its own confluent-kafka); prints one
JSON line with the rate. Start-up objects are frozen out of the garbage collector as in
``mmstream serve``."""

from __future__ import annotations

import gc
import json
import sys
import time
import uuid
from typing import Any

from quixstreams import Application

from mmstream.formats.detector import DetectorCodec
from mmstream.formats.limits import Limits
from mmstream.formats.validate import validate_events
from mmstream.stream.store import EventStore


def main(bootstrap: str, topic_name: str, n: int) -> None:
    store = EventStore(retention_ns=10 * 86400 * 10**9)
    codec, limits = DetectorCodec({}), Limits()
    detector = topic_name.split(".")[1]
    app = Application(broker_address=bootstrap, consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
                      auto_offset_reset="earliest")  # fmt: skip
    topic = app.topic(topic_name, value_deserializer="bytes")
    sdf = app.dataframe(topic)
    state = {"got": 0, "first": 0, "t0": 0.0, "cpu0": 0.0, "offset": 0}

    def ingest(value: bytes, key: Any, timestamp_ms: int, headers: Any) -> None:
        events = codec.decode_columns(value, detector)
        validate_events(events, detector, timestamp_ms * 1_000_000, limits)
        store.add_events(events, 0, state["offset"])
        state["offset"] += 1
        if state["got"] == 0:
            state["t0"], state["cpu0"] = time.perf_counter(), time.process_time()
            state["first"] = events.size
        state["got"] += events.size
        if state["got"] >= n:
            state["t1"], state["cpu1"] = time.perf_counter(), time.process_time()
            app.stop()

    sdf.update(ingest, metadata=True)
    gc.collect()
    gc.freeze()
    app.run()
    events = state["got"] - state["first"]
    print(json.dumps({"events": events, "wall_s": state["t1"] - state["t0"],
                      "cpu_s": state["cpu1"] - state["cpu0"]}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
