"""Alert × alert: RAVEN's joint FARs in both orders, and the book that decides who reads whom."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mmstream.analyses.inputs import AnalysisInput, OtherAlert
from mmstream.analyses.raven import RavenParams, raven_coincidence
from mmstream.model import NS_PER_S, Alert, AlertType, Circle, Role, SourceRef, Window
from mmstream.sky.moc import gaussian_moc
from mmstream.stream.alertbook import AlertBook, Held, partner_updates
from mmstream.stream.results_index import Published

T0 = 1_800_000_000 * NS_PER_S
GW_MAP = gaussian_moc(150.0, 20.0, 3.0, max_order=8)
# RAVEN's own figure for these inputs (ligo-raven's coinc_far, temporal): FAR_GW = 1e-5 Hz,
# window -1 .. +5 s, 310 GRBs in a 365-day year.
RAVEN_TEMPORAL_FAR = 5.8980e-10


def _alert(alert_id: str, source: str, t_ns: int, *, far: float | None = None, loc=None,
           revision: str = "1", kind: AlertType = AlertType.INITIAL,
           extra: dict | None = None, offset: int = 0) -> Alert:  # type: ignore[no-untyped-def]  # fmt: skip
    return Alert(alert_id, revision, kind, Role.OBSERVATION, source, t_ns, far, loc,
                 SourceRef("alerts", 0, offset, "x"), extra or {}, sent_ns=offset)  # fmt: skip


GW = _alert("S1", "LVK", T0, far=1e-5, loc=GW_MAP, extra={"group": "CBC"})
GRB = _alert("Fermi-1", "Fermi", T0 + 2 * NS_PER_S, loc=Circle(151.0, 21.0, 5.0, 0.68))


def _run(trigger: Alert, others: list[OtherAlert]) -> dict:  # type: ignore[type-arg]
    p = RavenParams()
    window = raven_coincidence.window_for(trigger, p)
    assert trigger.time_ns is not None
    inp = AnalysisInput(trigger, Window.around(trigger.time_ns, *window), {}, p,
                        alerts=tuple(others))  # fmt: skip
    out = raven_coincidence(inp)
    return {"stats": dict(out.statistics), "details": dict(out.details), "summary": out.summary}


def test_gw_then_grb_and_grb_then_gw_give_ravens_temporal_far() -> None:
    by_grb = _run(GRB, [OtherAlert(GW, 1)])  # the GRB came second: it reads the GW
    by_gw = _run(GW, [OtherAlert(GRB, 1)])  # the GW came second
    for result in (by_grb, by_gw):
        (pair,) = result["details"]["coincidences"]
        assert pair["temporal_far_hz"] == pytest.approx(RAVEN_TEMPORAL_FAR, rel=1e-4)
        assert pair["window_s"] == [-1.0, 5.0]
        assert pair["overlap"] > 1 and pair["spacetime_far_hz"] < pair["temporal_far_hz"]
    assert by_grb["details"]["coincidences"][0]["dt_s"] == -2.0
    assert by_gw["details"]["coincidences"][0]["dt_s"] == 2.0
    assert (by_grb["details"]["coincidences"][0]["overlap"]
            == pytest.approx(by_gw["details"]["coincidences"][0]["overlap"]))  # fmt: skip


def test_outside_ravens_window_or_an_unpaired_kind_is_no_coincidence() -> None:
    late = replace(GRB, time_ns=T0 + 6 * NS_PER_S)  # CBC window ends at +5 s
    early = replace(GRB, time_ns=T0 - 2 * NS_PER_S)
    frb = _alert("CHIME-1", "CHIME", T0 + NS_PER_S)
    result = _run(GW, [OtherAlert(late, 1), OtherAlert(early, 1), OtherAlert(frb, 1)])
    assert result["stats"]["n_coincident"] == 0
    burst = replace(GW, extra={"group": "Burst"})  # Burst: -60 .. +600 s
    assert _run(burst, [OtherAlert(late, 1)])["stats"]["n_coincident"] == 1


def test_a_retracted_partner_withdraws_the_coincidence() -> None:
    result = _run(GRB, [OtherAlert(GW, 1, retracted=True)])
    assert result["stats"]["n_coincident"] == 0
    assert result["details"]["retracted_partners"][0]["alert_id"] == "S1"
    assert "withdrawn by retraction: S1" in result["summary"]


def test_neutrino_multiplets_pair_with_each_other() -> None:
    a = _alert("IceCube-1", "IceCube", T0, far=1e-8, loc=Circle(10.0, 5.0, 1.0, 0.9))
    b = _alert("KM3NeT-1", "KM3NeT", T0 + 100 * NS_PER_S, loc=Circle(10.5, 5.0, 1.5, 0.9))
    (pair,) = _run(b, [OtherAlert(a, 1)])["details"]["coincidences"]
    assert pair["alert_id"] == "IceCube-1" and pair["dt_s"] == -100.0
    # Δt · R_ν · the lower FAR of the two (IceCube's 1e-8 Hz; KM3NeT's notice has none and
    # counts as R_ν = 30 per year), whichever came first
    rate = 30.0 / (365 * 86400)
    assert pair["temporal_far_hz"] == pytest.approx(1000 * rate * 1e-8)
    (other,) = _run(a, [OtherAlert(b, 1)])["details"]["coincidences"]
    assert other["temporal_far_hz"] == pytest.approx(pair["temporal_far_hz"])


def _updates(book: AlertBook, held: Held, state: object) -> list:  # type: ignore[type-arg]
    def window_of(spec, alert):  # type: ignore[no-untyped-def]
        return spec.window_for(alert, RavenParams())

    return partner_updates(book, held, [raven_coincidence],
                           {"raven_coincidence": RavenParams()}, window_of,
                           lambda spec: (), lambda spec, alert: state)  # type: ignore[arg-type,return-value]  # fmt: skip


def test_the_second_to_arrive_reads_the_first_and_a_revision_of_the_first_reruns_it() -> None:
    book = AlertBook(retention_ns=10**18)
    book.add(GW, seen_ns=100)
    book.add(GRB, seen_ns=200)  # the GRB came second
    window = Window.around(T0 + 2 * NS_PER_S, -600, 60)
    kinds = frozenset({"GW", "GRB"})
    assert [o.alert.alert_id for o in book.partners(GRB, window, kinds)] == ["S1"]
    assert book.partners(GW, Window.around(T0, -20, 10), kinds) == ()  # it came first
    gw2 = replace(GW, revision="2", far_hz=2e-6, sent_ns=5)
    changed = book.add(gw2, seen_ns=300)
    assert changed is not None and changed.first_seen_ns == 100  # still the first to come
    assert book.add(gw2, seen_ns=301) is None  # the same notice twice changes nothing

    owner_read_rev1 = Published("r-grb-1", "1", False, partners=(("S1", "1", False),))
    (job,) = _updates(book, changed, owner_read_rev1)
    assert job.alert.alert_id == "Fermi-1" and job.update == 1
    assert job.trigger == "partner alert S1 revision 2"
    (again,) = _updates(book, changed, owner_read_rev1)
    assert again.result_id == job.result_id, "the same partner state makes the same result id"
    # nothing to do when the owner's result read this state, is withdrawn, waits, or never ran
    assert _updates(book, changed, replace(owner_read_rev1, partners=(("S1", "2", False),))) == []
    assert _updates(book, changed, replace(owner_read_rev1, retraction=True)) == []
    assert _updates(book, changed, "waiting") == [] and _updates(book, changed, None) == []
    assert len(_updates(book, changed, "running")) == 1

    retraction = replace(GW, revision="3", alert_type=AlertType.RETRACTION, localization=None)
    gone = book.add(retraction, seen_ns=400)
    assert gone is not None and gone.retracted
    (undo,) = _updates(book, gone, owner_read_rev1)
    assert undo.trigger == "partner alert S1 retraction" and undo.result_id != job.result_id
    assert book.partners(GRB, window, kinds)[0].retracted


def test_sub_threshold_windows_are_ravens_written_as_external_minus_gw() -> None:
    from mmstream.analyses.raven import allowed_dt

    fermi_sub = replace(GRB, extra={"ivorn": "ivo://nasa.gsfc.gcn/Fermi#GBM_SubThresh_x"})
    swift_sub = replace(GRB, source="Swift", extra={"instrument": "BAT-GUANO"})
    # gwcelery: superevents within [-11, +1] s of a Fermi sub-threshold GRB, [-20, +10] of Swift
    assert allowed_dt(GW, fermi_sub) == (-1.0, 11.0)
    assert allowed_dt(GW, swift_sub) == (-10.0, 20.0)
    assert allowed_dt(GW, GRB) == (-1.0, 5.0)
