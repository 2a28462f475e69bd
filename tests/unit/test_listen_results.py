"""consumers/listen_results.py reads every message by its ``_format`` header, as hop does."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType

from mmstream.formats.avro import load_schema, write_container

ROOT = Path(__file__).resolve().parents[2]


def _listener() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "listen_results", ROOT / "consumers/listen_results.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_json_notice_and_an_avro_result_are_both_read() -> None:
    listen = _listener()
    rid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    notice = {"ref_ID": "S1", "pval_generic": 0.5}
    got = listen.describe("mmstream.notices.x", json.dumps(notice).encode(),
                          [("_id", rid.bytes), ("_format", b"json")])  # fmt: skip
    assert got["notice"] == notice and got["id"] == str(rid) and got["format"] == "json"

    record = {
        "result_id": str(rid), "analysis": "a", "analysis_version": "1", "status": "COMPLETED",
        "summary": "s", "alert": {"alert_id": "S1", "revision": "r", "alert_type": "PRELIMINARY",
        "role": "observation", "source": "LVK", "time": None, "time_ns": None, "far_hz": None},
        "window": {"start": "x", "end": "y", "start_ns": 0, "end_ns": 1, "livetime_fraction": None},
        "statistics": {}, "events": [], "notes": [], "error": None, "details_json": "{}",
        "parameters_json": "{}", "provenance": {}, "supersedes": None, "excluded": [],
    }  # fmt: skip
    value = write_container(load_schema("result.avsc"), [record])
    got = listen.describe("mmstream.results.x", value, [("_id", rid.bytes), ("_format", b"avro")])
    assert got["status"] == "COMPLETED" and got["alert"] == "S1"
