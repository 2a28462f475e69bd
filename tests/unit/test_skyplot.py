"""The dashboard's sky picture names the positions it draws: RA labels grow to the left from
0 h at the right edge through 12 h in the middle (issue 18: they were 12 h off), for every kind
of localization, and rendering prints no matplotlib warning (the pcolormesh one, issue 18).

Expected values are worked out by hand, not by the code under test: in matplotlib's Mollweide
axes x runs from -180° (left) to +180° (right), and with 12 h in the middle RA 30° (2 h) lies
at x = +150°, RA 300° (20 h) at x = -120°.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import healpy as hp
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.figure import Figure

from mmstream.model import Circle, Ellipse, FlatSkyMap, Localization
from mmstream.ops.skyplot import render_skymap_png, sky_figure
from mmstream.sky.moc import gaussian_moc

# tick x (degrees) -> the label it must carry, by hand
LABELS = {-150: "22h", -120: "20h", -90: "18h", -60: "16h", -30: "14h", 0: "12h",
          30: "10h", 60: "8h", 90: "6h", 120: "4h", 150: "2h"}  # fmt: skip


def _flat_map(ra_deg: float, dec_deg: float) -> FlatSkyMap:
    nside = 64
    vec = np.asarray(hp.pix2vec(nside, np.arange(hp.nside2npix(nside)), nest=True)).T
    prob = np.exp(200.0 * (vec @ hp.ang2vec(ra_deg, dec_deg, lonlat=True) - 1.0))
    return FlatSkyMap(nside, True, prob / prob.sum())


KINDS: dict[str, Localization | None] = {
    "map": gaussian_moc(300.0, -40.0, 2.0),
    "flat map": _flat_map(300.0, -40.0),
    "circle": Circle(30.0, 10.0, 5.0, 0.9),
    "ellipse": Ellipse(30.0, 10.0, 8.0, 3.0, 40.0, 0.9),
    "none": None,
}


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Iterator[tuple[Figure, Axes]]:
    import matplotlib.pyplot as plt

    assert plt.get_backend().lower() == "agg"
    fig = sky_figure(KINDS[request.param], [(30.0, 10.0, True), (300.0, -40.0, False)], "t")
    fig.canvas.draw()
    yield fig, fig.axes[0]
    plt.close(fig)


def _labels(ax: Axes) -> dict[int, str]:
    ticks = [round(math.degrees(x)) for x in ax.get_xticks()]
    return dict(zip(ticks, [t.get_text() for t in ax.get_xticklabels()], strict=True))


def _arr(values: object) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _near(got: np.ndarray, ra_x_deg: float, dec_deg: float, tol_deg: float) -> bool:
    """Whether axes coordinates ``got`` (x, y in radians) are (``ra_x_deg``, ``dec_deg``)."""
    return (abs(math.degrees(got[0]) - ra_x_deg) <= tol_deg
            and abs(math.degrees(got[1]) - dec_deg) <= tol_deg)  # fmt: skip


@pytest.mark.parametrize("figure", list(KINDS), indirect=True)
def test_ra_labels_grow_to_the_left_with_12h_in_the_middle(figure: tuple[Figure, Axes]) -> None:
    _, ax = figure
    assert _labels(ax) == LABELS
    # and the events are drawn where the labels say: (30°, +10°) under 2h, (300°, -40°) under 20h
    (hits,) = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label() == "coincident"]  # fmt: skip
    (others,) = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label() == "events in window"]  # fmt: skip
    assert _near(_arr(hits.get_offsets())[0], 150.0, 10.0, 1e-6)
    assert _near(_arr(others.get_offsets())[0], -120.0, -40.0, 1e-6)


@pytest.mark.parametrize("figure", ["circle"], indirect=True)
def test_a_circle_at_2h_is_drawn_under_the_2h_label(figure: tuple[Figure, Axes]) -> None:
    fig, ax = figure
    (centre,) = [line for line in ax.lines if line.get_gid() == "centre"]
    assert _near(np.r_[_arr(centre.get_xdata()), _arr(centre.get_ydata())], 150.0, 10.0, 1e-6)
    (outline,) = [line for line in ax.lines if line.get_gid() == "outline"]
    x = np.degrees(_arr(outline.get_xdata()))
    y = np.degrees(_arr(outline.get_ydata()))
    # radius 5° at dec 10°: dec 5..15, RA 30 ± 5/cos(10°) = 30 ± 5.08 -> x 144.9 .. 155.1
    assert (y.min(), y.max()) == pytest.approx((5.0, 15.0), abs=0.01)
    assert (x.min(), x.max()) == pytest.approx((144.92, 155.08), abs=0.02)
    # on the picture itself, the label nearest the circle (in pixels) is "2h"
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    cx, _ = ax.transData.transform((math.radians(150.0), math.radians(10.0)))
    apart = {t.get_text(): abs((b.x0 + b.x1) / 2 - cx)
             for t in ax.get_xticklabels() for b in [t.get_window_extent(renderer)]}  # fmt: skip
    assert min(apart, key=apart.__getitem__) == "2h" and apart["2h"] < 10.0


def test_an_ellipse_is_drawn_with_its_axes_and_position_angle() -> None:
    import matplotlib.pyplot as plt

    # at the equator, RA 90° (6h, x = 90°); major axis 8° east-west (PA 90°), minor 2°:
    # east is to the left, so x runs 90 - 8 .. 90 + 8 and dec -2 .. 2
    fig = sky_figure(Ellipse(90.0, 0.0, 8.0, 2.0, 90.0, 0.9), [], "t")
    try:
        (outline,) = [line for line in fig.axes[0].lines if line.get_gid() == "outline"]
        x = np.degrees(_arr(outline.get_xdata()))
        y = np.degrees(_arr(outline.get_ydata()))
        assert (x.min(), x.max()) == pytest.approx((82.0, 98.0), abs=0.01)
        assert (y.min(), y.max()) == pytest.approx((-2.0, 2.0), abs=0.01)
        # the outline starts (t = 0) at the major axis' end the position angle points to: east
        assert (x[0], y[0]) == pytest.approx((82.0, 0.0), abs=0.01)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("figure", ["map", "flat map"], indirect=True)
def test_a_map_is_brightest_under_its_label(figure: tuple[Figure, Axes]) -> None:
    _, ax = figure
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    dens = _arr(mesh.get_array()).reshape(360, 720)
    i, j = np.unravel_index(int(np.argmax(dens)), dens.shape)
    corners = _arr(mesh.get_coordinates())[i : i + 2, j : j + 2].reshape(-1, 2)
    # the map peaks at RA 300° (20h), dec -40°: x = -120°
    assert _near(corners.mean(axis=0), -120.0, -40.0, 1.0)
    assert _labels(ax)[-120] == "20h"


@pytest.mark.parametrize("kind", list(KINDS))
def test_rendering_warns_of_nothing(kind: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # others' deprecations
        png = render_skymap_png(KINDS[kind], [(30.0, 10.0, True), (359.0, 0.0, False)], kind)
    assert png.startswith(b"\x89PNG")
