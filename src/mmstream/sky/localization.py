"""One interface to every localization a decoder makes: maps, circles, ellipses, or none.

Every function takes a ``Localization`` (multi-order map, flat map, circle, ellipse) or None
(no localization: uniform over the sky) and positions as arrays. Maps are looked up in
place, never flattened; circles and ellipses are densities in closed form (sky/shapes.py
says how a containment level becomes a density). Where a shape meets a map, the shape is
laid out as an adaptive multi-order map of its own (fine where its probability is, coarse
elsewhere) and the product summed over its tiles.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import healpy as hp
import numpy as np
import numpy.typing as npt

from mmstream.model import Circle, Ellipse, FlatSkyMap, Localization, MultiOrderSkyMap
from mmstream.sky import credible, moc, overlap, psf, shapes

FloatArray = npt.NDArray[np.float64]
Loc = Localization | None
UNIFORM_DENSITY = 1 / (4 * math.pi)
SR_TO_DEG2 = (180 / math.pi) ** 2


def kind(loc: Loc) -> str:
    """ "multiorder", "flat", "circle", "ellipse" or "none"."""
    if isinstance(loc, MultiOrderSkyMap):
        return "multiorder"
    if isinstance(loc, FlatSkyMap):
        return "flat"
    if isinstance(loc, Circle):
        return "circle"
    return "ellipse" if isinstance(loc, Ellipse) else "none"


def is_map(loc: Loc) -> bool:
    return isinstance(loc, MultiOrderSkyMap | FlatSkyMap)


def centre(loc: Loc) -> tuple[float, float] | None:
    """The region's centre, or a map's densest pixel; None without a localization."""
    if isinstance(loc, Circle | Ellipse):
        return loc.ra_deg, loc.dec_deg
    if isinstance(loc, MultiOrderSkyMap):
        order, ipix = moc.uniq_to_order_ipix(loc.uniq[[int(np.argmax(loc.probdensity))]])
        lon, lat = hp.pix2ang(1 << int(order[0]), int(ipix[0]), nest=True, lonlat=True)
        return float(lon), float(lat)
    if isinstance(loc, FlatSkyMap):
        lon, lat = hp.pix2ang(loc.nside, int(np.argmax(loc.prob)), nest=loc.nest, lonlat=True)
        return float(lon), float(lat)
    return None


def describe(loc: Loc) -> dict[str, Any]:
    """What a result says about the localization it used: kind, centre, size, containment."""
    out: dict[str, Any] = {"kind": kind(loc)}
    if loc is None:
        return out
    if (c := centre(loc)) is not None:
        out["ra_deg"], out["dec_deg"] = round(c[0], 6), round(c[1], 6)
    if isinstance(loc, Circle):
        out.update(radius_deg=loc.radius_deg, containment=loc.containment,
                   density="Fisher", sigma_deg=round(shapes.sigma_deg(loc), 6))  # fmt: skip
    elif isinstance(loc, Ellipse):
        out.update(semi_major_deg=loc.semi_major_deg, semi_minor_deg=loc.semi_minor_deg,
                   position_angle_deg=loc.position_angle_deg, containment=loc.containment,
                   density="2-D Gaussian (tangent plane)")  # fmt: skip
    elif isinstance(loc, FlatSkyMap):
        out.update(nside=loc.nside, ordering="NESTED" if loc.nest else "RING")
    else:
        orders, _ = moc.uniq_to_order_ipix(loc.uniq)
        out.update(tiles=int(loc.uniq.size), max_order=int(orders.max()))
    for level in (0.5, 0.9):
        out[f"area{round(level * 100)}_deg2"] = round(credible_area_deg2(loc, level), 4)
    return out


def density_and_level(
    loc: Loc, ra_deg: FloatArray, dec_deg: FloatArray, psf_sigma_deg: FloatArray | float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """Density (sr^-1) and credible level at each position (level 1: no localization).

    ``psf_sigma_deg`` widens a circle or ellipse by each event's error before its level is
    taken (a 3-arcmin Swift circle against a 1° neutrino); a map's level is at the position.
    """
    ra, dec = np.atleast_1d(ra_deg), np.atleast_1d(dec_deg)
    if isinstance(loc, MultiOrderSkyMap | FlatSkyMap):
        return credible.density_and_level(loc, ra, dec)
    if isinstance(loc, Circle | Ellipse):
        return shapes.density(loc, ra, dec), shapes.credible_level(loc, ra, dec, psf_sigma_deg)
    return np.full(ra.shape, UNIFORM_DENSITY), np.ones(ra.shape)


def psf_density(
    loc: Loc, ra_deg: FloatArray, dec_deg: FloatArray, sigma_deg: FloatArray
) -> FloatArray:
    """The localization convolved with each event's PSF, at the event (sr^-1)."""
    ra, dec = np.atleast_1d(ra_deg), np.atleast_1d(dec_deg)
    if isinstance(loc, MultiOrderSkyMap | FlatSkyMap):
        return psf.convolved_density(loc, ra, dec, sigma_deg)
    if isinstance(loc, Circle | Ellipse):
        return shapes.psf_density(loc, ra, dec, sigma_deg)
    return np.full(ra.shape, UNIFORM_DENSITY)


