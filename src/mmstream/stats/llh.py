"""Unbinned likelihood test of neutrino events against a sky map, with background trials.

Extended likelihood with the background count fixed at its expectation n_b:
    L(n_s) ∝ e^{-(n_s + n_b)} Π_i (n_s S_i + n_b B_i)
    TS = 2 ln L(n̂_s)/L(0) = 2 [ -n̂_s + Σ_i ln(1 + n̂_s r_i / n_b) ],  r_i = S_i / B_i.
S_i is the sky map convolved with event i's point-spread function (sr^-1), B_i the
background's spatial density (isotropic: 1/4π; time densities cancel in r_i). The
p-value is the fraction of background trials (isotropic positions, Poisson(n_b) events)
with a TS at least as large, counting the observation itself: (k + 1) / (N + 1). With
TS = 0 it is 1: nothing signal-like was seen, and identical empty inputs give identical
p. Under the background p is then valid (P(p ≤ α) ≤ α) but not continuous: the trials
with TS = 0 (most of them when n_b is small) pile up at p = 1.

Signal densities for observed and trial events come from the same smoothed rasters (one
per PSF width bin), so both are computed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import healpy as hp
import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.ranges import rasterize

FloatArray = npt.NDArray[np.float64]
SIGMA_BINS_DEG = (0.5, 1.0, 2.0, 4.0, 8.0)
BACKGROUND_DENSITY = 1.0 / (4 * np.pi)  # isotropic, sr^-1


@dataclass(frozen=True)
class SignalMaps:
    """The sky map smoothed by Gaussian PSFs of a few widths, as densities (sr^-1), RING."""

    nside: int
    sigmas_deg: FloatArray
    density: FloatArray  # shape (len(sigmas), npix)

    def at(self, ra_deg: FloatArray, dec_deg: FloatArray, sigma_deg: FloatArray) -> FloatArray:
        """S for each event, from the raster of the nearest width (in log σ)."""
        pix = hp.ang2pix(self.nside, ra_deg, dec_deg, lonlat=True)
        log_s = np.log(np.clip(sigma_deg, 1e-3, None))
        k = np.abs(log_s[:, None] - np.log(self.sigmas_deg)[None, :]).argmin(axis=1)
        return np.asarray(self.density[k, pix])


def signal_maps(
    skymap: MultiOrderSkyMap | FlatSkyMap,
    order: int = 7,
    sigmas_deg: tuple[float, ...] = SIGMA_BINS_DEG,
) -> SignalMaps:
    flat = rasterize(skymap, order)
    ring = hp.reorder(flat.prob, n2r=True)
    ring = ring / ring.sum()
    pixarea = hp.nside2pixarea(flat.nside)
    rows = [
        np.clip(hp.smoothing(ring, sigma=np.radians(s), iter=1), 0.0, None) / pixarea
        for s in sigmas_deg
    ]
    return SignalMaps(flat.nside, np.asarray(sigmas_deg, dtype=np.float64), np.asarray(rows))


def maximize_ts(ratio: FloatArray, n_b: float) -> tuple[float, float]:
    """(TS, n̂_s) for signal-to-background ratios ``ratio`` and expected background n_b."""
    if ratio.size == 0 or n_b <= 0 or float(np.sum(ratio)) <= n_b:
        return 0.0, 0.0  # the likelihood falls from n_s = 0: best fit is no signal

    def slope(ns: float) -> float:
        return float(np.sum(ratio / (n_b + ns * ratio))) - 1.0

    ns = float(brentq(slope, 0.0, float(ratio.size)))
    ts = 2.0 * (-ns + float(np.sum(np.log1p(ns * ratio / n_b))))
    return max(ts, 0.0), ns


def background_ts(
    maps: SignalMaps, n_b: float, sigma_pool: FloatArray, n_trials: int, rng: np.random.Generator
) -> FloatArray:
    """TS of ``n_trials`` background-only pseudo-experiments."""
    counts = rng.poisson(n_b, n_trials)
    total = int(counts.sum())
    ra = rng.uniform(0.0, 360.0, total)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, total)))
    sig = rng.choice(sigma_pool, total) if sigma_pool.size else np.ones(total)
    ratio = maps.at(ra, dec, sig) / BACKGROUND_DENSITY
    out = np.empty(n_trials)
    start = 0
    for k, n in enumerate(counts):
        out[k] = maximize_ts(ratio[start : start + n], n_b)[0]
        start += n
    return out


def p_value(ts: float, trials: FloatArray) -> float:
    """(#trials with TS ≥ ts + 1) / (N + 1), and 1 at TS = 0: never below the truth."""
    if ts <= 0:
        return 1.0
    return float((int(np.sum(trials >= ts)) + 1) / (trials.size + 1))
