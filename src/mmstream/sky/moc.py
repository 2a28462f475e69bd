"""Multi-order (NUNIQ) HEALPix maps as LVK sends them: read, write, look up, and make.

A NUNIQ pixel ``u`` has order ``k = floor(log2(u / 4) / 2)`` and nested index
``u - 4 * 4**k``. Look-ups never rasterize: for each order present, points are mapped
to nested indices at that order and searched in the sorted UNIQ column.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt
from astropy.io import fits

from mmstream.errors import DecodeError
from mmstream.model import MultiOrderSkyMap
from mmstream.sky.fitstable import read_table

FloatArray = npt.NDArray[np.float64]


# 4^(k+1) for k = 0..29: a NUNIQ index u has order k when 4^(k+1) <= u < 4^(k+2).
_ORDER_STARTS = np.int64(4) ** np.arange(1, 31, dtype=np.int64)


def uniq_to_order_ipix(
    uniq: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Order and nested index of NUNIQ indices, in integers (a float log2 rounds wrongly
    near powers of two from order 26 on). Indices below 4 come out as order -1."""
    uniq = np.asarray(uniq, dtype=np.int64)
    order = np.searchsorted(_ORDER_STARTS, uniq, side="right").astype(np.int64) - 1
    ipix = uniq - (np.int64(4) << (2 * np.maximum(order, 0)))
    return order, ipix


def pixel_area_sr(uniq: npt.NDArray[np.int64]) -> FloatArray:
    order, _ = uniq_to_order_ipix(uniq)
    return np.asarray(4 * np.pi / (12 * 4.0**order), dtype=np.float64)


def gunzip_if_needed(data: bytes, max_bytes: int | None = None) -> bytes:
    """Sky maps travel both plain and gzip-compressed (``.fits.gz``); inflated at most to
    ``max_bytes`` where given (a 2 MB gzip stream in an alert can expand to gigabytes;
    a file an operator reads, such as a flat nside-2048 map of 400 MB, has no limit)."""
    if data[:2] != b"\x1f\x8b":
        return data
    if max_bytes is None:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DecodeError(f"corrupt gzip stream: {exc}") from exc
    out = bytearray()
    rest = data
    try:
        while rest[:2] == b"\x1f\x8b":  # gzip allows several members back to back
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(rest, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise DecodeError(f"gzip-compressed sky map inflates to more than {max_bytes} "
                                  "bytes (limit max_decompressed_bytes)")  # fmt: skip
            if not inflater.eof:
                raise DecodeError("corrupt gzip stream: it ends before its last block")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise DecodeError(f"corrupt gzip stream: {exc}") from exc
    return bytes(out)


def read_fits_bytes(data: bytes, max_bytes: int | None = None) -> MultiOrderSkyMap:
    """Parse a multi-order FITS file held in memory (as in ``event.skymap``); a gzip-
    compressed one is inflated to at most ``max_bytes`` where given."""
    data = gunzip_if_needed(data, max_bytes)
    try:
        table = read_table(data)  # straight into numpy (fitstable.py says why)
        if table is None:
            with fits.open(io.BytesIO(data), memmap=False) as hdul:
                table = hdul[1].header, hdul[1].data
        header, columns = table
        if str(header.get("ORDERING", "")).upper() != "NUNIQ":
            raise DecodeError(f"sky map ORDERING is {header.get('ORDERING')!r}, not NUNIQ")
        uniq = np.asarray(columns["UNIQ"], dtype=np.int64)
        dens = np.asarray(columns["PROBDENSITY"], dtype=np.float64)
        meta: dict[str, Any] = {
            k: header[k] for k in ("OBJECT", "DATE-OBS", "MOCORDER", "CREATOR") if k in header
        }
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"unreadable multi-order sky map: {type(exc).__name__}: {exc}") from exc
    order = np.argsort(uniq)
    return MultiOrderSkyMap(uniq=uniq[order], probdensity=dens[order], meta=meta)


def write_fits_bytes(skymap: MultiOrderSkyMap) -> bytes:
    cols = [
        fits.Column(name="UNIQ", format="K", array=skymap.uniq),
        fits.Column(name="PROBDENSITY", format="D", unit="sr-1", array=skymap.probdensity),
    ]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["PIXTYPE"] = "HEALPIX"
    hdu.header["ORDERING"] = "NUNIQ"
    hdu.header["COORDSYS"] = "C"
    order, _ = uniq_to_order_ipix(skymap.uniq)
    hdu.header["MOCORDER"] = int(order.max())
    for key, value in skymap.meta.items():
        hdu.header[key] = value
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    return buf.getvalue()


def gaussian_moc(
    ra_deg: float,
    dec_deg: float,
    sigma_deg: float,
    *,
    min_order: int = 3,
    max_order: int = 9,
    meta: dict[str, Any] | None = None,
) -> MultiOrderSkyMap:
    """A normalized multi-order map of a 2-D Gaussian (von Mises-Fisher) blob on the sky.

    Pixels are split, starting from ``min_order``, while they hold more than a small
    share of the probability, as BAYESTAR's adaptive maps do.
    """
    kappa = 1.0 / np.radians(sigma_deg) ** 2
    center = hp.ang2vec(ra_deg, dec_deg, lonlat=True)

    def density(order: int, ipix: npt.NDArray[np.int64]) -> FloatArray:
        vec = np.asarray(hp.pix2vec(1 << order, ipix, nest=True)).T
        cos = np.clip(vec @ center, -1.0, 1.0)
        # Normalized vMF density on the sphere, written to avoid overflow for large kappa.
        return np.asarray(
            kappa / (2 * np.pi * (1 - np.exp(-2 * kappa))) * np.exp(kappa * (cos - 1))
        )

    keep_uniq: list[npt.NDArray[np.int64]] = []
    keep_dens: list[FloatArray] = []
    ipix = np.arange(12 * 4**min_order, dtype=np.int64)
    threshold = 1e-4
    for order in range(min_order, max_order + 1):
        dens = density(order, ipix)
        area = 4 * np.pi / (12 * 4.0**order)
        split = (dens * area > threshold) & (order < max_order)
        keep_uniq.append(4 * 4**order + ipix[~split])
        keep_dens.append(dens[~split])
        ipix = (4 * ipix[split][:, None] + np.arange(4)).ravel()
        if ipix.size == 0:
            break
    uniq = np.concatenate(keep_uniq)
    dens = np.concatenate(keep_dens)
    dens /= np.sum(dens * pixel_area_sr(uniq))
    sort = np.argsort(uniq)
    return MultiOrderSkyMap(uniq=uniq[sort], probdensity=dens[sort], meta=dict(meta or {}))
