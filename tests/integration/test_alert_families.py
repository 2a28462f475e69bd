"""Every family of real alert packets in ../shared/data, re-timed to now, through the live
service on a real broker: which analyses ran, an event planted at the alert's position found
with its credible level, an event planted 20° away not found."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mmstream.feeders import (
    Injection,
    background_events,
    produce_events,
    produce_heartbeats,
    with_injections,
)
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests import retime
from tests.conftest import SHARED_DATA
from tests.integration.harness import read_to_end, running_service, wait_until

pytestmark = pytest.mark.integration

N = retime.NOTICES
GBM_MAP = SHARED_DATA / "skymaps/growth-too-marshal/glg_healpix_all_bn180116026.fit"
T, S, L = "temporal_coincidence", "spacetime_coincidence", "neutrino_llh"
RT, R, SN = "raven_temporal_coincidence", "raven_coincidence", "supernova_burst"


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[[int], bytes]
    alert_id: str
    analyses: frozenset[str]  # that publish a result for it
    kind: str | None  # the localization kind the spatial result names (None: no position)
    centre: tuple[float, float] | None  # where the event is planted (a map's densest pixel)


def _f(name: str, make: Callable[[int], bytes], alert_id: str, analyses: set[str],
       kind: str | None, centre: tuple[float, float] | None) -> Family:  # fmt: skip
    return Family(name, make, alert_id, frozenset(analyses), kind, centre)


FAMILIES = [
    _f("IGWN BAYESTAR (Avro)",
       lambda t: retime.igwn_avro(SHARED_DATA / "igwn/userguide/MS181101ab-preliminary.avro", t),
       "MS181101ab", {T, S, L, RT, R}, "multiorder", (194.30419921875, -17.856895095545468)),
    _f("Fermi GBM JSON with its flat map",
       lambda t: retime.with_map(retime.gcn_json(N / "fermi/gbm/trigger.flight1.example.json", t),
                                 GBM_MAP),
       "Fermi-745121685", {T, S, L, R}, "flat", (213.39843749999997, 25.944479772370002)),
    _f("Fermi GBM VOEvent",
       lambda t: retime.voevent(SHARED_DATA / "voevent/growth-too-marshal/"
                                "GRB180116A_Fermi_GBM_Fin_Pos.xml", t),
       "Fermi-537755817", {T, S, L, R}, "circle", (212.77, 27.05)),
    _f("Swift BAT VOEvent",
       lambda t: retime.voevent(SHARED_DATA / "voevent/gwcelery/swift_grb_gcn.xml", t),
       "Swift-1123129", {T, S, L, R}, "circle", (268.87, -20.3153)),
    _f("Einstein Probe WXT JSON",
       lambda t: retime.gcn_json(N / "einstein_probe/wxt/alert.example.json", t),
       "EinsteinProbe-01708973486", {T, S, L}, "circle", (120.0, 40.0)),
    _f("SVOM ECLAIRs JSON",
       lambda t: retime.gcn_json(N / "svom/eclairs/trigger.slewing.example.json", t),
       "SVOM-sb24022203", {T, S, L, R}, "circle", (143.2478, -68.0289)),
    _f("MAXI GSC JSON (ellipse)",
       lambda t: retime.gcn_json(N / "maxi/gsc.unknown.ellipse.example.json", t),
       "GRB 230220A", {T, S, L}, "ellipse", (346.56, 18.61)),
    _f("IceCube gold/bronze JSON",
       lambda t: retime.gcn_json(N / "icecube/single_neutrino_alerts.gold_bronze_track_alerts."
                                 "example.json", t),
       "IceCube-230416A", {T, S, L, R}, "circle", (345.82, 9.01)),
    _f("KM3NeT JSON",
       lambda t: retime.gcn_json(N / "km3net/alert.example.json", t),
       "KM3-240901A", {T, S, L, R}, "circle", (10.82, 20.01)),
    _f("Super-Kamiokande SN JSON",
       lambda t: retime.gcn_json(N / "superk/sn_alert.real.example.json", t),
       "Super-Kamiokande-SN.095001.000001", {T, S, L, R, SN}, "circle", (270.82, 31.46)),
    _f("SNEWS VOEvent",
       lambda t: retime.voevent(SHARED_DATA / "voevent/gwcelery/snews_gcn.xml", t),
       "SNEWS-1000194", {T, S, L, R, SN}, None, None),
    _f("CHIME FRB JSON",
       lambda t: retime.gcn_json(N / "chime/frb.detection.example.json", t),
       "CHIME-427325191", {T, S, L}, "ellipse", (346.77850859547, 12.632485229956252)),
    _f("DSA-110 FRB JSON",
       lambda t: retime.gcn_json(N / "dsa110/frb.detection.example.json", t),
       "DSA-110-240918aaaa", {T, S, L}, "ellipse", (346.77850859547, 12.632485229956252)),
]  # fmt: skip
SPACING_S = 1100  # windows of ±500 s, one alert's apart from the next


def _away(ra: float, dec: float) -> tuple[float, float]:
    return (ra, dec + 20.0) if dec < 60 else (ra, dec - 20.0)


def test_every_alert_family_gets_its_follow_up(kafka_bootstrap: str) -> None:
    with running_service(kafka_bootstrap, alert_topics=("alerts.families",)) as h:
        end = now_ns()
        times = {f.name: end - (600 + k * SPACING_S) * NS_PER_S for k, f in enumerate(FAMILIES)}
        start = min(times.values()) - 4000 * NS_PER_S
        planted: list[Injection] = []
        for f in FAMILIES:
            t = times[f.name]
            ra, dec = f.centre if f.centre is not None else (30.0, -10.0)
            planted.append(Injection(t + 3 * NS_PER_S, ra, dec, 0.5, f"near-{f.alert_id}"))
            planted.append(Injection(t + 4 * NS_PER_S, *_away(ra, dec), 0.5, f"far-{f.alert_id}"))
        events = with_injections(h.detector,
                                 background_events(h.detector, start, end, 0.002, seed=16),
                                 planted)  # fmt: skip
        produce_events(h.producer, h.settings.detector_topic(h.detector), events)
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           start, end)  # fmt: skip
        h.producer.flush(30)
        for f in FAMILIES:
            h.produce(h.alert_topic, f.make(times[f.name]))

        topics = h.settings.topics()
        expected = {(f.alert_id, a) for f in FAMILIES for a in f.analyses}
        names = {a for f in FAMILIES for a in f.analyses}
        results: dict[tuple[str, str], dict[str, Any]] = {}

        def collected() -> bool:
            for name in names:
                for msg in read_to_end(h.settings, topics.result(name), timeout=20):
                    rec = decode_result(msg.value())
                    rec["details"] = json.loads(rec["details_json"])
                    results[(rec["alert"]["alert_id"], name)] = rec
            return expected <= set(results)

        wait_until(collected, "a result of every analysis for every family", timeout=240)

    by_alert: dict[str, set[str]] = defaultdict(set)
    for alert_id, name in results:
        by_alert[alert_id].add(name)
    for f in FAMILIES:
        assert by_alert[f.alert_id] == f.analyses, f.name
        assert results[(f.alert_id, T)]["status"] == "COMPLETED", f.name
        space = results[(f.alert_id, S)]
        llh = results[(f.alert_id, L)]
        if f.kind is None:
            assert space["status"] == llh["status"] == "NOT_APPLICABLE", f.name
            continue
        assert space["status"] == "COMPLETED", (f.name, space["summary"])
        loc = space["details"]["localization"]
        assert loc["kind"] == f.kind, f.name
        found = {e["event_id"]: e for e in space["events"]}
        near = found.get(f"near-{f.alert_id}")
        assert near is not None, (f.name, space["summary"])
        assert near["values"]["credible_level"] <= 0.9, f.name
        assert f"far-{f.alert_id}" not in found, (f.name, space["summary"])
        assert llh["status"] == "COMPLETED" and 0 < llh["statistics"]["p_value"] <= 1, f.name
        assert llh["details"]["localization"]["kind"] == f.kind, f.name
    for f in FAMILIES:
        if SN in f.analyses:
            burst = results[(f.alert_id, SN)]
            listed = {e["event_id"] for e in burst["events"]}
            assert {f"near-{f.alert_id}", f"far-{f.alert_id}"} <= listed, f.name
            assert burst["statistics"]["n_signal"] >= 2, f.name
