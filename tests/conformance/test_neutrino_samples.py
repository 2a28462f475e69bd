"""IceCube public tables and SNEWS 2.0 messages: read with their values, or refused with why."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from mmstream.errors import DecodeError
from mmstream.formats import gcn_json
from mmstream.formats.icecube_files import (
    SECONDS_PER_YEAR,
    read_alert_catalog,
    read_ps_events,
    read_uptime,
)
from mmstream.model import Circle, SourceRef
from mmstream.times import parse_utc_ns
from tests.conformance.conftest import ids, samples, skip_if_empty

PS = samples("neutrino/icecube_10year_ps/*_exp.head*.csv")
SNEWS = samples("neutrino/snews2/*.json")


@pytest.mark.parametrize(
    "path",
    [p for p in PS if not p.name.startswith("uptime")],
    ids=ids([p for p in PS if not p.name.startswith("uptime")]),
)
def test_point_source_events(path: Path) -> None:
    rows = [
        line.split()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    events = read_ps_events(path)
    assert len(events) == len(rows)
    first = events[0]
    assert first.ra_deg == float(rows[0][3]) and first.dec_deg == float(rows[0][4])
    assert first.sigma_deg == float(rows[0][2])
    assert first.energy_gev == pytest.approx(10 ** float(rows[0][1]))
    # Independent of astropy: MJD 40587 is the Unix epoch, and UTC MJD days are 86400 s.
    expected_ns = (float(rows[0][0]) - 40587.0) * 86400e9
    assert abs(first.time_ns - expected_ns) < 2_000  # the float's own resolution
    times = np.array([e.time_ns for e in events])
    assert np.all(np.diff(times) >= 0)


def test_uptime_intervals() -> None:
    paths = samples("neutrino/icecube_10year_ps/uptime_*.csv")
    skip_if_empty(paths)
    intervals = read_uptime(paths[0])
    assert len(intervals) == 10
    assert all(start < stop for start, stop in intervals)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))


def test_alert_catalog() -> None:
    paths = samples("neutrino/icecube_alert_catalog/IceCube_Gold_Bronze_Tracks.csv")
    skip_if_empty(paths)
    alerts = read_alert_catalog(paths[0])
    assert len(alerts) == len([ln for ln in paths[0].read_text().splitlines() if ln.strip()]) - 1
    first = alerts[0]
    assert first.alert_id == "IC110514A"
    assert first.time_ns == parse_utc_ns("2011-05-14T01:32:22.654109")
    assert first.far_hz == pytest.approx(1.3 / SECONDS_PER_YEAR)
    assert first.localization == Circle(138.47, -1.94, 6.68, 0.9)
    assert len({(a.alert_id, a.revision) for a in alerts}) == len(alerts)
    by_name: dict[str, list] = {}
    for a in alerts:
        by_name.setdefault(a.alert_id, []).append(a)
    # Real-catalog quirks, kept visible: one alert listed twice with revised errors, and
    # one name given to two different events (different run and event ids).
    twice = by_name["IC231103A"]
    assert len(twice) == 2 and twice[0].extra["event_id"] == twice[1].extra["event_id"]
    clash = by_name["IC240327A"]
    assert len({a.extra["run_id"] for a in clash}) == 2


@pytest.mark.parametrize("path", SNEWS, ids=ids(SNEWS))
def test_snews_messages_are_refused_as_not_alerts(path: Path) -> None:
    reason = "SNEWS 2.0 detector message" if path.name.startswith("example_") else "no trigger_time"
    with pytest.raises(DecodeError, match=reason):
        gcn_json.decode(path.read_bytes(), SourceRef("snews", 0, 0, ""))
