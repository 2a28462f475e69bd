"""The public LVK user-guide packets decode into the model as their documentation says."""

import numpy as np
import pytest

from mmstream.formats import igwn
from mmstream.model import AlertType, Role, SourceRef
from mmstream.sky.moc import pixel_area_sr


def _decode(path):
    return igwn.decode(path.read_bytes(), SourceRef("igwn.gwalert", 0, 0, igwn.FORMAT))


def test_every_userguide_avro_packet_decodes(shared_data) -> None:
    files = sorted((shared_data / "igwn" / "userguide").glob("*.avro"))
    if not files:
        pytest.skip("no user-guide Avro packets")
    alerts = [_decode(f) for f in files]
    assert {a.alert_id for a in alerts} == {"MS181101ab"}
    assert all(a.role is Role.TEST for a in alerts)
    # Every notice has its own revision, though two UPDATEs share time_created.
    assert len({a.revision for a in alerts}) == len(alerts)
    for alert in alerts:
        if alert.alert_type is AlertType.RETRACTION:
            assert alert.skymap is None and alert.time_ns is None
        else:
            assert alert.time_ns == 1541110966654000000
            assert alert.far_hz == pytest.approx(9.11069936486e-14)
            assert alert.skymap is not None
            total = np.sum(alert.skymap.probdensity * pixel_area_sr(alert.skymap.uniq))
            assert total == pytest.approx(1.0, rel=1e-6)


def test_external_coincidence_is_kept(shared_data) -> None:
    path = shared_data / "igwn" / "userguide" / "MS181101ab-ext-update.avro"
    if not path.exists():
        pytest.skip("no ext-update packet")
    alert = _decode(path)
    assert alert.extra["external_coinc"]["observatory"] == "Fermi"
    assert alert.revision.endswith("+Fermi:524666471")
