"""Every VOEvent sample decodes, with its id, time, type, FAR (in Hz) and error circle."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from mmstream.formats import voevent
from mmstream.model import AlertType, Circle, Role, SourceRef
from mmstream.times import parse_utc_ns
from tests.conformance.conftest import ids, samples

FILES = samples("voevent/**/*.xml", "neutrino/voevent/*.xml")
REF = SourceRef("gcn.classic.voevent.sample", 0, 0, voevent.FORMAT)


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_sample_decodes_to_the_values_in_its_xml(path: Path) -> None:
    root = ElementTree.parse(path).getroot()
    alert = voevent.decode(path.read_bytes(), REF)
    iso = next(el.text for el in root.iter() if el.tag.endswith("ISOTime"))
    assert alert.time_ns == parse_utc_ns(iso)
    role = root.attrib.get("role")
    assert alert.role is (Role.TEST if role == "test" else Role.OBSERVATION)
    assert alert.extra["ivorn"] == root.attrib["ivorn"]
    if isinstance(alert.localization, Circle):
        c1 = float(next(el.text for el in root.iter() if el.tag.endswith("C1")))
        assert alert.localization.ra_deg == c1


def _by_name(name: str) -> Path:
    for p in FILES:
        if p.name == name:
            return p
    pytest.skip(f"{name} absent")


def test_lvk_mock_series() -> None:
    alert = voevent.decode(_by_name("MS181101ab-2-Preliminary.xml").read_bytes(), REF)
    assert (alert.alert_id, alert.source, alert.alert_type) == (
        "MS181101ab",
        "LVK",
        AlertType.PRELIMINARY,
    )
    assert alert.revision == "2-Preliminary" and alert.role is Role.TEST
    assert alert.far_hz == pytest.approx(9.11069936486e-14)
    assert alert.time_ns == parse_utc_ns("2018-11-01T22:22:46.654437")
    assert alert.localization is None and ".multiorder.fits" in alert.extra["skymap_fits"]
    retraction = voevent.decode(_by_name("MS181101ab-5-Retraction.xml").read_bytes(), REF)
    assert retraction.alert_type is AlertType.RETRACTION


def test_amon_icecube_far_is_converted_from_per_year_to_hz() -> None:
    alert = voevent.decode(_by_name("growth-AMON_ICECUBE_GOLD_190730.xml").read_bytes(), REF)
    assert alert.source == "IceCube" and alert.alert_id == "IceCube-132910_57145925"
    assert alert.far_hz == pytest.approx(0.6770 / (365.25 * 86400))
    # Error2Radius is the packet's src_error_90 ("90% containment"), not its src_error_50.
    assert alert.localization == Circle(225.7899, 10.47, 1.185, 0.9)


def test_fermi_gbm_error_is_one_sigma() -> None:
    alert = voevent.decode(_by_name("GRB180116A_Fermi_GBM_Fin_Pos.xml").read_bytes(), REF)
    assert (alert.alert_id, alert.source) == ("Fermi-537755817", "Fermi")
    assert alert.localization == Circle(212.77, 27.05, 5.2, 0.68)
    assert alert.time_ns == parse_utc_ns("2018-01-16T00:36:52.81")


def test_positionless_notices_have_no_region() -> None:
    assert voevent.decode(_by_name("AMON_150529.xml").read_bytes(), REF).localization is None
