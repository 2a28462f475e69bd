"""GW × GRB through the live service from real packets: RAVEN's joint FAR, whichever alert
arrives second, and the joint result updated or withdrawn when either side changes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from mmstream.analyses.raven import raven_coincidence
from mmstream.analyses.registry import Registry
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests import retime
from tests.conftest import SHARED_DATA
from tests.integration.harness import Harness, read_messages, running_service

pytestmark = pytest.mark.integration

IGWN = SHARED_DATA / "igwn/userguide"
GBM = retime.NOTICES / "fermi/gbm/trigger.flight1.example.json"
# ligo-raven's coinc_far for FAR_GW = 1e-5 Hz, a CBC's GRB window (-1, +5) s, and its GRB
# rate of 310 per 365-day year: 6 s * 310 / 31,536,000 s * 1e-5 Hz.
RAVEN_TEMPORAL_FAR = 5.8980e-10


def _results(h: Harness, alert_id: str, count: int) -> list[dict[str, Any]]:
    topic = h.settings.topics().result(raven_coincidence.name)
    msgs = read_messages(h.settings, topic, count, timeout=90, key=alert_id.encode())
    assert len(msgs) == count, f"{alert_id}: {len(msgs)} of {count} results"
    out = [decode_result(m.value()) for m in msgs]
    for rec in out:
        rec["details"] = json.loads(rec["details_json"])
    return out


def _gw(name: str, gw_id: str, t: int, sent_after_s: float) -> bytes:
    """The user guide's MS181101ab packet, re-timed, named as a real (S) superevent so that
    it pairs with observations (an MS mock pairs with test alerts only), its FAR 1e-5 Hz."""
    return retime.igwn_avro(IGWN / f"MS181101ab-{name}.avro", t, sent_after_s,
                            superevent_id=gw_id, far_hz=1e-5)  # fmt: skip


def _pair(rec: dict[str, Any]) -> dict[str, Any]:
    (pair,) = rec["details"]["coincidences"]
    return pair


def test_gw_then_grb_revision_and_retraction_of_the_gw(kafka_bootstrap: str) -> None:
    registry = Registry([raven_coincidence])
    with running_service(
        kafka_bootstrap, registry, alert_topics=(f"alerts.pairs.{uuid.uuid4().hex[:8]}",)
    ) as h:
        t_gw = now_ns() - 300 * NS_PER_S
        h.produce(h.alert_topic, _gw("preliminary", "S261201ab", t_gw, 60))
        (first,) = _results(h, "S261201ab", 1)
        assert first["statistics"]["n_coincident"] == 0  # nothing to pair with yet

        # The GRB arrives second: its analysis reads the GW. (The GBM notice is moved onto
        # the GW map's densest pixel, so that the two localizations overlap.)
        grb = retime.gcn_json(GBM, t_gw + 2 * NS_PER_S, ra=194.3, dec=-17.86)
        h.produce(h.alert_topic, grb)
        (joint,) = _results(h, "Fermi-745121685", 1)
        pair = _pair(joint)
        assert pair["alert_id"] == "S261201ab" and pair["dt_s"] == pytest.approx(-2.0, abs=1e-3)
        assert pair["temporal_far_hz"] == pytest.approx(RAVEN_TEMPORAL_FAR, rel=1e-4)
        assert pair["window_s"] == [-1.0, 5.0] and pair["overlap"] > 1  # same patch of sky
        assert pair["spacetime_far_hz"] == pytest.approx(pair["temporal_far_hz"] / pair["overlap"])

        # The GW is revised: the GRB's joint result is run again and superseded.
        h.produce(h.alert_topic, _gw("initial", "S261201ab", t_gw, 120))
        _, update = _results(h, "Fermi-745121685", 2)
        assert update["supersedes"] == joint["result_id"]
        assert _pair(update)["revision"] != pair["revision"]
        assert any("partner alert S261201ab revision" in n for n in update["notes"])

        # The GW is retracted: its own result is withdrawn, and the joint one with it.
        h.produce(h.alert_topic, _gw("retraction", "S261201ab", t_gw, 180))
        gw_results = _results(h, "S261201ab", 3)
        assert gw_results[-1]["status"] == "RETRACTED"
        *_, withdrawn = _results(h, "Fermi-745121685", 3)
        assert withdrawn["supersedes"] == update["result_id"]
        assert withdrawn["statistics"]["n_coincident"] == 0
        assert withdrawn["details"]["retracted_partners"][0]["alert_id"] == "S261201ab"
        assert "withdrawn by retraction: S261201ab" in withdrawn["summary"]

        # The GRB, which owns the joint result, is retracted too: the joint result with it.
        h.produce(h.alert_topic, retime.gcn_json(GBM, t_gw + 2 * NS_PER_S, 40, ra=194.3,
                                                 dec=-17.86, alert_type="retraction",
                                                 record_number=9))  # fmt: skip
        *_, gone = _results(h, "Fermi-745121685", 4)
        assert gone["status"] == "RETRACTED" and gone["supersedes"] == withdrawn["result_id"]


def test_grb_then_gw_and_a_retraction_of_the_grb(kafka_bootstrap: str) -> None:
    registry = Registry([raven_coincidence])
    with running_service(
        kafka_bootstrap, registry, alert_topics=(f"alerts.pairs.{uuid.uuid4().hex[:8]}",)
    ) as h:
        t_gw = now_ns() - 300 * NS_PER_S
        grb = retime.gcn_json(GBM, t_gw + 4 * NS_PER_S, id=["800000001"], record_number=1)
        h.produce(h.alert_topic, grb)
        (alone,) = _results(h, "Fermi-800000001", 1)
        assert alone["statistics"]["n_coincident"] == 0

        # The GW arrives second: it reads the GRB (dt +4 s, inside -1 .. +5).
        h.produce(h.alert_topic, _gw("preliminary", "S261201cd", t_gw, 60))
        (joint,) = _results(h, "S261201cd", 1)
        pair = _pair(joint)
        assert pair["alert_id"] == "Fermi-800000001"
        assert pair["dt_s"] == pytest.approx(4.0, abs=1e-3)
        assert pair["temporal_far_hz"] == pytest.approx(RAVEN_TEMPORAL_FAR, rel=1e-4)

        # The GRB is retracted: its result is withdrawn, and the GW's joint result updated.
        retraction = retime.gcn_json(GBM, t_gw + 4 * NS_PER_S, 40, id=["800000001"],
                                     record_number=2, alert_type="retraction")  # fmt: skip
        h.produce(h.alert_topic, retraction)
        assert _results(h, "Fermi-800000001", 2)[-1]["status"] == "RETRACTED"
        _, withdrawn = _results(h, "S261201cd", 2)
        assert withdrawn["supersedes"] == joint["result_id"]
        assert withdrawn["statistics"]["n_coincident"] == 0
        assert "withdrawn by retraction: Fermi-800000001" in withdrawn["summary"]
