"""The raw archive gives back every message byte-exact, whatever its key, value and headers,
from batch records and from the per-message files written before them."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro

from mmstream.formats.archive import MESSAGE_SCHEMA
from mmstream.stream.archive import ArchivedMessage, RawArchive, read_archive

DAY_MS = 1_764_547_200_000  # 2025-12-01T00:00Z


def _messages(n: int) -> list[ArchivedMessage]:
    keys = [None, b"", b"ic"]
    values = [None, b"", b"\x00\xff" * 40, bytes(range(256))]
    headers: list[list[tuple[str, bytes | None]]] = [[], [("a", b"1"), ("b", None)]]
    return [ArchivedMessage("detector.ic.events", i % 2, i // 2, (1 + i % 2, DAY_MS + i),
                            keys[i % 3], values[i % 4], headers[i % 5 == 0])
            for i in range(n)]  # fmt: skip


def _same(a: ArchivedMessage, b: ArchivedMessage) -> bool:
    return (a.topic(), a.partition(), a.offset(), a.timestamp(), a.key(), a.value(),
            a.headers()) == (b.topic(), b.partition(), b.offset(), b.timestamp(), b.key(),
                             b.value(), b.headers())  # fmt: skip


def test_every_message_comes_back_byte_exact_across_batch_records(tmp_path: Path) -> None:
    sent = _messages(25_001)  # three records: two written at 10,000, the rest at the flush
    archive = RawArchive(tmp_path, "test")
    paths = {archive.append(m) for m in sent}
    archive.flush()
    archive.close()
    assert len(paths) == 1
    (path,) = paths
    with path.open("rb") as f:
        records = list(fastavro.reader(f))  # any Avro reader: no mmstream needed
    assert [len(r["offset"]) for r in records] == [10_000, 10_000, 5_001]  # type: ignore[index, arg-type]
    got = list(read_archive(tmp_path, ["detector.ic.events"], DAY_MS, DAY_MS + 86_400_000))
    want = sorted(sent, key=lambda m: (m.partition(), m.offset()))
    assert len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    assert got[0].key() is None and got[0].value() is None and got[0].headers() == [
        ("a", b"1"), ("b", None)]  # fmt: skip


def test_files_of_one_record_per_message_stay_readable(tmp_path: Path) -> None:
    old = tmp_path / "2025-12-01" / "igwn.gwalert" / "old-1.avro"
    old.parent.mkdir(parents=True)
    buf = io.BytesIO()
    fastavro.writer(buf, MESSAGE_SCHEMA, [
        {"topic": "igwn.gwalert", "partition": 0, "offset": o, "timestamp_type": 1,
         "timestamp_ms": DAY_MS + o, "key": None, "value": b"alert %d" % o,
         "headers": [{"key": "h", "value": b"v"}], "archived_at_ns": 0} for o in (0, 1)],
        codec="deflate")  # fmt: skip
    old.write_bytes(buf.getvalue())
    archive = RawArchive(tmp_path, "new")  # and a new file beside it, in the same folder
    archive.append(ArchivedMessage("igwn.gwalert", 0, 2, (1, DAY_MS + 2), None, b"alert 2", []))
    archive.close()
    got = list(read_archive(tmp_path, ["igwn.gwalert"], DAY_MS, DAY_MS + 1000))
    assert [(m.offset(), m.value(), m.headers()) for m in got] == [
        (0, b"alert 0", [("h", b"v")]),
        (1, b"alert 1", [("h", b"v")]),
        (2, b"alert 2", []),
    ]
