"""The provenance headers of every result message: a contract for outside subscribers.

| header | value |
| --- | --- |
| ``_id`` | result UUID, 16 raw bytes (hop-client convention) |
| ``_format`` | ``avro`` |
| ``_sender`` | service instance name |
| ``mmstream-analysis`` | ``name@version`` |
| ``mmstream-code`` | ``mmstream==X.Y.Z git=<commit> handler-sha256=<hex>`` |
| ``mmstream-config-sha256`` | sha256 of the validated parameters' canonical JSON |
| ``mmstream-inputs`` | JSON: the alert message and the detector offsets used |
| ``mmstream-window`` | JSON: event-time window and livetime fraction |
| ``mmstream-produced-at`` | RFC 3339 UTC |
| ``_test`` | ``true`` on results of test and mock alerts (hop consumers skip them by default) |
| ``mmstream-result-id`` | on a JSON notice: the result it accompanies (its own ``_id`` differs) |
"""

from __future__ import annotations

import json
import subprocess
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from mmstream import __version__

# Fixed namespace for result ids: uuid5(NAMESPACE_URL, "mmstream:result").
RESULT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "mmstream:result")


def result_id(
    analysis_label: str, alert_id: str, revision: str, role: str = "observation"
) -> uuid.UUID:
    """Deterministic: a re-run on the same alert revision gives the same id. The role is
    part of the identity (a test notice may share its id and revision with the real one);
    observations keep the id they always had."""
    name = f"{analysis_label}\n{alert_id}\n{revision}"
    return uuid.uuid5(RESULT_NAMESPACE, name if role == "observation" else f"{name}\nrole={role}")


def notice_id(rid: uuid.UUID) -> uuid.UUID:
    """The ``_id`` of the JSON notice published beside result ``rid``: every message has its
    own id (hop-client's rule), derived from the result's so that it is deterministic too."""
    return uuid.uuid5(rid, "notice")


@cache
def git_commit() -> str | None:
    """The commit of the source tree mmstream runs from, where it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout.strip()
    return f"{commit}{'-dirty' if dirty else ''}"


def code_string(handler_sha256: str) -> str:
    parts = [f"mmstream=={__version__}"]
    if (commit := git_commit()) is not None:
        parts.append(f"git={commit}")
    parts.append(f"handler-sha256={handler_sha256}")
    return " ".join(parts)


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def build_headers(
    *,
    rid: uuid.UUID,
    sender: str,
    analysis_label: str,
    code: str,
    config_sha256: str,
    inputs: dict[str, Any],
    window: dict[str, Any],
    produced_at: str,
) -> list[tuple[str, bytes]]:
    return [
        ("_id", rid.bytes),
        ("_format", b"avro"),
        ("_sender", sender.encode()),
        ("mmstream-analysis", analysis_label.encode()),
        ("mmstream-code", code.encode()),
        ("mmstream-config-sha256", config_sha256.encode()),
        ("mmstream-inputs", compact_json(inputs).encode()),
        ("mmstream-window", compact_json(window).encode()),
        ("mmstream-produced-at", produced_at.encode()),
    ]


def headers_dict(headers: list[tuple[str, bytes]] | None) -> dict[str, bytes]:
    """Kafka headers as a dict (last value wins), for readers."""
    return {k: v for k, v in (headers or [])}
