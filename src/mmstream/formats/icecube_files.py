"""IceCube's public data files, for replaying real neutrino data through mmstream.

- 10-year point-source release (arXiv:2101.09836): event tables (MJD, log10 E, angular
  error, RA, Dec, ...) -> DetectorEvent; uptime tables (MJD start/stop) -> good-time
  intervals in UTC ns.
- The Gold/Bronze track and cascade alert catalogs (CSV) -> Alert, FAR converted from
  yr^-1 to Hz, error region as a circle of the largest 90 % error.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from astropy.time import Time

from mmstream.errors import DecodeError
from mmstream.formats.validate import check_position
from mmstream.model import Alert as AlertModel
from mmstream.model import AlertType, Circle, DetectorEvent, Role, SourceRef
from mmstream.times import parse_utc_ns

SECONDS_PER_YEAR = 365.25 * 86_400


def mjd_to_ns(mjd: np.ndarray) -> np.ndarray:
    """UTC MJD to POSIX nanoseconds, exactly as astropy converts it."""
    t = Time(mjd, format="mjd", scale="utc")
    return np.asarray(t.datetime64.astype("datetime64[ns]").astype(np.int64))


def _table(path: Path, columns: int) -> np.ndarray:
    try:
        table = np.loadtxt(path, comments="#", ndmin=2)
    except ValueError as exc:
        raise DecodeError(f"{path.name}: not a numeric table: {exc}") from exc
    if table.shape[1] != columns:
        raise DecodeError(f"{path.name}: {table.shape[1]} columns, expected {columns}")
    return table


def read_ps_events(path: Path, detector: str = "icecube") -> list[DetectorEvent]:
    """Events of a 10-year point-source table, in file order, seq counting from 0."""
    t = _table(path, 7)
    times = mjd_to_ns(t[:, 0])
    stem = path.name.split(".")[0]
    return [
        DetectorEvent(
            event_id=f"{stem}-{i}",
            detector=detector,
            seq=i,
            time_ns=int(times[i]),
            ra_deg=float(t[i, 3]),
            dec_deg=float(t[i, 4]),
            sigma_deg=float(t[i, 2]),
            energy_gev=float(10 ** t[i, 1]),
            source=stem,
        )
        for i in range(t.shape[0])
    ]


def read_uptime(path: Path) -> list[tuple[int, int]]:
    """Good-time intervals (start_ns, stop_ns) of an uptime table."""
    t = _table(path, 2)
    starts, stops = mjd_to_ns(t[:, 0]), mjd_to_ns(t[:, 1])
    if np.any(stops < starts):
        raise DecodeError(f"{path.name}: an interval stops before it starts")
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def read_alert_catalog(path: Path) -> list[AlertModel]:
    """Rows of the Gold/Bronze or cascade alert catalog as alerts (one revision each)."""
    alerts = []
    reader = csv.DictReader(io.StringIO(path.read_text()))
    for n, row in enumerate(reader):
        try:
            ra, dec = float(row["RA"]), float(row["DEC"])
            keys = ("RA_ERR_PLUS", "RA_ERR_MINUS", "DEC_ERR_PLUS", "DEC_ERR_MINUS")
            errors = [float(row[k]) for k in keys]
            far_per_year = float(row["FAR"])
        except (KeyError, ValueError) as exc:
            raise DecodeError(f"{path.name} row {n + 2}: {exc}") from exc
        check_position(ra, dec)
        alerts.append(
            AlertModel(
                alert_id=row["NAME"],
                revision=f"{row['RUNID']}_{row['EVENTID']}#row{n + 2}",
                alert_type=AlertType.INITIAL,
                role=Role.OBSERVATION,
                source="IceCube",
                time_ns=parse_utc_ns(row["START"]),
                far_hz=far_per_year / SECONDS_PER_YEAR,
                localization=Circle(ra, dec, max(errors), 0.9),
                ref=SourceRef(path.name, 0, n, "icecube.catalog.csv"),
                extra={
                    "run_id": row["RUNID"],
                    "event_id": row["EVENTID"],
                    "type": row["I3TYPE"],
                    "energy_tev": row["ENERGY"],
                    "signalness": row["SIGNAL"],
                },
            )
        )
    return alerts
