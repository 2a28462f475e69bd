"""Real alert packets from ../shared/data, re-timed to now (and otherwise left as they are).

Each function returns the packet's bytes with its event time set to ``t_ns`` and its
creation time ``sent_after_s`` later, as the sender would have made it today.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import fastavro

from mmstream.model import NS_PER_S
from tests.conftest import SHARED_DATA

NOTICES = SHARED_DATA / "gcn-json/gcn-schema/gcn/notices"


def iso(t_ns: int, digits: int = 3) -> str:
    """ISO 8601 UTC with ``digits`` decimals and a Z."""
    from mmstream.times import format_utc

    text = format_utc(t_ns)  # 2026-12-01T14:00:00.123456789Z or similar
    head, _, frac = text.rstrip("Z").partition(".")
    return f"{head}.{(frac + '000000000')[:digits]}Z" if digits else f"{head}Z"


def gcn_json(path: Path, t_ns: int, sent_after_s: float = 20.0, **changes: Any) -> bytes:
    rec = json.loads(path.read_text())
    rec["trigger_time"] = iso(t_ns, 6)
    rec["alert_datetime"] = iso(t_ns + int(sent_after_s * NS_PER_S), 2)
    rec.update(changes)
    return json.dumps(rec).encode()


def with_map(record: bytes, fits_path: Path) -> bytes:
    """A GCN JSON notice carrying this FITS map inline (``healpix_file``, base64)."""
    rec = json.loads(record)
    rec["healpix_file"] = base64.b64encode(fits_path.read_bytes()).decode()
    return json.dumps(rec).encode()


def voevent(path: Path, t_ns: int, sent_after_s: float = 20.0) -> bytes:
    text = path.read_text()
    text = re.sub(r"<ISOTime>[^<]*</ISOTime>", f"<ISOTime>{iso(t_ns, 2)}</ISOTime>", text)
    sent = iso(t_ns + int(sent_after_s * NS_PER_S), 0).rstrip("Z")
    return re.sub(r"<Date>[^<]*</Date>", f"<Date>{sent}</Date>", text).encode()


def igwn_avro(
    path: Path, t_ns: int, sent_after_s: float = 60.0, *, superevent_id: str | None = None,
    far_hz: float | None = None,
) -> bytes:  # fmt: skip
    """An IGWN Avro packet (one record, its own writer schema) re-timed; optionally renamed
    and with another FAR."""
    with path.open("rb") as f:
        reader = fastavro.reader(f)
        schema = reader.writer_schema
        rec = next(iter(reader))
    assert isinstance(rec, dict)
    rec["time_created"] = iso(t_ns + int(sent_after_s * NS_PER_S), 0)
    if superevent_id is not None:
        rec["superevent_id"] = superevent_id
    if rec.get("event"):
        rec["event"]["time"] = iso(t_ns, 3)
        if far_hz is not None:
            rec["event"]["far"] = far_hz
    out = io.BytesIO()
    fastavro.writer(out, schema, [rec])
    return out.getvalue()
