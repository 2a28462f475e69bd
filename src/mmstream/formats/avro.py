"""Avro helpers shared by every format: container files and single-object encoding.

Two framings are used on purpose:
- *Object container files* (header + embedded writer schema + records) for alerts and
  results: self-describing, so an outside subscriber needs nothing from us to read them.
- *Single-object encoding* (Avro spec: marker C3 01, 8-byte CRC-64-AVRO fingerprint,
  binary datum) for high-rate detector events: 10 bytes of framing instead of a schema,
  and the fingerprint names the writer schema so older writers stay readable.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, TypeVar, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from mmstream.errors import DecodeError

SINGLE_OBJECT_MARKER = b"\xc3\x01"


# Schemas that name types defined in other files, and those files.
_DEPENDS = {"detector_batch.avsc": ("detector_event.avsc",)}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A parsed schema from the package's ``schemas/`` folder, e.g. ``detector_event.avsc``.

    ``name`` may be a path below it (``history/detector_event.v1.avsc``). Each schema is
    parsed with its own set of named types, so a historical version never clashes with
    the current one of the same name.
    """
    named: dict[str, Any] = {}
    for dep in _DEPENDS.get(name, ()):
        fastavro.parse_schema(_schema_json(dep), named_schemas=named)
    return cast(dict[str, Any], fastavro.parse_schema(_schema_json(name), named_schemas=named))


def _schema_json(name: str) -> Any:
    return json.loads(resources.files("mmstream").joinpath("schemas", *name.split("/")).read_text())


