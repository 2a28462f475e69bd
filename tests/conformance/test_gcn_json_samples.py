"""Every GCN unified JSON sample decodes to the values it states, or is rejected for a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmstream.errors import DecodeError
from mmstream.formats import gcn_json
from mmstream.model import NS_PER_S, AlertType, Circle, Ellipse, Role, SourceRef
from mmstream.times import parse_utc_ns
from tests.conformance.conftest import ids, samples

FILES = samples("gcn-json/**/*.example.json")
# Samples that are not alerts, and the reason they are refused.
NOT_ALERTS = {
    "circulars.example.json": "no trigger_time",  # a GCN Circular, not a notice
    "boom/alert.example.json": "no trigger_time",
    "core/Localization.example.json": "no trigger_time",  # schema building blocks
    "core/Pointing.example.json": "no trigger_time",
    "core/Reporter.example.json": "no trigger_time",
    "core/Spectral.example.json": "no trigger_time",
    "core/Statistics.example.json": "no trigger_time",
    "fermi/lat/flare.example.json": "no trigger_time",  # a monitored-source flare
    "heasarc/archive_alert.example.json": "no trigger_time",
    # Schema examples whose healpix_file is a placeholder ("hhhh...", "stuff"), not base64
    # FITS: an embedded map that does not decode is refused, never silently dropped.
    "swift/bat/guano.loc_map.example.json": "healpix_file is not valid base64",
    "burstcube/alert.example.json": "healpix_file is not valid base64",
    "burstcube/test.example.json": "healpix_file is not valid base64",
}


def _rejection(path: Path) -> str | None:
    return next((why for name, why in NOT_ALERTS.items() if str(path).endswith(name)), None)


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_sample_decodes_to_its_own_values_or_is_refused(path: Path) -> None:
    raw = json.loads(path.read_text())
    ref = SourceRef("gcn.notices.sample", 0, 0, gcn_json.FORMAT)
    if (reason := _rejection(path)) is not None:
        with pytest.raises(DecodeError, match=reason):
            gcn_json.decode(path.read_bytes(), ref)
        return
    alert = gcn_json.decode(path.read_bytes(), ref)
    # Event time to the nanosecond of what the notice says, whatever its spelling.
    assert alert.time_ns == parse_utc_ns(raw["trigger_time"])
    assert alert.far_hz == raw.get("far")
    expected_type = {
        "retraction": AlertType.RETRACTION,
        "update": AlertType.UPDATE,
        "subsequent": AlertType.UPDATE,
    }.get(raw.get("alert_type"), AlertType.INITIAL)
    assert alert.alert_type is expected_type
    assert alert.role is (Role.TEST if raw.get("alert_tense") == "test" else Role.OBSERVATION)
    loc = alert.localization
    if alert.alert_type is AlertType.RETRACTION or "ra_dec_error" not in raw:
        assert loc is None
    elif isinstance(raw["ra_dec_error"], list):
        assert isinstance(loc, Ellipse)
        assert loc.semi_major_deg == max(raw["ra_dec_error"][:2])
    else:
        assert isinstance(loc, Circle)
        assert (loc.ra_deg, loc.dec_deg) == (raw["ra"], raw["dec"])
        assert loc.radius_deg == raw["ra_dec_error"]
        assert loc.containment == raw.get("containment_probability", 0.9)


def test_known_values_of_named_notices() -> None:
    by_name = {p.name: p for p in FILES}
    if not by_name:
        pytest.skip("no GCN JSON samples")
    ref = SourceRef("gcn.notices.icecube.x", 0, 0, "")
    ic = gcn_json.decode(
        by_name["single_neutrino_alerts.gold_bronze_track_alerts.example.json"].read_bytes(), ref
    )
    assert (ic.alert_id, ic.source, ic.far_hz) == ("IceCube-230416A", "IceCube", 8.029e-08)
    assert (
        ic.time_ns == parse_utc_ns("2023-04-16T05:22:26.150574")
        and ic.time_ns % NS_PER_S == 150_574_000
    )
    assert ic.localization == Circle(345.82, 9.01, 0.5, 0.9)
    km3 = (
        gcn_json.decode(by_name["alert.example.json"].read_bytes(), ref)
        if "alert.example.json" in by_name
        else None
    )
    assert km3 is not None
    fermi = gcn_json.decode(by_name["trigger.final.example.json"].read_bytes(), ref)
    assert (fermi.alert_id, fermi.revision) == ("Fermi-745121685", "UPDATE#7")
    assert fermi.localization == Circle(29.24, -63.62, 1.0, 0.68)
    ellipse = gcn_json.decode(by_name["gsc.unknown.ellipse.example.json"].read_bytes(), ref)
    assert ellipse.localization == Ellipse(346.56, 18.61, 0.22, 0.19, 153.0, 0.9)
    chime = gcn_json.decode(by_name["frb.detection.example.json"].read_bytes(), ref)
    assert chime.source in {"CHIME", "DSA-110"} and chime.revision == "INITIAL"
    lvk_nu = gcn_json.decode(by_name["lvk_nu_track_search.example.json"].read_bytes(), ref)
    assert (lvk_nu.alert_id, lvk_nu.source) == ("S230914ak", "IceCube")
