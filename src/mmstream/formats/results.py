"""Result messages: an Avro object container file with the writer schema embedded.

Self-describing on purpose: an outside observatory reads a result with any Avro library
and nothing from us. :func:`decode_result` is what our own consumers use.
"""

from __future__ import annotations

from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.avro import load_schema, read_container, write_container

RESULT_SCHEMA = "result.avsc"


def encode_result(record: dict[str, Any]) -> bytes:
    return write_container(load_schema(RESULT_SCHEMA), [record])


def decode_result(data: bytes) -> dict[str, Any]:
    schema, records = read_container(data)
    if schema.get("name") not in ("mmstream.Result", "Result") or len(records) != 1:
        raise DecodeError("not an mmstream result message")
    return records[0]