def schema_fingerprint(parsed: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of the schema's canonical form, little-endian as
    the Avro specification (and Java's and the ``avro`` package's encoders) write it.

    fastavro's hex string is already in that byte order. It computes it in pure Python
    (~1 ms): computed once per schema object."""
    return _per_schema(_FINGERPRINTS, parsed, lambda p: bytes.fromhex(
        fingerprint(to_parsing_canonical_form(p), "CRC-64-AVRO")))  # fmt: skip


T = TypeVar("T")
_FINGERPRINTS: dict[int, tuple[dict[str, Any], bytes]] = {}
_CANONICAL_SCHEMAS: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def _per_schema(
    cache: dict[int, tuple[dict[str, Any], T]],
    parsed: dict[str, Any],
    make: Callable[[dict[str, Any]], T],
) -> T:
    """``make(parsed)``, once per schema object (parsed schemas are long-lived: load_schema
    caches them); the entry keeps the object, so a recycled id() never answers wrongly."""
    entry = cache.get(id(parsed))
    if entry is None or entry[0] is not parsed:
        entry = cache[id(parsed)] = (parsed, make(parsed))
    return entry[1]


def write_container(parsed: dict[str, Any], records: list[dict[str, Any]]) -> bytes:
    """An Avro container file whose bytes depend only on the schema and the records.

    The 16-byte sync marker is normally random; ours is a digest of the encoded records,
    so the same result is the same bytes however often it is made (replays, restarts).
    Avro maps keep insertion order, so keys are sorted first: equal records, equal bytes.
    The schema in the header is written with sorted keys too: fastavro's parsed schemas
    order some keys by set iteration, which changes with each process's hash seed.
    """
    records = [_canonical(r) for r in records]
    parsed = _canonical_schema(parsed)
    body = io.BytesIO()
    for record in records:
        fastavro.schemaless_writer(body, parsed, record)
    marker = hashlib.blake2b(body.getvalue(), digest_size=16).digest()
    buf = io.BytesIO()
    fastavro.writer(buf, parsed, records, codec="null", sync_marker=marker)
    return buf.getvalue()


def _canonical_schema(parsed: dict[str, Any]) -> dict[str, Any]:
    return _per_schema(_CANONICAL_SCHEMAS, parsed, _canonical)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def read_container(
    data: bytes, max_records: int = 1000, *, untrusted: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Writer schema and records (at most ``max_records``) of an Avro object container file.

    A container names its own writer schema, so a hostile one can declare an array of
    zero-byte items (``null``) with 2^62 elements in a 200-byte message: fastavro would
    allocate until the machine runs out. Such schemas are refused before any record is
    read; with every item at least one byte, the input's length bounds what is built.
    ``untrusted`` (messages from outside) also refuses compressed containers (fastavro
    inflates a block whole: 400 kB of deflate became 900 MB) and repeated records or
    nested repetition (one dict per input byte), so what is built stays within a small
    multiple of the message's size.
    """
    try:
        reader = fastavro.reader(io.BytesIO(data))
        if untrusted:
            codec = reader.metadata.get("avro.codec", "null")
            if codec != "null":
                raise DecodeError(f"Avro container codec {codec!r} refused: alerts come "
                                  "uncompressed (Kafka compresses on the wire)")  # fmt: skip
            _flat_repeats(reader.writer_schema, False, set())
        if _min_size(reader.writer_schema, {}, ()) == 0:
            raise DecodeError(
                "Avro writer schema's records are zero-size: refused (a count of them "
                "costs nothing to send and unbounded memory to read)"
            )
        records = list(itertools.islice(reader, max_records + 1))
    except DecodeError:
        raise
    except Exception as exc:  # fastavro raises ValueError, EOFError, SchemaParseException...
        raise DecodeError(f"not a readable Avro container: {type(exc).__name__}: "
                          f"{str(exc)[:300]}") from exc  # fmt: skip
    if len(records) > max_records:
        raise DecodeError(f"Avro container holds more than {max_records} records")
    return cast(dict[str, Any], reader.writer_schema), cast(list[dict[str, Any]], records)


_PRIMITIVE_SIZE = {"null": 0, "boolean": 1, "int": 1, "long": 1, "float": 4, "double": 8,
                   "bytes": 1, "string": 1}  # fmt: skip


def _min_size(schema: Any, named: dict[str, Any], stack: tuple[str, ...]) -> int:
    """The fewest bytes a datum of ``schema`` takes; raises DecodeError on an array of
    zero-size items (the only way a short input can declare unbounded work)."""
    if isinstance(schema, str):
        if schema in _PRIMITIVE_SIZE:
            return _PRIMITIVE_SIZE[schema]
        if schema in stack or schema not in named:
            return 1  # a recursive reference goes through a union or an array: >= 1 byte
        return _min_size(named[schema], named, (*stack, schema))
    if isinstance(schema, list):  # a union: the branch index is at least one byte
        for branch in schema:
            _min_size(branch, named, stack)
        return 1
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        named[str(schema.get("name"))] = schema  # later references by name look it up
    if kind in ("record", "error"):
        name = str(schema.get("name"))
        return sum(_min_size(f["type"], named, (*stack, name)) for f in schema.get("fields", []))
    if kind == "enum":
        return 1
    if kind == "fixed":
        return int(schema.get("size", 0))
    if kind == "array":
        if _min_size(schema.get("items"), named, stack) == 0:
            raise DecodeError("Avro writer schema declares an array of zero-size items: refused")
        return 1
    if kind == "map":
        _min_size(schema.get("values"), named, stack)  # each entry has a key: >= 1 byte
        return 1
    return _min_size(kind, named, stack)


def encode_single(parsed: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MARKER)
    buf.write(schema_fingerprint(parsed))
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


class SingleObjectDecoder:
    """Decodes single-object-encoded messages of several record kinds and schema versions.

    ``readers`` maps a kind (e.g. ``"event"``) to the current schema of that kind and the
    older writer schemas it must still read; the fingerprint in each message says which
    writer schema, and so which kind, it is.
    """

    def __init__(self, readers: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self._by_fingerprint: dict[bytes, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        for kind, (reader, writers) in readers.items():
            for writer in [reader, *writers]:
                fp = schema_fingerprint(writer)
                self._by_fingerprint[fp] = (kind, writer, reader)
                # mmstream until 2026-12 wrote the fingerprint byte-reversed (big-endian): such
                # messages stay readable (schemas/README.md says until when).
                self._by_fingerprint.setdefault(fp[::-1], (kind, writer, reader))

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(kind, record) of one message, read with the current schema of its kind."""
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        found = self._by_fingerprint.get(data[2:10])
        if found is None:
            raise DecodeError(f"unknown writer schema fingerprint {data[2:10].hex()}")
        kind, writer, reader = found
        try:
            buf = io.BytesIO(data[10:])
            record = cast(dict[str, Any], fastavro.schemaless_reader(buf, writer, reader))
        except Exception as exc:
            raise DecodeError(f"corrupt Avro datum: {type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data) - 10:
            raise DecodeError(f"{len(data) - 10 - buf.tell()} stray bytes after the Avro datum")
        return kind, record


def _flat_repeats(schema: Any, in_repeat: bool, seen: set[str]) -> None:
    """Refuse records, arrays or maps inside an array or map item (``untrusted`` readers):
    a repeated item is then one small object per at least one input byte."""
    if isinstance(schema, str):
        if in_repeat and schema not in _PRIMITIVE_SIZE:
            raise DecodeError(f"Avro writer schema repeats the named type {schema!r}: refused")
        return
    if isinstance(schema, list):
        for branch in schema:
            _flat_repeats(branch, in_repeat, seen)
        return
    kind = schema.get("type")
    if kind in ("record", "error"):
        if in_repeat:
            raise DecodeError("Avro writer schema repeats a record (array or map of records): "
                              "refused")  # fmt: skip
        name = str(schema.get("name"))
        if name in seen:
            return
        seen.add(name)
        for f in schema.get("fields", []):
            _flat_repeats(f["type"], False, seen)
    elif kind in ("array", "map"):
        if in_repeat:
            raise DecodeError("Avro writer schema nests an array or map in another: refused")
        _flat_repeats(schema.get("items" if kind == "array" else "values"), True, seen)
    elif kind in ("enum", "fixed"):
        return
    else:
        _flat_repeats(kind, in_repeat, seen)
