"""Circles and ellipses as probability densities on the sky, computed in closed form.

A notice's error region says "the source is inside this circle (ellipse) with probability
c". To multiply it with a sky map, a PSF or another region it needs a density, and the
conversion is a choice, stated here once:

- A **circle** of radius R holding c becomes the von Mises-Fisher (Fisher) distribution
  whose cap of radius R holds exactly c: f(θ) ∝ exp(κ cos θ), with κ solved from
  (1 - e^{-κ(1-cos R)}) / (1 - e^{-2κ}) = c. For small R this is the 2-D Gaussian of
  width σ = R / sqrt(-2 ln(1 - c)) (a 90 % circle: σ = R / 2.146; 68 %: R / 1.515).
  Density, credible level, credible area, the PSF-convolved density and the overlap of
  two circles are exact for this distribution (products of Fisher densities integrate
  in closed form).
- An **ellipse** (semi-axes a ≥ b holding c, position angle east of north) becomes the
  2-D Gaussian with σ_a = a / sqrt(-2 ln(1 - c)), σ_b likewise, on the plane tangent
  to the sky at its centre (azimuthal equidistant projection, so the distance from the
  centre is exact). It is the small-angle form: exact to O(σ²), good to 0.5 % of the
  density for axes up to ~10°. Larger regions are better sent as a HEALPix map.
"""

from __future__ import annotations

import math
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from mmstream.model import Circle, Ellipse

FloatArray = npt.NDArray[np.float64]
Shape = Circle | Ellipse
LOG_4PI = math.log(4 * math.pi)
MIN_RADIUS_DEG = 1e-3  # a zero radius (a "point" region) is treated as 3.6 arcsec


def sigma_per_radius(containment: float) -> float:
    """σ / R of the 2-D Gaussian whose circle of radius R holds ``containment``."""
    c = min(max(containment, 1e-9), 1 - 1e-12)
    return 1.0 / math.sqrt(-2.0 * math.log(1.0 - c))


def kappa(circle: Circle) -> float:
    """The Fisher concentration whose cap of the circle's radius holds its containment."""
    radius = math.radians(max(circle.radius_deg, MIN_RADIUS_DEG))
    c = min(max(circle.containment, 1e-9), 1 - 1e-12)
    cap = 2 * math.sin(radius / 2) ** 2  # 1 - cos R, stable for tiny radii
    guess = -math.log(1 - c) / cap
    if guess > 50:  # e^{-2κ} is negligible: the closed form is exact to double precision
        return guess

    def held(log_k: float) -> float:
        k = math.exp(log_k)
        return -math.expm1(-k * cap) / -math.expm1(-2 * k) - c

    # a circle wider than c of the sphere would need κ < 0 (more mass away from its centre)
    if held(math.log(1e-8)) > 0:
        return 1e-8
    return math.exp(brentq(held, math.log(1e-8), math.log(max(guess, 1.0) * 10 + 100)))


def _log_c(k: FloatArray) -> FloatArray:
    """log of the Fisher normalization κ / (4π sinh κ), stable for large and tiny κ."""
    k = np.asarray(k, dtype=np.float64)
    # log sinh κ = κ + log(1 - e^{-2κ}) - log 2
    return np.asarray(np.log(k) - LOG_4PI - (k + np.log(-np.expm1(-2 * k)) - math.log(2)))


