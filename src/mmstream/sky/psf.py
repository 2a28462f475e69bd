"""A sky map seen through a detector's point-spread function (von Mises-Fisher, width σ).

S = ∫ P(Ω) K(Ω; Ω_event, σ) dΩ, in sr^-1: the probability density that an event
reconstructed at Ω_event came from the map's source. For σ much smaller than the map's
pixels it tends to the map's density at the event.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
import numpy.typing as npt

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.ranges import deepest_order, density_at_index, to_ranges

FloatArray = npt.NDArray[np.float64]


def vmf_density(cos_angle: FloatArray, sigma_rad: float) -> FloatArray:
    """Normalized von Mises-Fisher density on the sphere (sr^-1), κ = 1/σ²."""
    kappa = 1.0 / sigma_rad**2
    norm = kappa / (2 * np.pi * (1 - np.exp(-2 * kappa)))
    return np.asarray(norm * np.exp(kappa * (np.clip(cos_angle, -1, 1) - 1)))


def convolved_density(
    skymap: MultiOrderSkyMap | FlatSkyMap,
    ra_deg: FloatArray,
    dec_deg: FloatArray,
    sigma_deg: FloatArray,
) -> FloatArray:
    """S_i for each event: the map convolved with each event's PSF, at the event."""
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    sig = np.atleast_1d(np.asarray(sigma_deg, dtype=np.float64))
    out = np.empty(ra.size)
    base = deepest_order(skymap)
    ranges = to_ranges(skymap, max(base, 12))
    for i in range(ra.size):
        sigma = max(float(sig[i]), 0.05)
        # Pixels ~σ/4 wide resolve the kernel; never coarser than order 6.
        order = 6
        while order < 12 and np.degrees(hp.nside2resol(1 << order)) > sigma / 4:
            order += 1
        nside = 1 << order
        centre = hp.ang2vec(ra[i], dec[i], lonlat=True)
        pix = hp.query_disc(nside, centre, np.radians(min(5 * sigma, 180.0)), nest=True)
        vec = np.asarray(hp.pix2vec(nside, pix, nest=True)).T
        kernel = vmf_density(vec @ centre, np.radians(sigma))
        shift = (ranges.order - order) * 2
        dens = density_at_index(ranges, pix.astype(np.int64) << shift)
        out[i] = float(np.sum(dens * kernel) * hp.nside2pixarea(nside))
    return out
