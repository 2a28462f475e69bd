import numpy as np
import pytest

from mmstream.errors import DecodeError
from mmstream.sky.credible import credible_level as credible_level_at
from mmstream.sky.credible import probdensity as probdensity_at
from mmstream.sky.moc import (
    gaussian_moc,
    pixel_area_sr,
    read_fits_bytes,
    uniq_to_order_ipix,
    write_fits_bytes,
)


def test_uniq_decoding_matches_the_nuniq_definition() -> None:
    order = np.array([0, 3, 11])
    ipix = np.array([5, 700, 123456])
    uniq = 4 * 4**order + ipix
    got_order, got_ipix = uniq_to_order_ipix(uniq)
    assert got_order.tolist() == order.tolist() and got_ipix.tolist() == ipix.tolist()


def test_gaussian_map_is_normalized_and_multi_order() -> None:
    m = gaussian_moc(30.0, 10.0, 2.0)
    assert np.sum(m.probdensity * pixel_area_sr(m.uniq)) == pytest.approx(1.0)
    orders, _ = uniq_to_order_ipix(m.uniq)
    assert orders.min() < orders.max(), "refined near the peak, coarse elsewhere"


def test_credible_levels_follow_the_2d_gaussian() -> None:
    sigma = 3.0
    m = gaussian_moc(120.0, 0.0, sigma, max_order=10)
    # For a 2-D Gaussian, the region inside radius r holds 1 - exp(-r^2 / 2 sigma^2).
    levels = credible_level_at(
        m, np.array([120.0, 120.0, 120.0]), np.array([1 * sigma, 2 * sigma, 0.0])
    )
    assert levels[0] == pytest.approx(1 - np.exp(-0.5), abs=0.03)
    assert levels[1] == pytest.approx(1 - np.exp(-2.0), abs=0.03)
    assert levels[2] < 0.01
    assert credible_level_at(m, np.array([300.0]), np.array([-60.0]))[0] > 0.999


def test_density_lookup_prefers_the_containing_pixel() -> None:
    m = gaussian_moc(0.0, 0.0, 1.0)
    dens = probdensity_at(m, np.array([0.0, 180.0]), np.array([0.0, 0.0]))
    assert dens[0] > 1000 * dens[1]


def test_fits_round_trip_and_bad_bytes() -> None:
    m = gaussian_moc(10.0, -20.0, 4.0, meta={"OBJECT": "TEST"})
    back = read_fits_bytes(write_fits_bytes(m))
    np.testing.assert_array_equal(back.uniq, m.uniq)
    np.testing.assert_allclose(back.probdensity, m.probdensity)
    assert back.meta["OBJECT"] == "TEST"
    with pytest.raises(DecodeError):
        read_fits_bytes(b"SIMPLE  = T not really fits")
