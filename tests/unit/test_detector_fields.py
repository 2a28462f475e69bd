"""A detector's own event fields and its conditions, with no broker: schemas, columns, the
as-of join, rules, and a handler from a module of its own that uses them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mmstream.analyses.inputs import AnalysisInput, DetectorConditions
from mmstream.analyses.registry import Registry
from mmstream.errors import ConfigError, DecodeError
from mmstream.feeders import simulated_schema
from mmstream.formats.avro import encode_single, load_schema
from mmstream.formats.detector import DetectorCodec, encode_batch, encode_context, encode_event
from mmstream.formats.detector_schema import load_detector_schema
from mmstream.model import NS_PER_S, ContextChange, DetectorEvent, Window
from mmstream.stream.conditions import Conditions, ContextRule
from mmstream.stream.store import EventStore
from tests import detector_fields_analysis
from tests.detector_fields_analysis import SignalnessParams, signalness_weighted

T0 = 1_800_000_000 * NS_PER_S
SCHEMA = simulated_schema()
FIELDS = {"signalness": 0.8, "event_class": "track", "zenith_deg": 95.0, "charge_pe": 1200.0}


def _event(i: int, **fields: object) -> DetectorEvent:
    return DetectorEvent(f"e{i}", "icecube", i, T0 + i * NS_PER_S, 10.0, 20.0, 1.0,
                         fields={**FIELDS, **fields})  # fmt: skip


def test_the_detectors_own_fields_round_trip_single_and_batched(tmp_path: Path) -> None:
    codec = DetectorCodec({"icecube": SCHEMA})
    event = _event(1)
    (got,) = codec.decode_events(encode_event(event, SCHEMA), "icecube")
    assert got == event
    batch = [_event(i, signalness=i / 10) for i in range(5)]
    assert codec.decode_events(encode_batch("icecube", batch, SCHEMA), "icecube") == batch
    # a core-schema event still reads, its own fields at their defaults
    plain = DetectorEvent("p", "icecube", 0, T0, 1.0, 2.0, 0.5)
    (read,) = codec.decode_events(encode_event(plain), "icecube")
    assert read == replace(plain, fields=SCHEMA.defaults) and read.fields["signalness"] == 0.0
    # two detectors with the very same schema each read their own events
    twins = DetectorCodec({"icecube": SCHEMA, "km3net": replace(SCHEMA, detector="km3net")})
    for d in ("icecube", "km3net"):
        (got,) = twins.decode_events(encode_event(replace(event, detector=d), SCHEMA), d)
        assert got.fields == event.fields
    other = json.loads(json.dumps(SCHEMA.raw[0]))
    other["name"] = "Km3netEvent"
    (tmp_path / "km3net.avsc").write_text(json.dumps(other))
    km3net = load_detector_schema("km3net", [tmp_path / "km3net.avsc"])
    with pytest.raises(DecodeError, match="own schema on 'km3net'"):
        DetectorCodec({"icecube": SCHEMA, "km3net": km3net}).decode_events(
            encode_event(event, SCHEMA), "km3net"
        )


def test_data_written_with_the_previous_version_reads_with_the_new_fields_defaulted() -> None:
    v1 = SCHEMA.history[0]
    record = {f["name"]: v for f in v1["fields"] for v in [_record(_event(3))[f["name"]]]}
    (got,) = DetectorCodec({"icecube": SCHEMA}).decode_events(encode_single(v1, record))
    assert got.fields["charge_pe"] is None  # added in v2, with a null default
    assert got.fields["signalness"] == 0.8 and got.fields["event_class"] == "track"


def _record(event: DetectorEvent) -> dict[str, object]:
    from mmstream.formats.detector import _event_record

    return _event_record(event)


def test_a_schema_that_drops_or_retypes_a_core_field_is_refused(tmp_path: Path) -> None:
    raw = json.loads(json.dumps(SCHEMA.raw[0]))
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "sigma_deg"]
    (tmp_path / "bad.avsc").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="lacks the core field 'sigma_deg'"):
        load_detector_schema("icecube", [tmp_path / "bad.avsc"])
    raw = json.loads(json.dumps(SCHEMA.raw[0]))
    next(f for f in raw["fields"] if f["name"] == "time_ns")["type"] = "double"
    (tmp_path / "retyped.avsc").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="gives core field 'time_ns' the type 'double'"):
        load_detector_schema("icecube", [tmp_path / "retyped.avsc"])


def test_the_store_keeps_the_fields_as_typed_columns() -> None:
    store = EventStore(10**18, fields={"icecube": SCHEMA.fields})
    for i in range(4):
        store.add(_event(i, signalness=0.1 * i, charge_pe=None if i == 2 else 100.0 * i), 0, i)
    cols = store.window("icecube", Window(T0, T0 + 10 * NS_PER_S))
    assert cols.fields["signalness"].dtype == np.float64
    np.testing.assert_allclose(cols.fields["signalness"], [0.0, 0.1, 0.2, 0.3])
    assert np.isnan(cols.fields["charge_pe"][2]) and cols.fields["charge_pe"][3] == 300.0
    assert list(cols.fields["event_class"]) == ["track"] * 4
    assert list(cols.take(np.array([3, 0])).fields["zenith_deg"]) == [95.0, 95.0]


def test_the_as_of_join_and_the_rules() -> None:
    cond = Conditions((ContextRule("shutter.3", "closed", "shutter 3 closed"),))
    changes = [(T0 - 3600 * NS_PER_S, "calibration", "cal-A"), (T0 + 50 * NS_PER_S,
               "calibration", "cal-B"), (T0 - 3600 * NS_PER_S, "shutter.3", "open"),
               (T0 + 20 * NS_PER_S, "shutter.3", "closed"), (T0 + 140 * NS_PER_S, "shutter.3",
               "open")]  # fmt: skip
    for seq, (t, k, v) in enumerate(changes):
        change = DetectorCodec({}).decode_context(
            encode_context(ContextChange("icecube", seq, t, k, v)))  # fmt: skip
        assert cond.add(change, 0, seq)
    assert not cond.add(ContextChange("icecube", 9, *changes[0]), 0, 9), "a repeat"
    times = T0 + np.array([-4000, 0, 49, 50, 51, 1000]) * NS_PER_S
    assert list(cond.at("icecube", "calibration", times)) == [None, "cal-A", "cal-A", "cal-B",
                                                               "cal-B", "cal-B"]  # fmt: skip
    window = Window(T0, T0 + 500 * NS_PER_S)
    assert cond.intervals("icecube", "calibration", window) == [
        (T0, T0 + 50 * NS_PER_S, "cal-A"),
        (T0 + 50 * NS_PER_S, T0 + 500 * NS_PER_S, "cal-B"),
    ]
    (ex,) = cond.excluded("icecube", window)
    assert (ex.start_ns, ex.end_ns, ex.reason) == (T0 + 20 * NS_PER_S, T0 + 140 * NS_PER_S,
                                                   "shutter 3 closed")  # fmt: skip
    assert cond.excluded("km3net", window) == []
    assert list(cond.at("icecube", "no-such-key", times[:2])) == [None, None]


def test_a_handler_from_its_own_module_weights_by_signalness() -> None:
    registry = Registry()
    registry.add_module(detector_fields_analysis)
    assert registry.get("signalness_weighted").condition_keys == ("calibration",)
    events = [_event(1, signalness=0.9), _event(2, signalness=0.2), _event(3, signalness=0.6)]
    inp = AnalysisInput.for_test(SignalnessParams(), events, alert_time_ns=T0)
    cal = np.array(["cal-A", "cal-A", "cal-B"], dtype=object)
    inp = replace(inp, conditions={"icecube": DetectorConditions({"calibration": cal})})
    out = signalness_weighted(inp)
    assert out.statistics["signalness_sum"] == pytest.approx(1.7)
    assert [e.event_id for e in out.events] == ["e1", "e3"]
    assert out.details["calibrations"] == ["cal-A", "cal-B"]
    assert load_schema("detector_context.avsc")["name"] == "mmstream.DetectorContext"


def test_rules_compare_by_kind_and_a_late_change_decides_its_span() -> None:
    from mmstream.stream.conditions import same

    assert same(False, False) and not same(False, 0) and not same(1, True) and same(1, 1.0)
    cond = Conditions((ContextRule("beam", False, "beam off"),))
    for seq, (t, v) in enumerate([(T0, True), (T0 + 100 * NS_PER_S, 0),
                                  (T0 + 200 * NS_PER_S, False)]):  # fmt: skip
        cond.add(ContextChange("icecube", seq, t, "beam", v), 0, seq)
    (ex,) = cond.excluded("icecube", Window(T0, T0 + 300 * NS_PER_S))
    assert (ex.start_ns, ex.reason) == (T0 + 200 * NS_PER_S, "beam off")  # 0 is not False
    # a change long before a window still decides the window's start: its span reaches it
    late = ContextChange("icecube", 9, T0 - 500 * NS_PER_S, "beam", False)
    cond.add(late, 0, 9)
    assert cond.effect(late) == (T0 - 500 * NS_PER_S, T0)
    again = ContextChange("icecube", 10, T0 + 250 * NS_PER_S, "beam", False)
    cond.add(again, 0, 10)
    assert cond.effect(again) is None, "the value already in effect: nothing changes"
    assert cond.admits(ContextChange("icecube", 11, T0, "k2", 1.0))
    full = Conditions(max_keys=1)
    full.add(ContextChange("icecube", 0, T0, "a", 1.0), 0, 0)
    assert full.admits(ContextChange("icecube", 1, T0, "a", 2.0))
    assert not full.admits(ContextChange("icecube", 2, T0, "b", 2.0))
