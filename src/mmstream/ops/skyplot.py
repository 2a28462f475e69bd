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

from mmstream.model import Circle, Ellipse, FlatSkyMap, Localization, MultiOrderSkyMap
from mmstream.sky.credible import credible_level, probdensity


def _xy(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's mollweide axes want longitude in [-pi, pi], east to the left."""
    lon = np.radians(np.remainder(ra_deg + 180.0, 360.0) - 180.0)
    return -lon, np.radians(dec_deg)


def render_skymap_png(
    localization: Localization | None,
    events: Sequence[tuple[float, float, bool]],
    title: str,
    *,
    width_px: int = 900,
) -> bytes:
    """PNG bytes. ``events``: (ra_deg, dec_deg, coincident) of the window's detector events."""
    fig = plt.figure(figsize=(width_px / 100, width_px / 200), dpi=100)
    ax = fig.add_subplot(111, projection="mollweide")
    ax.grid(True, alpha=0.3)
    ax.set_xticklabels([f"{h}h" for h in (22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2)], fontsize=7)
    if isinstance(localization, MultiOrderSkyMap | FlatSkyMap):
        ra = np.linspace(0.0, 360.0, 721)
        dec = np.linspace(-89.75, 89.75, 360)
        grid_ra, grid_dec = np.meshgrid(ra, dec)
        flat_ra, flat_dec = grid_ra.ravel(), grid_dec.ravel()
        dens = probdensity(localization, flat_ra, flat_dec).reshape(grid_ra.shape)
        level = credible_level(localization, flat_ra, flat_dec).reshape(grid_ra.shape)
        x, y = _xy(grid_ra, grid_dec)
        ax.pcolormesh(x, y, dens, cmap="cylon" if "cylon" in plt.colormaps() else "magma",
                      shading="auto", rasterized=True)  # fmt: skip
        cs = ax.contour(x, y, level, levels=[0.5, 0.9], colors=["white", "cyan"], linewidths=1)
        ax.clabel(cs, fmt={0.5: "50%", 0.9: "90%"}, fontsize=7)
    elif isinstance(localization, Circle | Ellipse):
        cx, cy = _xy(np.array([localization.ra_deg]), np.array([localization.dec_deg]))
        ax.plot(cx, cy, marker="+", color="crimson", markersize=12)
        radius = (
            localization.radius_deg
            if isinstance(localization, Circle)
            else localization.semi_major_deg
        )
        t = np.linspace(0, 2 * np.pi, 200)
        ring_dec = np.clip(localization.dec_deg + radius * np.sin(t), -90, 90)
        cosd = max(np.cos(np.radians(localization.dec_deg)), 1e-3)
        ring_ra = localization.ra_deg + radius * np.cos(t) / cosd
        rx, ry = _xy(ring_ra, ring_dec)
        ax.plot(rx, ry, color="crimson", linewidth=1)
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
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()
