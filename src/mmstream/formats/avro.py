"""Avro helpers shared by every format: container files and single-object encoding.

Two framings are used on purpose:
- *Object container files* (header + embedded writer schema + records) for alerts and
  results: self-describing, so an outside subscriber needs nothing from us to read them.
- *Single-object encoding* (Avro spec: marker C3 01, 8-byte CRC-64-AVRO fingerprint,
  binary datum) for high-rate detector events: 10 bytes of framing instead of a schema,
  and the fingerprint names the writer schema so older writers stay readable.
"""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from mmstream.errors import DecodeError

SINGLE_OBJECT_MARKER = b"\xc3\x01"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A parsed schema from the package's ``schemas/`` folder, e.g. ``detector_event.avsc``."""
    text = resources.files("mmstream").joinpath("schemas", name).read_text()
    return cast(dict[str, Any], fastavro.parse_schema(json.loads(text)))


def schema_fingerprint(parsed: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of the schema's canonical form, little-endian."""
    canonical = to_parsing_canonical_form(parsed)
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))[::-1]


def write_container(parsed: dict[str, Any], records: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, parsed, records, codec="null")
    return buf.getvalue()


def read_container(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Writer schema and records of an Avro object container file."""
    try:
        reader = fastavro.reader(io.BytesIO(data))
        records = list(reader)
    except Exception as exc:  # fastavro raises ValueError, EOFError, SchemaParseException...
        raise DecodeError(f"not a readable Avro container: {type(exc).__name__}: {exc}") from exc
    return cast(dict[str, Any], reader.writer_schema), cast(list[dict[str, Any]], records)


def encode_single(parsed: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MARKER)
    buf.write(schema_fingerprint(parsed))
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


class SingleObjectDecoder:
    """Decodes single-object-encoded messages written with any of the known schema versions."""

    def __init__(self, reader: dict[str, Any], writers: list[dict[str, Any]]) -> None:
        self.reader = reader
        self.writers = {schema_fingerprint(w): w for w in [reader, *writers]}

    def decode(self, data: bytes) -> dict[str, Any]:
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        writer = self.writers.get(data[2:10])
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {data[2:10].hex()}")
        try:
            record = cast(
                dict[str, Any],
                fastavro.schemaless_reader(io.BytesIO(data[10:]), writer, self.reader),
            )
        except Exception as exc:
            raise DecodeError(f"corrupt Avro datum: {type(exc).__name__}: {exc}") from exc
        return record
