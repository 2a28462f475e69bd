"""A FITS binary table's scalar columns, read straight from the bytes an alert carries.

astropy.io.fits builds its whole table machinery (column definitions, a FITS_rec) on each
read: ~8 ms for an LVK multi-order map's 19,200 rows, most of an alert's decode and so of
its time to a result. Here the headers are still astropy's (``Header.fromfile``); only the
rows of the plain table every sky map we know of is (scalar integer and float columns, no
scaling, no null value, no heap) are viewed with numpy. Anything else returns None and
the caller reads it with astropy.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
from astropy.io import fits

BLOCK = 2880  # FITS headers and data come in blocks of this many bytes
_KINDS = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM = re.compile(r"\s*(1?)([BIJKED])\s*")
_SCALED = ("TSCAL", "TZERO", "TNULL")


def _data_bytes(header: fits.Header) -> int:
    """The size of the data after ``header``, padding included (FITS standard, 4.4.1)."""
    axes = [int(header[f"NAXIS{i}"]) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
    if not axes:
        return 0
    size = abs(int(header["BITPIX"])) // 8 * int(header.get("GCOUNT", 1))
    size *= int(header.get("PCOUNT", 0)) + math.prod(axes)
    return -(-size // BLOCK) * BLOCK


def read_table(data: bytes, hdu: int = 1) -> tuple[fits.Header, dict[str, np.ndarray]] | None:
    """Extension ``hdu``'s header and its columns by name (native byte order), or None when
    the table is not one this reads (the caller then uses astropy)."""
    stream = io.BytesIO(data)
    for _ in range(hdu):
        size = _data_bytes(fits.Header.fromfile(stream))
        stream.seek(size, io.SEEK_CUR)
    header = fits.Header.fromfile(stream)
    start = stream.tell()
    if (header.get("XTENSION") != "BINTABLE" or header.get("BITPIX") != 8
            or header.get("NAXIS") != 2 or header.get("PCOUNT", 0) != 0
            or header.get("GCOUNT", 1) != 1):  # fmt: skip
        return None
    width, rows = int(header["NAXIS1"]), int(header["NAXIS2"])
    names, kinds = [], []
    for i in range(1, int(header["TFIELDS"]) + 1):
        form = _TFORM.fullmatch(str(header.get(f"TFORM{i}", "")))
        if form is None or any(f"{k}{i}" in header for k in _SCALED):
            return None
        names.append(str(header.get(f"TTYPE{i}", f"col{i}")).strip())
        kinds.append(_KINDS[form.group(2)])
    dtype = np.dtype({"names": names, "formats": kinds})
    if len(set(names)) != len(names) or dtype.itemsize != width or start + width * rows > len(data):
        return None  # astropy says what is wrong with it
    table = np.frombuffer(data, dtype, rows, start)
    return header, {n: table[n].astype(table.dtype[n].newbyteorder("=")) for n in names}
