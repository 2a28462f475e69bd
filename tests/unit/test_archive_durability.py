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
    archive.flush()
    assert synced == [], "a plain flush does not fsync"
    archive.flush(durable=True)
    assert len(synced) == 1
    archive.flush(durable=True)
    assert len(synced) == 1, "nothing new: no second fsync"
    archive.append(_msg(7, "icecube.events"))
    archive.flush(durable=True)
    assert len(synced) == 1, "a detector's file: no offset commits past it, no fsync"
    archive.append(_msg(1), commits=True)
    archive.flush(durable=True)
    assert len(synced) == 2
    found = list(read_archive(tmp_path, ["igwn.gwalert"], 0, 2_000_000_000_000))
    assert [m.offset() for m in found] == [0, 1]
    assert [m.offset() for m in read_archive(tmp_path, ["icecube.events"], 0, 2 * 10**12)] == [7]