def _cos_to(ra0: float, dec0: float, ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    centre = hp.ang2vec(ra0, dec0, lonlat=True)
    vec = np.atleast_2d(hp.ang2vec(np.atleast_1d(ra_deg), np.atleast_1d(dec_deg), lonlat=True))
    return np.asarray(np.clip(vec @ centre, -1.0, 1.0))


def one_minus_cos(ra0: float, dec0: float, ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    """1 - cos θ from the haversine: exact where θ is a few arcseconds."""
    ra = np.radians(np.atleast_1d(np.asarray(ra_deg, dtype=np.float64)))
    dec = np.radians(np.atleast_1d(np.asarray(dec_deg, dtype=np.float64)))
    r0, d0 = math.radians(ra0), math.radians(dec0)
    hav = np.sin((dec - d0) / 2) ** 2 + np.cos(dec) * math.cos(d0) * np.sin((ra - r0) / 2) ** 2
    return np.asarray(2 * np.clip(hav, 0.0, 1.0))


def _tangent(shape: Ellipse, ra_deg: FloatArray, dec_deg: FloatArray) -> tuple[FloatArray, ...]:
    """(u, v) in radians along the major and minor axes (azimuthal equidistant)."""
    omc = one_minus_cos(shape.ra_deg, shape.dec_deg, ra_deg, dec_deg)
    theta = 2 * np.arcsin(np.sqrt(omc / 2))
    ra = np.radians(np.atleast_1d(ra_deg))
    dec = np.radians(np.atleast_1d(dec_deg))
    r0, d0 = math.radians(shape.ra_deg), math.radians(shape.dec_deg)
    # bearing east of north from the centre to each point
    bearing = np.arctan2(
        np.sin(ra - r0) * np.cos(dec),
        math.cos(d0) * np.sin(dec) - math.sin(d0) * np.cos(dec) * np.cos(ra - r0),
    )
    rel = bearing - math.radians(shape.position_angle_deg)
    return theta * np.cos(rel), theta * np.sin(rel)


def _sigmas_rad(shape: Ellipse, extra_sigma_rad: FloatArray | float = 0.0) -> tuple[Any, Any]:
    k = sigma_per_radius(shape.containment)
    sa = math.radians(max(shape.semi_major_deg, MIN_RADIUS_DEG)) * k
    sb = math.radians(max(shape.semi_minor_deg, MIN_RADIUS_DEG)) * k
    extra = np.asarray(extra_sigma_rad) ** 2
    return np.sqrt(sa**2 + extra), np.sqrt(sb**2 + extra)


def density(shape: Shape, ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    """Probability density (sr^-1) at each position."""
    if isinstance(shape, Circle):
        k = kappa(shape)
        omc = one_minus_cos(shape.ra_deg, shape.dec_deg, ra_deg, dec_deg)
        # κ/(4π sinh κ) e^{κ cos θ} = exp(log C + κ - κ(1 - cos θ))
        return np.asarray(np.exp(_log_c(np.array(k)) + k - k * omc))
    return psf_density(shape, ra_deg, dec_deg, np.zeros(np.size(ra_deg)))


def credible_level(
    shape: Shape, ra_deg: FloatArray, dec_deg: FloatArray, psf_sigma_deg: FloatArray | float = 0.0
) -> FloatArray:
    """Probability in the smallest region (a cap or an ellipse) reaching each position.

    With ``psf_sigma_deg``, of the region widened by each event's PSF (widths added in
    quadrature): whether an event is compatible with the region given its own error.
    """
    sig = np.radians(np.asarray(psf_sigma_deg, dtype=np.float64))
    if isinstance(shape, Circle):
        k = 1.0 / (1.0 / kappa(shape) + sig**2)
        omc = one_minus_cos(shape.ra_deg, shape.dec_deg, ra_deg, dec_deg)
        return np.asarray(-np.expm1(-k * omc) / -np.expm1(-2 * k))
    u, v = _tangent(shape, ra_deg, dec_deg)
    sa, sb = _sigmas_rad(shape, sig)
    return np.asarray(-np.expm1(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2)))


def credible_area_deg2(shape: Shape, level: float) -> float:
    """Area (deg²) of the region holding ``level`` of the probability."""
    level = min(max(level, 0.0), 1.0)
    if isinstance(shape, Circle):
        k = kappa(shape)
        omc = -math.log1p(level * math.expm1(-2 * k)) / k if level < 1 else 2.0
        return float(2 * math.pi * min(omc, 2.0) * (180 / math.pi) ** 2)
    sa, sb = _sigmas_rad(shape)
    if level >= 1:
        return float(4 * math.pi * (180 / math.pi) ** 2)
    return float(math.pi * sa * sb * -2 * math.log1p(-level) * (180 / math.pi) ** 2)


def psf_density(
    shape: Shape, ra_deg: FloatArray, dec_deg: FloatArray, sigma_deg: FloatArray
) -> FloatArray:
    """The region convolved with each event's Fisher PSF (width σ, κ = 1/σ²), at the event.

    Exact for a circle: ∫ f_κ1(x; μ1) f_κ2(x; μ2) dΩ = C(κ1) C(κ2) / C(|κ1 μ1 + κ2 μ2|).
    For an ellipse, the PSF widens both axes in quadrature (Gaussians convolve so).
    """
    sig = np.radians(np.clip(np.atleast_1d(np.asarray(sigma_deg, dtype=np.float64)), 0, None))
    if isinstance(shape, Circle):
        k1 = kappa(shape)
        k2 = 1.0 / np.maximum(sig, math.radians(MIN_RADIUS_DEG)) ** 2
        cos = _cos_to(shape.ra_deg, shape.dec_deg, ra_deg, dec_deg)
        k12 = np.sqrt(np.maximum(k1**2 + k2**2 + 2 * k1 * k2 * cos, 1e-300))
        return np.asarray(np.exp(_log_c(np.array(k1)) + _log_c(k2) - _log_c(k12)))
    u, v = _tangent(shape, ra_deg, dec_deg)
    sa, sb = _sigmas_rad(shape, sig)
    return np.asarray(np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2)) / (2 * math.pi * sa * sb))


def circle_overlap(a: Circle, b: Circle) -> float:
    """RAVEN's I = 4π ∫ p_a p_b dΩ of two circles, exact for their Fisher densities."""
    k1, k2 = kappa(a), kappa(b)
    cos = float(_cos_to(a.ra_deg, a.dec_deg, np.array([b.ra_deg]), np.array([b.dec_deg]))[0])
    k12 = math.sqrt(max(k1**2 + k2**2 + 2 * k1 * k2 * cos, 1e-300))
    return float(4 * math.pi * np.exp(_log_c(np.array(k1)) + _log_c(np.array(k2)) -
                                      _log_c(np.array(k12))))  # fmt: skip


def size_deg(shape: Shape) -> float:
    """The width that describes the region: its radius, or its semi-major axis."""
    return shape.radius_deg if isinstance(shape, Circle) else shape.semi_major_deg


def sigma_deg(shape: Shape) -> float:
    """The Gaussian width along the region's widest axis (deg)."""
    if isinstance(shape, Circle):
        return math.degrees(1 / math.sqrt(kappa(shape)))
    return math.degrees(float(_sigmas_rad(shape)[0]))
