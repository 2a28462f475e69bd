"""Issue 16 part 5: the GCN JSON and VOEvent decoders on notices as the missions send them.

Identity without an id (Einstein Probe WXT), the containment each Error2Radius really has,
embedded HEALPix maps in unified JSON, and the schema's ellipse convention. Packets are built
here in the shape of the real ones; the real samples in ../shared/data are read where named.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from astropy.io import fits

from mmstream.errors import DecodeError
from mmstream.formats import gcn_json, voevent
from mmstream.formats.limits import Limits
from mmstream.formats.router import decode_alert
from mmstream.formats.validate import validate_alert
from mmstream.model import AlertType, Circle, Ellipse, FlatSkyMap, MultiOrderSkyMap, SourceRef

REF = SourceRef("gcn.notices.einstein_probe.wxt.alert", 0, 7, "")
EP_SCHEMA = "https://gcn.nasa.gov/schema/main/gcn/notices/einstein_probe/wxt/alert.schema.json"
GUANO_SCHEMA = "https://gcn.nasa.gov/schema/main/gcn/notices/swift/bat/Guano.schema.json"
GBM_SCHEMA = "https://gcn.nasa.gov/schema/main/gcn/notices/fermi/gbm/trigger.schema.json"
SCHEMAS = Path("gcn-json/gcn-schema/gcn/notices")


def _json(rec: dict[str, Any], limits: Limits | None = None) -> Any:
    data = json.dumps(rec).encode()
    return gcn_json.decode(data, REF) if limits is None else gcn_json.decode(data, REF, limits)


def _ep(**fields: Any) -> dict[str, Any]:
    """An EP/WXT alert as the schema allows it: none of id, event_name, ref_ID."""
    rec = {"$schema": EP_SCHEMA, "instrument": "WXT", "trigger_time": "2024-02-24T12:34:56.789Z",
           "ra": 120.0, "dec": 40.0, "ra_dec_error": 0.05, "image_snr": 9.1}  # fmt: skip
    return {**rec, **fields}


# ------------------------------------------------------------ 1. identity without an id
def test_ep_notice_without_any_id_is_named_after_mission_instrument_and_trigger() -> None:
    alert = _json(_ep())
    assert alert.alert_id == "EinsteinProbe-WXT-20240224T123456.789Z"
    assert alert.source == "EinsteinProbe"
    assert alert.localization == Circle(120.0, 40.0, 0.05, 0.9)


def test_fallback_id_is_the_same_for_a_resent_notice_and_for_every_revision() -> None:
    first = _json(_ep())
    assert _json(_ep()).alert_id == first.alert_id  # the same notice twice
    # A later revision of the same trigger: another type, counter, position, time spelling.
    later = _json(_ep(alert_type="update", record_number=2, ra=120.01,
                      trigger_time="2024-02-24T12:34:56.789000"))  # fmt: skip
    assert later.alert_id == first.alert_id
    assert later.revision != first.revision


def test_fallback_id_separates_other_triggers_and_instruments() -> None:
    base = _json(_ep()).alert_id
    assert _json(_ep(trigger_time="2024-02-24T12:34:57.789Z")).alert_id != base
    assert _json(_ep(instrument="FXT")).alert_id == "EinsteinProbe-FXT-20240224T123456.789Z"


@pytest.mark.parametrize(
    ("trigger_time", "stamp"),
    [
        ("2024-02-24T12:34:56Z", "20240224T123456.000Z"),
        ("2024-02-24T12:34:56.7899Z", "20240224T123456.789Z"),  # truncated, not rounded
        ("2024-02-24 12:34:56.5+00:00", "20240224T123456.500Z"),  # CHIME's spelling
    ],
)
def test_fallback_time_is_compact_utc_to_the_millisecond(trigger_time: str, stamp: str) -> None:
    assert _json(_ep(trigger_time=trigger_time)).alert_id == f"EinsteinProbe-WXT-{stamp}"


def test_fallback_applies_to_any_mission_and_to_notices_without_instrument() -> None:
    rec = {"mission": "SVOM", "trigger_time": "2025-02-19T15:50:46.036Z", "alert_type": "initial"}
    assert _json(rec).alert_id == "SVOM-20250219T155046.036Z"
    glowbug = {
        "mission": "GLOWBUG",
        "instrument": "GBM-like",
        "trigger_time": "2023-04-23T18:56:09Z",
    }
    assert _json(glowbug).alert_id == "GLOWBUG-GBM-like-20230423T185609.000Z"


def test_an_id_event_name_or_ref_id_still_wins_over_the_fallback() -> None:
    assert _json(_ep(id=["01708973486"])).alert_id == "EinsteinProbe-01708973486"
    assert _json(_ep(event_name="EP240224a")).alert_id == "EP240224a"
    assert _json(_ep(ref_ID="S240224x", id=["1"])).alert_id == "S240224x"


def test_real_ep_example_without_its_id(shared_data: Path) -> None:
    rec = json.loads((shared_data / SCHEMAS / "einstein_probe/wxt/alert.example.json").read_text())
    assert _json(rec).alert_id == "EinsteinProbe-01708973486"
    del rec["id"]
    assert _json(rec).alert_id == "EinsteinProbe-WXT-20240301T214605.130Z"  # 21:46:05.13Z


# ------------------------------------------------------- 2. VOEvent Error2Radius containment
def _voe(ivorn: str, params: str = "", pos: str = "<C1>10.5</C1><C2>-20.25</C2>",
         err: str = "1.1850", unit: str = "deg", system: str = "UTC-FK5-GEO") -> bytes:  # fmt: skip
    return (
        '<?xml version="1.0"?><voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
        f'ivorn="{ivorn}" role="observation" version="2.0"><What>{params}</What><WhereWhen>'
        f'<ObsDataLocation><ObservationLocation><AstroCoordSystem id="{system}"/>'
        f'<AstroCoords coord_system_id="{system}"><Time unit="s"><TimeInstant>'
        "<ISOTime>2019-07-30T20:50:41.31</ISOTime></TimeInstant></Time>"
        f'<Position2D unit="{unit}"><Name1>RA</Name1><Name2>Dec</Name2><Value2>{pos}</Value2>'
        f"<Error2Radius>{err}</Error2Radius></Position2D></AstroCoords></ObservationLocation>"
        "</ObsDataLocation></WhereWhen></voe:VOEvent>"
    ).encode()


AMON_GOLD = (
    "ivo://nasa.gsfc.gcn/AMON#ICECUBE_GOLD_Event2019-07-30T20:50:41.31_24_132910_057145925_1"
)


def _amon_params(src90: str = "1.1850", src50: str = "0.6624", packet: str = "173") -> str:
    return (
        f'<Param name="Packet_Type" value="{packet}"/><Param name="Pkt_Ser_Num" value="2"/>'
        '<Param name="run_id" value="132910"/><Param name="event_id" value="57145925"/>'
        f'<Param name="src_error_90" value="{src90}" unit="deg"/>'
        f'<Param name="src_error_50" value="{src50}" unit="deg"/>'
    )


def test_amon_icecube_error2radius_is_the_90_percent_radius() -> None:
    alert = voevent.decode(_voe(AMON_GOLD, _amon_params()), REF)
    assert alert.source == "IceCube"
    assert alert.localization == Circle(10.5, -20.25, 1.185, 0.9)
    assert (alert.extra["src_error_90"], alert.extra["src_error_50"]) == ("1.1850", "0.6624")


def test_the_src_error_param_equal_to_error2radius_sets_the_level() -> None:
    alert = voevent.decode(_voe(AMON_GOLD, _amon_params(), err="0.6624"), REF)
    assert alert.localization == Circle(10.5, -20.25, 0.6624, 0.5)
    # Neither Param matches: IceCube's documented 90 %.
    alert = voevent.decode(_voe(AMON_GOLD, _amon_params("2.0", "1.0"), err="1.5"), REF)
    assert alert.localization == Circle(10.5, -20.25, 1.5, 0.9)


NEUTRINO_VOEVENTS = ["fink-mm-icecube_3028.xml", "fink-mm-icecube_45412.xml",
                     "fink-mm-icecube_825.xml", "growth-AMON_ICECUBE_BRONZE_190819.xml",
                     "growth-AMON_ICECUBE_GOLD_190730.xml"]  # fmt: skip


@pytest.mark.parametrize("name", NEUTRINO_VOEVENTS)
def test_real_icecube_gold_bronze_cascade_voevents_are_90_percent(
    name: str, shared_data: Path
) -> None:
    path = shared_data / "neutrino" / "voevent" / name
    root = ElementTree.parse(path).getroot()
    params = {el.get("name"): el.get("value") for el in root.iter() if el.tag == "Param"}
    radius = float(next(el.text for el in root.iter() if el.tag == "Error2Radius") or "nan")
    assert radius == float(params["src_error_90"]) != float(params["src_error_50"])
    loc = voevent.decode(path.read_bytes(), REF).localization
    assert isinstance(loc, Circle) and (loc.radius_deg, loc.containment) == (radius, 0.9)


def test_real_amon_hese_is_90_percent_and_coincidence_has_no_region(shared_data: Path) -> None:
    hese = voevent.decode((shared_data / "voevent/growth-too-marshal/AMON_151115.xml").read_bytes(),
                          REF)  # fmt: skip
    assert hese.localization == Circle(144.8915, -27.9826, 1.0, 0.9)  # GCN: HESE 90 %, stat+sys
    coinc = voevent.decode((shared_data / "voevent/growth-too-marshal/AMON_150529.xml").read_bytes(),
                           REF)  # fmt: skip
    assert coinc.localization is None  # 0,0,0


@pytest.mark.parametrize(
    ("ivorn", "containment"),
    [
        ("ivo://nasa.gsfc.gcn/Fermi#GBM_Gnd_Pos_2022-08-07T06:53:05.16_681547990_57-912", 0.68),
        ("ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_1118357-182", 0.9),
        ("ivo://nasa.gsfc.gcn/INTEGRAL#Wakeup_Pos_010042-0-941", 0.9),
        ("ivo://nasa.gsfc.gcn/MAXI#Known_source_Pos_2018-08-16T19:22:36.00_8346898070-0-894", 0.9),
        ("ivo://org.svom/fsc#sb25021904_eclairs-wakeup", 0.9),
        ("ivo://lvk.internal/einsteinprobe#grb-2024-08-01T09:07:13.799Z", 0.9),
        ("ivo://nasa.gsfc.gcn/AGILE#A_Alert_2019-03-05T13:05:19.33_000000-053", 0.9),
    ],
)
def test_mission_containment_levels(ivorn: str, containment: float) -> None:
    loc = voevent.decode(
        _voe(ivorn, '<Param name="TrigID" value="1"/>', err="3.5"), REF
    ).localization
    assert loc == Circle(10.5, -20.25, 3.5, containment)


def test_snews_whole_sky_circle_is_no_localization(shared_data: Path) -> None:
    ivorn = "ivo://nasa.gsfc.gcn/SNEWS#Event2018-09-18T16:00:01.00_1000194-580"
    built = _voe(ivorn, '<Param name="TrigID" value="1000194"/>', "<C1>0</C1><C2>0</C2>", "360")
    assert voevent.decode(built, REF).localization is None
    real = voevent.decode((shared_data / "voevent/gwcelery/snews_gcn.xml").read_bytes(), REF)
    assert real.source == "SNEWS" and real.localization is None


@pytest.mark.parametrize(
    ("unit", "system", "reason"),
    [("rad", "UTC-FK5-GEO", "unit 'rad' is not deg"), ("deg", "UTC-GAL-TOPO", "not equatorial")],
)
def test_positions_in_other_units_or_frames_are_refused(
    unit: str, system: str, reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        voevent.decode(_voe(AMON_GOLD, _amon_params(), unit=unit, system=system), REF)


# ------------------------------------------------------------- 3. embedded HEALPix maps
def _fits(hdu: fits.BinTableHDU) -> bytes:
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    return buf.getvalue()


def _flat_fits(prob: np.ndarray) -> bytes:
    hdu = fits.BinTableHDU.from_columns([fits.Column(name="PROB", format="D", array=prob)])
    for key, value in (("PIXTYPE", "HEALPIX"), ("ORDERING", "NESTED"), ("COORDSYS", "C"),
                       ("NSIDE", 1), ("INDXSCHM", "IMPLICIT")):  # fmt: skip
        hdu.header[key] = value
    return _fits(hdu)


# Order 0 (12 pixels): pixel 4 holds 0.5, the other 11 share the rest.
FLAT_PROB = np.array([0.5 / 11] * 4 + [0.5] + [0.5 / 11] * 7)
# Order-0 pixels 1..11 (UNIQ 5..15) uniform; pixel 0 split into its 4 order-1 children
# (UNIQ 16..19, pi/12 sr each) holding 1/12 of the probability as 4:2:1:1.
MOC_UNIQ = np.arange(5, 20)  # 5..15 at order 0, then 16..19 at order 1
MOC_DENSITY = np.array([1 / (4 * math.pi)] * 11 + [0.5 / math.pi, 0.25 / math.pi,
                                                   0.125 / math.pi, 0.125 / math.pi])  # fmt: skip


def _moc_fits() -> bytes:
    cols = [fits.Column(name="UNIQ", format="K", array=MOC_UNIQ),
            fits.Column(name="PROBDENSITY", format="D", array=MOC_DENSITY)]  # fmt: skip
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["PIXTYPE"], hdu.header["ORDERING"] = "HEALPIX", "NUNIQ"
    return _fits(hdu)


def _guano(healpix: bytes | str, **fields: Any) -> dict[str, Any]:
    text = healpix if isinstance(healpix, str) else base64.b64encode(healpix).decode()
    rec = {"$schema": GUANO_SCHEMA, "mission": "Swift", "instrument": "BAT-GUANO",
           "record_number": 2, "alert_type": "update", "trigger_time": "2022-12-31T21:46:05.13Z",
           "id": ["694215995"], "healpix_file": text, "systematic_included": True}  # fmt: skip
    return {**rec, **fields}


def test_multi_order_map_becomes_the_localization_and_the_circle_goes_to_extra() -> None:
    alert = _json(_guano(_moc_fits(), ra=336.26, dec=25.139, ra_dec_error=0.5,
                         containment_probability=0.9))  # fmt: skip
    loc = alert.localization
    assert isinstance(loc, MultiOrderSkyMap)
    np.testing.assert_array_equal(loc.uniq, MOC_UNIQ)
    np.testing.assert_allclose(loc.probdensity, MOC_DENSITY)
    assert alert.extra["error_region"] == {"ra": 336.26, "dec": 25.139, "error_deg": 0.5,
                                           "containment": 0.9}  # fmt: skip
    assert alert.extra["systematic_included"] is True
    validate_alert(alert, received_ns=alert.time_ns or 0)


def test_flat_gzip_map_in_a_gbm_notice_keeps_url_and_the_68_percent_circle() -> None:
    url = "http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/2024/bn240812094/x.fit"
    rec = {"$schema": GBM_SCHEMA, "mission": "Fermi", "instrument": "GBM", "id": ["745121685"],
           "alert_type": "update", "record_number": 5, "trigger_time": "2024-08-24T02:14:40.43",
           "ra": 92.17, "dec": -66.98, "ra_dec_error": 1.34, "containment_probability": 0.68,
           "healpix_url": url, "healpix_file": base64.b64encode(gzip.compress(
               _flat_fits(FLAT_PROB))).decode()}  # fmt: skip
    alert = _json(rec)
    assert isinstance(alert.localization, FlatSkyMap)
    assert (alert.localization.nside, alert.localization.nest) == (1, True)
    np.testing.assert_allclose(alert.localization.prob, FLAT_PROB)
    assert alert.extra["healpix_url"] == url
    assert alert.extra["error_region"] == {"ra": 92.17, "dec": -66.98, "error_deg": 1.34,
                                           "containment": 0.68}  # fmt: skip


def test_map_alone_and_line_wrapped_base64() -> None:
    text = base64.encodebytes(_moc_fits()).decode()  # MIME style: a newline every 76 chars
    alert = _json(_guano(text))
    assert isinstance(alert.localization, MultiOrderSkyMap)
    assert "error_region" not in alert.extra


def test_real_swift_and_fermi_maps_embedded(shared_data: Path) -> None:
    swift = (shared_data / "skymaps/gwcelery/swift_skymap.multiorder.fits").read_bytes()
    with fits.open(io.BytesIO(swift)) as hdul:
        rows = len(hdul[1].data)
    loc = _json(_guano(swift)).localization
    assert isinstance(loc, MultiOrderSkyMap) and loc.uniq.size == rows
    fermi = (shared_data / "skymaps/gwcelery/fermi_skymap.fits.gz").read_bytes()
    loc = _json(_guano(fermi, mission="Fermi", instrument="GBM")).localization
    assert isinstance(loc, FlatSkyMap) and loc.prob.size == 768  # nside 8
    assert loc.prob.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("healpix", "reason"),
    [
        ("hhhh...", "healpix_file is not valid base64"),  # the gcn-schema example's placeholder
        ("stuff", "healpix_file is not valid base64"),  # BurstCube's
        (base64.b64encode(b"SIMPLE  = T but not really FITS").decode(), "healpix_file: not a FITS"),
        ("", "healpix_file is empty"),
        (base64.b64encode(_flat_fits(np.full(100, 0.01))).decode(), "healpix_file: unreadable"),
        (base64.b64encode(gzip.compress(gzip.compress(b"x" * 64))).decode(), "gzip inside gzip"),
    ],
)
def test_corrupt_healpix_file_is_a_decode_error_with_the_reason(healpix: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        _json(_guano(healpix))
    with pytest.raises(DecodeError, match=reason):  # and at the decoders' boundary too
        decode_alert("gcn.notices.swift.bat.guano", 0, 0, json.dumps(_guano(healpix)).encode())


def test_healpix_file_of_another_type_is_refused() -> None:
    with pytest.raises(DecodeError, match="healpix_file is a int"):
        _json(_guano("x") | {"healpix_file": 12})


def test_inflated_map_is_bounded_by_max_decompressed_bytes() -> None:
    bomb = base64.b64encode(gzip.compress(b"\0" * (1 << 20))).decode()
    with pytest.raises(DecodeError, match="max_decompressed_bytes"):
        _json(_guano(bomb), Limits(max_decompressed_bytes=64 * 1024))


def test_a_retraction_does_not_read_its_map() -> None:
    alert = _json(_guano("hhhh...", alert_type="retraction"))
    assert alert.alert_type is AlertType.RETRACTION and alert.localization is None


# ------------------------------------------------- 4. JSON regions as the schema defines them
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ([0.5], Circle(10.0, 20.0, 0.5, 0.9)),  # the semi-minor defaults to the semi-major
        ([0.22, 0.19, 153], Ellipse(10.0, 20.0, 0.22, 0.19, 153.0, 0.9)),  # MAXI
        ([0.016, 0.02], Ellipse(10.0, 20.0, 0.02, 0.016, 90.0, 0.9)),  # DSA-110: angle 0 north
        ([0.5, 0.6, 30], Ellipse(10.0, 20.0, 0.6, 0.5, 120.0, 0.9)),
        ([0.5, 0.6, 170], Ellipse(10.0, 20.0, 0.6, 0.5, 80.0, 0.9)),
        (360.0, None),  # SNEWS: the whole sky
    ],
)
def test_ra_dec_error_shapes(error: Any, expected: Circle | Ellipse | None) -> None:
    rec = {"mission": "X", "id": ["1"], "trigger_time": "2024-01-01T00:00:00Z", "ra": 10.0,
           "dec": 20.0, "ra_dec_error": error}  # fmt: skip
    assert _json(rec).localization == expected


def test_null_position_is_no_localization() -> None:
    # SNEWS as the classic-to-JSON converter writes it (its containment 68.0 is a percent).
    rec = {"id": [1000464], "ra": None, "dec": None, "ra_dec_error": 360.0,
           "containment_probability": 68.0, "trigger_time": "2024-05-21T16:00:01.000Z"}  # fmt: skip
    assert _json(rec).localization is None


def test_gbm_containment_is_the_notice_field_else_the_schema_default() -> None:
    rec = {"$schema": GBM_SCHEMA, "mission": "Fermi", "id": ["745121685"], "ra": 29.24,
           "dec": -63.62, "ra_dec_error": 1, "trigger_time": "2024-08-24T02:14:40.43"}  # fmt: skip
    assert _json(rec | {"containment_probability": 0.68}).localization == Circle(
        29.24, -63.62, 1.0, 0.68
    )
    assert _json(rec).localization == Circle(29.24, -63.62, 1.0, 0.9)  # Localization default


@pytest.mark.parametrize("name", ["final", "flight1", "flight2", "flight3", "ground1", "ground2"])
def test_real_gbm_json_positions_are_68_percent(name: str, shared_data: Path) -> None:
    path = shared_data / SCHEMAS / f"fermi/gbm/trigger.{name}.example.json"
    raw = json.loads(path.read_text())
    alert = gcn_json.decode(path.read_bytes(), REF)
    assert alert.localization == Circle(raw["ra"], raw["dec"], raw["ra_dec_error"], 0.68)


def test_km3net_50_percent_radius_is_kept_beside_the_90_percent_circle(shared_data: Path) -> None:
    alert = gcn_json.decode((shared_data / SCHEMAS / "km3net/alert.example.json").read_bytes(), REF)
    assert alert.localization == Circle(10.82, 20.01, 0.9, 0.9)
    assert alert.extra["src_error_50"] == 0.49
