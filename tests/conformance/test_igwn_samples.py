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


def test_json_packets_match_their_avro_twins(shared_data) -> None:
    folder = shared_data / "igwn" / "userguide"
    pairs = [
        (j, j.with_suffix(".avro"))
        for j in sorted(folder.glob("*.json"))
        if not j.name.endswith("_displayexample.json") and j.with_suffix(".avro").exists()
    ]
    if not pairs:
        pytest.skip("no IGWN JSON/Avro pairs")
    for json_path, avro_path in pairs:
        a = igwn.decode_json(json_path.read_bytes(), SourceRef("igwn.gwalert", 0, 0, ""))
        b = _decode(avro_path)
        assert (a.alert_id, a.revision, a.alert_type, a.time_ns, a.far_hz) == (
            b.alert_id,
            b.revision,
            b.alert_type,
            b.time_ns,
            b.far_hz,
        )
        if b.skymap is not None:
            assert a.skymap is not None
            np.testing.assert_array_equal(a.skymap.uniq, b.skymap.uniq)


def test_truncated_display_examples_are_refused(shared_data) -> None:
    from mmstream.errors import DecodeError

    files = sorted((shared_data / "igwn" / "userguide").glob("*_displayexample.json"))
    if not files:
        pytest.skip("no display examples")
    for path in files:
        with pytest.raises(DecodeError):
            igwn.decode_json(path.read_bytes(), SourceRef("igwn.gwalert", 0, 0, ""))


def test_skyportal_real_event_packets(shared_data) -> None:
    folder = shared_data / "igwn" / "skyportal"
    if not folder.is_dir():
        pytest.skip("no skyportal packets")
    pre = igwn.decode_json(
        (folder / "igwn_gwalert_preliminary.json").read_bytes(), SourceRef("igwn.gwalert", 0, 0, "")
    )
    assert pre.alert_type is AlertType.PRELIMINARY and pre.skymap is not None
    total = np.sum(pre.skymap.probdensity * pixel_area_sr(pre.skymap.uniq))
    assert total == pytest.approx(1.0, abs=1e-6)
    ret = igwn.decode_json(
        (folder / "igwn_gwalert_retraction.json").read_bytes(), SourceRef("igwn.gwalert", 0, 0, "")
    )
    assert ret.alert_type is AlertType.RETRACTION and ret.alert_id == pre.alert_id
