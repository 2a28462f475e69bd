"""The dashboard's sky picture: an alert's localization in Mollweide projection with its 50 %
and 90 % credible contours, and the detector events of the window marked.

Rendered server-side with matplotlib's Agg backend (no display, no JavaScript); the density
and credible level come from the same sky/ functions the analyses use, evaluated on a
regular grid of sky positions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patheffects import withStroke

from mmstream.model import Circle, Ellipse, FlatSkyMap, Localization, MultiOrderSkyMap
from mmstream.sky.credible import credible_level, probdensity

# RA grows to the left (east left, the sky seen from inside) and the middle of the picture is
# RA 12 h: matplotlib's mollweide longitude x, -pi (left) .. pi (right), is 180° - RA.
_RA_TICKS_H = (22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2)


def _xy(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axes coordinates (radians) of sky positions, as the tick labels name them."""
    return np.radians(180.0 - np.remainder(ra_deg, 360.0)), np.radians(dec_deg)


def _outline(shape: Circle | Ellipse, points: int = 361) -> tuple[np.ndarray, np.ndarray]:
    """The region's boundary, exact on the sphere: the points at angular distance (a cos t,
    b sin t) from the centre in the tangent plane, major axis at the position angle east of
    north (the azimuthal-equidistant frame sky/shapes.py evaluates the density in)."""
    if isinstance(shape, Circle):
        a = b = shape.radius_deg
        pa = 0.0
    else:
        a, b, pa = shape.semi_major_deg, shape.semi_minor_deg, shape.position_angle_deg
    t = np.linspace(0.0, 2 * np.pi, points)
    u, v = np.radians(a) * np.cos(t), np.radians(b) * np.sin(t)
    dist, bearing = np.hypot(u, v), np.arctan2(v, u) + np.radians(pa)
    ra0, dec0 = np.radians(shape.ra_deg), np.radians(shape.dec_deg)
    sin_dec = np.sin(dec0) * np.cos(dist) + np.cos(dec0) * np.sin(dist) * np.cos(bearing)
    dec = np.arcsin(np.clip(sin_dec, -1.0, 1.0))
    ra = ra0 + np.arctan2(np.sin(bearing) * np.sin(dist) * np.cos(dec0),
                          np.cos(dist) - np.sin(dec0) * sin_dec)  # fmt: skip
    x, y = _xy(np.degrees(ra), np.degrees(dec))
    cut = np.flatnonzero(np.abs(np.diff(x)) > np.pi) + 1  # crosses RA 0 h: lift the pen
    return np.insert(x, cut, np.nan), np.insert(y, cut, np.nan)


def sky_figure(
    localization: Localization | None,
    events: Sequence[tuple[float, float, bool]],
    title: str,
    *,
    width_px: int = 900,
) -> Figure:
    """The picture (the caller closes it). ``events``: (ra_deg, dec_deg, coincident)."""
    fig = plt.figure(figsize=(width_px / 100, width_px / 200), dpi=100)
    ax = fig.add_subplot(111, projection="mollweide")
    ax.grid(True, alpha=0.3)
    ax.set_xticks(
        np.radians([180.0 - 15.0 * h for h in _RA_TICKS_H]),
        [f"{h}h" for h in _RA_TICKS_H],
        fontsize=7,
        path_effects=[withStroke(linewidth=2, foreground="white")],
    )  # the labels outlined: they read on a dark map too
    if isinstance(localization, MultiOrderSkyMap | FlatSkyMap):
        # cells by their edges, evaluated at their centres (RA and x both monotonic)
        x_edges = np.linspace(-np.pi, np.pi, 721)
        y_edges = np.radians(np.linspace(-90.0, 90.0, 361))
        x, y = np.meshgrid((x_edges[1:] + x_edges[:-1]) / 2, (y_edges[1:] + y_edges[:-1]) / 2)
        flat_ra, flat_dec = (180.0 - np.degrees(x)).ravel(), np.degrees(y).ravel()
        dens = probdensity(localization, flat_ra, flat_dec).reshape(x.shape)
        level = credible_level(localization, flat_ra, flat_dec).reshape(x.shape)
        ax.pcolormesh(x_edges, y_edges, dens, shading="flat", rasterized=True,
                      cmap="cylon" if "cylon" in plt.colormaps() else "magma")  # fmt: skip
        cs = ax.contour(x, y, level, levels=[0.5, 0.9], colors=["white", "cyan"], linewidths=1)
        ax.clabel(cs, fmt={0.5: "50%", 0.9: "90%"}, fontsize=7)
    elif isinstance(localization, Circle | Ellipse):
        cx, cy = _xy(np.array([localization.ra_deg]), np.array([localization.dec_deg]))
        ax.plot(cx, cy, marker="+", color="crimson", markersize=12, gid="centre")
        ax.plot(*_outline(localization), color="crimson", linewidth=1, gid="outline")
    if events:
        arr = np.array([(r, d) for r, d, _ in events], dtype=float)
        hit = np.array([c for _, _, c in events], dtype=bool)
        ex, ey = _xy(arr[:, 0], arr[:, 1])
        ax.scatter(ex[~hit], ey[~hit], s=10, marker="o", facecolors="none",
                   edgecolors="lightgray", label="events in window")  # fmt: skip
        if hit.any():
            ax.scatter(ex[hit], ey[hit], s=40, marker="*", color="gold", edgecolors="black",
                       linewidths=0.4, label="coincident")  # fmt: skip
        ax.legend(loc="lower right", fontsize=7, framealpha=0.6)
    ax.set_title(title, fontsize=9, parse_math=False)  # an id's "$...$" is text, not TeX
    return fig


def render_skymap_png(
    localization: Localization | None,
    events: Sequence[tuple[float, float, bool]],
    title: str,
    *,
    width_px: int = 900,
) -> bytes:
    """PNG bytes. ``events``: (ra_deg, dec_deg, coincident) of the window's detector events."""
    fig = sky_figure(localization, events, title, width_px=width_px)
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()
