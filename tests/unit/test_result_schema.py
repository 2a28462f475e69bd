"""The result schema's evolution: new statuses are added at the end of the enum, which now has
a default, so a reader holding this schema reads a symbol added later as FAILED; results are
self-describing (writer schema embedded), and those written with the previous schema decode."""

from __future__ import annotations

import io
import json
import uuid

import fastavro

from mmstream.formats.avro import load_schema
from mmstream.formats.results import ResultRecord, decode_result


def _record(status: str) -> ResultRecord:
    return ResultRecord(
        result_id=str(uuid.uuid4()), analysis="a", analysis_version="1", status=status,
        summary="s", alert={"alert_id": "S1", "revision": "1", "alert_type": "INITIAL",
                            "role": "observation", "source": "LVK", "time": None,
                            "time_ns": None, "far_hz": None},
        window={"start": "t", "end": "t", "start_ns": 0, "end_ns": 1, "livetime_fraction": None},
        provenance={}, parameters={}, error="stopped at the time limit of 3 s",
    )  # fmt: skip


def test_a_reader_with_this_schema_reads_a_symbol_added_later_as_failed() -> None:
    future = json.loads(json.dumps(load_schema("result.avsc")))
    status = next(f for f in future["fields"] if f["name"] == "status")
    status["type"]["symbols"].append("SOMETHING_NEW")
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(future), [_record("SOMETHING_NEW").as_avro()])
    reader = fastavro.reader(io.BytesIO(out.getvalue()), reader_schema=load_schema("result.avsc"))
    assert [r["status"] for r in reader] == ["FAILED"]


def test_self_describing_results_carry_the_new_statuses() -> None:
    assert decode_result(_record("TIMED_OUT").encode())["status"] == "TIMED_OUT"
    assert decode_result(_record("NOT_APPLICABLE").encode())["status"] == "NOT_APPLICABLE"


def test_a_result_written_with_the_previous_schema_still_decodes() -> None:
    out = io.BytesIO()
    fastavro.writer(out, load_schema("history/result.v1.avsc"), [_record("FAILED").as_avro()])
    assert decode_result(out.getvalue())["status"] == "FAILED"
