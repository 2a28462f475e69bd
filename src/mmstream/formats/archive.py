"""The raw archive's file format: Avro object container files of consumed Kafka messages,
byte-exact (stream/archive.py writes and reads them; any Avro library reads them too)."""

from __future__ import annotations

from typing import Any

import fastavro

_NULLABLE_BYTES = ["null", "bytes"]
_HEADER = {
    "type": "record",
    "name": "Header",
    "fields": [{"name": "key", "type": "string"}, {"name": "value", "type": _NULLABLE_BYTES}],
}
# Until 2026-12 every message was its own record (files of that time stay readable).
MESSAGE_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "ArchivedMessage",
        "namespace": "mmstream",
        "doc": "One Kafka message as consumed by mmstream, payload and headers byte-exact.",
        "fields": [
            {"name": "topic", "type": "string"},
            {"name": "partition", "type": "int"},
            {"name": "offset", "type": "long"},
            {"name": "timestamp_type", "type": "int", "doc": "0 none, 1 create, 2 append"},
            {"name": "timestamp_ms", "type": "long"},
            {"name": "key", "type": _NULLABLE_BYTES},
            {"name": "value", "type": _NULLABLE_BYTES},
            {"name": "headers", "type": {"type": "array", "items": _HEADER}},
            {"name": "archived_at_ns", "type": "long"},
        ],
    }
)


def _array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


# A record per append of many messages of one topic, as columns: message i is item i of
# every array, and its key and value are the next ``key_size[i]`` / ``value_size[i]`` bytes
# of ``keys`` / ``values`` (-1: null). One record per message cost more than the rest of the
# detector path: fastavro writes a dict and a union lookup per field and ~0.4 us per bytes
# item; arrays of numbers and one blob are written in its C loops (~0.05 us an item).
ARCHIVE_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "ArchivedBatch",
        "namespace": "mmstream",
        "doc": "Kafka messages of one topic as consumed by mmstream, payloads and headers "
        "byte-exact; message i is item i of every array, its key and value the next "
        "key_size[i] and value_size[i] bytes of keys and values (-1: null).",
        "fields": [
            {"name": "topic", "type": "string"},
            {"name": "partition", "type": _array("int")},
            {"name": "offset", "type": _array("long")},
            {"name": "timestamp_type", "type": _array("int"), "doc": "0 none, 1 create, 2 append"},
            {"name": "timestamp_ms", "type": _array("long")},
            {"name": "key_size", "type": _array("long")},
            {"name": "keys", "type": "bytes"},
            {"name": "value_size", "type": _array("long")},
            {"name": "values", "type": "bytes"},
            {"name": "headers", "type": _array(_array(_HEADER))},
            {"name": "archived_at_ns", "type": "long", "doc": "when this record was written"},
        ],
    }
)