def separation_deg(loc: Loc, ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray | None:
    """Angular distance of each position from a region's centre; None for maps and none."""
    if not isinstance(loc, Circle | Ellipse):
        return None
    omc = shapes.one_minus_cos(loc.ra_deg, loc.dec_deg, ra_deg, dec_deg)
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(omc / 2))))


def credible_area_deg2(loc: Loc, level: float) -> float:
    if isinstance(loc, MultiOrderSkyMap | FlatSkyMap):
        return credible.credible_area_deg2(loc, level)
    if isinstance(loc, Circle | Ellipse):
        return shapes.credible_area_deg2(loc, level)
    return float(level * 4 * math.pi * SR_TO_DEG2)


def overlap_integral(a: Loc, b: Loc) -> float:
    """RAVEN's I = 4π ∫ p_a p_b dΩ: exact for two maps and for two circles; a shape against
    anything else is summed over the shape's own adaptive tiles (sub-percent: see tests)."""
    if a is None or b is None:
        return 1.0  # a uniform localization overlaps anything with I = 1
    if is_map(a) and is_map(b):
        assert isinstance(a, MultiOrderSkyMap | FlatSkyMap)
        assert isinstance(b, MultiOrderSkyMap | FlatSkyMap)
        return overlap.overlap_integral(a, b)
    if isinstance(a, Circle) and isinstance(b, Circle):
        return shapes.circle_overlap(a, b)
    shape, other = (a, b) if isinstance(a, Circle | Ellipse) else (b, a)
    assert isinstance(shape, Circle | Ellipse)
    tiles = as_moc(shape)
    prob = tiles.probdensity * moc.pixel_area_sr(tiles.uniq)
    ra, dec = tile_centres(tiles)
    other_density = density_and_level(other, ra, dec)[0]
    return float(4 * math.pi * np.sum(prob * other_density))


def overlap_with_point(loc: Loc, ra_deg: float, dec_deg: float) -> float:
    """Localization × a well-localized counterpart: 4π times the density there."""
    dens = density_and_level(loc, np.array([ra_deg]), np.array([dec_deg]))[0]
    return float(4 * math.pi * dens[0])


def tile_centres(skymap: MultiOrderSkyMap) -> tuple[FloatArray, FloatArray]:
    order, ipix = moc.uniq_to_order_ipix(skymap.uniq)
    ra = np.empty(order.size)
    dec = np.empty(order.size)
    for k in np.unique(order):
        sel = order == k
        ra[sel], dec[sel] = hp.pix2ang(1 << int(k), ipix[sel], nest=True, lonlat=True)
    return ra, dec


def as_map(loc: Localization) -> MultiOrderSkyMap | FlatSkyMap:
    """The localization as a HEALPix map (a shape laid out on adaptive tiles)."""
    if isinstance(loc, MultiOrderSkyMap | FlatSkyMap):
        return loc
    return as_moc(loc)


@functools.lru_cache(maxsize=64)
def as_moc(shape: Circle | Ellipse, max_order: int = 16) -> MultiOrderSkyMap:
    """The shape as a normalized multi-order map: a tile is split while it may hold part of
    the shape (within 6 σ, or more than 1e-6 of the probability) and is wider than a quarter
    of the shape's narrowest σ; the density is taken at each tile's centre."""
    narrow = math.radians(shapes.sigma_deg(shape))
    if isinstance(shape, Ellipse):
        sb = shape.semi_minor_deg * shapes.sigma_per_radius(shape.containment)
        narrow = math.radians(max(sb, shapes.MIN_RADIUS_DEG))
    reach = 6 * math.radians(shapes.sigma_deg(shape))  # beyond it the density is < e^-18
    keep_uniq: list[npt.NDArray[np.int64]] = []
    keep_dens: list[FloatArray] = []
    order = 3
    ipix = np.arange(12 * 4**order, dtype=np.int64)
    while ipix.size:
        lon, lat = hp.pix2ang(1 << order, ipix, nest=True, lonlat=True)
        dens = shapes.density(shape, lon, lat)
        if hp.nside2resol(1 << order) < narrow / 4 or order >= max_order:
            split = np.zeros(ipix.size, dtype=bool)
        else:
            # a tile reaching within 6 σ of the centre may hold part of the shape
            omc = shapes.one_minus_cos(shape.ra_deg, shape.dec_deg, lon, lat)
            near = 2 * np.arcsin(np.sqrt(omc / 2)) < reach + hp.max_pixrad(1 << order)
            split = near | (dens * 4 * math.pi / (12 * 4.0**order) > 1e-6)
        keep_uniq.append(4 * np.int64(4) ** order + ipix[~split])
        keep_dens.append(dens[~split])
        ipix = (4 * ipix[split][:, None] + np.arange(4)).ravel()
        order += 1
    uniq = np.concatenate(keep_uniq)
    dens = np.concatenate(keep_dens)
    dens = dens / np.sum(dens * moc.pixel_area_sr(uniq))
    sort = np.argsort(uniq)
    return MultiOrderSkyMap(uniq=uniq[sort], probdensity=dens[sort], meta={})
