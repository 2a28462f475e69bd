"""The sky-map table reader agrees with astropy on real maps and hands unusual ones back."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mmstream.sky.fitstable import read_table
from mmstream.sky.moc import gunzip_if_needed, read_fits_bytes

MAPS = [
    "userguide/bayestar.multiorder.fits",  # UNIQ K, four D columns
    "gwcelery/swift_skymap.multiorder.fits",  # UNIQ J, PROBDENSITY E
    "gwcelery/fermi_skymap.fits.gz",  # a flat RING map, gzip
    "userguide/bayestar.slim.fits.gz",  # flat NESTED, 50 million rows
]


@pytest.mark.parametrize("name", MAPS)
def test_real_maps_read_as_astropy_reads_them(shared_data: Path, name: str) -> None:
    data = gunzip_if_needed((shared_data / "skymaps" / name).read_bytes())
    got = read_table(data)
    assert got is not None, "a plain table of scalar columns: read here, not by astropy"
    header, columns = got
    with fits.open(io.BytesIO(data)) as hdul:
        want = hdul[1].data
        assert list(columns) == list(want.names)
        for col in want.names:
            assert columns[col].dtype.isnative
            np.testing.assert_array_equal(columns[col], want[col])
        assert header["ORDERING"] == hdul[1].header["ORDERING"]


def _table(*cols: fits.Column, **cards: object) -> bytes:
    hdu = fits.BinTableHDU.from_columns(list(cols))
    for key, value in cards.items():
        hdu.header[key] = value
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 3))), hdu]).writeto(buf)  # data before it
    return buf.getvalue()


def test_a_primary_array_is_stepped_over() -> None:
    uniq = np.array([4 * 4**3 + 5, 4 * 4**3 + 9])
    _, columns = read_table(_table(fits.Column("UNIQ", "K", array=uniq))) or ({}, {})
    assert columns["UNIQ"].tolist() == uniq.tolist()


@pytest.mark.parametrize(
    "data",
    [
        _table(fits.Column("PROB", "4E", array=np.ones((3, 4)))),  # a vector column
        _table(fits.Column("N", "J", array=np.arange(3)), TSCAL1=2.0),  # scaled
        _table(fits.Column("N", "J", array=np.arange(3)), TZERO1=2**31),  # unsigned
        _table(fits.Column("NAME", "8A", array=np.array(["a", "b"]))),  # text
    ],
    ids=["vector", "scaled", "unsigned", "text"],
)
def test_other_tables_are_left_to_astropy(data: bytes) -> None:
    assert read_table(data) is None


def test_a_truncated_map_is_left_to_astropy_and_refused_with_its_reason() -> None:
    data = _table(fits.Column("UNIQ", "K", array=np.arange(4000) + 16),
                  fits.Column("PROBDENSITY", "D", array=np.ones(4000)), ORDERING="NUNIQ")  # fmt: skip
    assert read_fits_bytes(data).uniq.size == 4000
    assert read_table(data[: -2880 * 3]) is None
    with pytest.raises(Exception, match="unreadable multi-order sky map"):
        read_fits_bytes(data[: -2880 * 3])


def test_a_map_this_does_not_read_is_still_read_by_astropy() -> None:
    uniq, dens = np.array([4 * 4**1 + 3, 4 * 4**1 + 1]), np.array([0.5, 2.0])
    data = _table(fits.Column("UNIQ", "K", array=uniq), fits.Column("PROBDENSITY", "D", array=dens),
                  fits.Column("NOTE", "8A", array=np.array(["a", "b"])), ORDERING="NUNIQ")  # fmt: skip
    assert read_table(data) is None  # a text column
    skymap = read_fits_bytes(data)
    assert skymap.uniq.tolist() == sorted(uniq.tolist())
    assert skymap.probdensity.tolist() == [2.0, 0.5]  # sorted by UNIQ
