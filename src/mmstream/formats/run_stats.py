"""Run statistics messages (``schemas/run_stats.avsc``): an Avro object container file with
the writer schema embedded, as results are, so any Avro reader reads them as they are."""

from __future__ import annotations

from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.avro import load_schema, read_container, write_container

RUN_STATS_SCHEMA = "run_stats.avsc"


def encode_run_stats(record: dict[str, Any]) -> bytes:
    return write_container(load_schema(RUN_STATS_SCHEMA), [record])


def decode_run_stats(data: bytes) -> dict[str, Any]:
    schema, records = read_container(data)
    if schema.get("name") not in ("mmstream.RunStats", "RunStats") or len(records) != 1:
        raise DecodeError("not an mmstream run-statistics message")
    return records[0]
