"""Single-resolution HEALPix maps: read (ring or nested, vector columns, gzip) via healpy.

Flat maps are read as they are, in their own ordering, and never converted to a
multi-order map unless asked: an nside-2048 map is 50 million pixels (400 MB as float64).
"""

from __future__ import annotations

import io
import warnings

import healpy as hp
import numpy as np
from astropy.io import fits

from mmstream.errors import DecodeError
from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.moc import gunzip_if_needed
from mmstream.sky.moc import read_fits_bytes as read_moc_bytes


def _hdulist(data: bytes) -> fits.HDUList:
    try:
        return fits.open(io.BytesIO(gunzip_if_needed(data)), memmap=False)
    except Exception as exc:
        raise DecodeError(f"not a FITS file: {type(exc).__name__}: {exc}") from exc


def read_flat_bytes(data: bytes) -> FlatSkyMap:
    """A flat HEALPix map held in memory; the first column is the probability per pixel."""
    with _hdulist(data) as hdul:
        if len(hdul) < 2:
            raise DecodeError("FITS file has no table extension holding a HEALPix map")
        header = hdul[1].header
        ordering = str(header.get("ORDERING", "")).upper()
        if ordering not in ("RING", "NESTED"):
            raise DecodeError(f"HEALPix ORDERING {ordering!r} is neither RING nor NESTED")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prob = hp.read_map(hdul, field=0, nest=None, dtype=np.float64)
        except Exception as exc:
            raise DecodeError(f"unreadable HEALPix map: {type(exc).__name__}: {exc}") from exc
        meta = {k: header[k] for k in ("OBJECT", "DATE-OBS", "INSTRUME", "CREATOR") if k in header}
    prob = np.where(prob == hp.UNSEEN, 0.0, prob)
    return FlatSkyMap(
        nside=hp.npix2nside(prob.size), nest=ordering == "NESTED", prob=prob, meta=meta
    )


def read_skymap_bytes(data: bytes) -> MultiOrderSkyMap | FlatSkyMap:
    """Any HEALPix FITS map: multi-order when ORDERING is NUNIQ, else flat."""
    with _hdulist(data) as hdul:
        ordering = str(hdul[1].header.get("ORDERING", "")).upper() if len(hdul) > 1 else ""
    return read_moc_bytes(data) if ordering == "NUNIQ" else read_flat_bytes(data)
