"""The raw archive is on disk (fsynced) before an alert's offset may commit; files of
messages no offset commit moves past (a detector's) are not fsynced then."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmstream.stream.archive import ArchivedMessage, RawArchive, read_archive


def _msg(offset: int, topic: str = "igwn.gwalert") -> ArchivedMessage:
    return ArchivedMessage(topic, 0, offset, (1, 1_764_547_200_000), None, b"value",
                           [("h", b"v")])  # fmt: skip


def test_a_durable_flush_fsyncs_what_was_written_since_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    archive = RawArchive(tmp_path, "test")
    archive.append(_msg(0), commits=True)
    assert archive.unsynced(), "an alert is written and not yet fsynced"
    archive.flush()
    assert synced == [], "a plain flush does not fsync"
    archive.flush(durable=True)
    assert len(synced) == 1 and not archive.unsynced()
    archive.flush(durable=True)
    assert len(synced) == 1, "nothing new: no second fsync"
    archive.append(_msg(7, "icecube.events"))
    assert not archive.unsynced(), "a detector's message waits for no fsync"
    archive.flush(durable=True)
    assert len(synced) == 1, "a detector's file: no offset commits past it, no fsync"
    archive.append(_msg(1), commits=True)
    archive.flush(durable=True)
    assert len(synced) == 2
    found = list(read_archive(tmp_path, ["igwn.gwalert"], 0, 2_000_000_000_000))
    assert [m.offset() for m in found] == [0, 1]
    assert [m.offset() for m in read_archive(tmp_path, ["icecube.events"], 0, 2 * 10**12)] == [7]


def test_a_batch_across_midnight_goes_to_each_day_s_file_in_order(tmp_path: Path) -> None:
    day_ms = 86_400_000
    stamps = [20_000 * day_ms - 2, 20_000 * day_ms - 1, 20_000 * day_ms, 20_000 * day_ms + 1]
    batch = [ArchivedMessage("icecube.events", 0, i, (1, t), None, b"e%d" % i, [])
             for i, t in enumerate(stamps)]  # fmt: skip
    archive = RawArchive(tmp_path, "test")
    files = archive.append_batch(batch)
    assert files[0] == files[1] != files[2] == files[3]
    assert Path(files[0]).parent.parent.name != Path(files[2]).parent.parent.name
    archive.close()
    found = list(read_archive(tmp_path, ["icecube.events"], 0, 30_000 * day_ms))
    assert [(m.offset(), m.value()) for m in found] == [(i, b"e%d" % i) for i in range(4)]
