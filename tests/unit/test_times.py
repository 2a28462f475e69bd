import pytest

from mmstream.errors import DecodeError
from mmstream.times import format_utc, parse_utc_ns

BASE = 1541110966_000000000  # 2018-11-01T22:22:46Z


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2018-11-01T22:22:46.654Z", BASE + 654_000_000),
        ("2018-11-01T22:22:46.654437", BASE + 654_437_000),
        ("2018-11-01 22:22:46.654437+00:00", BASE + 654_437_000),
        ("2018-11-01T22:22:46Z", BASE),
        ("2018-11-01T22:22:46.123456789", BASE + 123_456_789),
    ],
)
def test_alert_time_spellings_parse_to_exact_nanoseconds(text: str, ns: int) -> None:
    assert parse_utc_ns(text) == ns


def test_format_round_trips() -> None:
    ns = BASE + 123_456_789
    assert format_utc(ns) == "2018-11-01T22:22:46.123456789Z"
    assert parse_utc_ns(format_utc(ns)) == ns


def test_garbage_time_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="unreadable UTC time"):
        parse_utc_ns("yesterday at noon")


@pytest.mark.parametrize(
    "text",
    [
        "2018-11-01T22:22:46.654Z",
        "2019-04-25 08:18:05.017553",
        "1999-12-31T23:59:59.999999999",
        "2200-06-30T12:00:00",
        "1700-01-01T00:00:00.5+00:00",
        "1969-07-20T20:17:40",
    ],
)
def test_the_plain_spelling_reads_as_astropy_reads_it(text: str) -> None:
    """Plain ISO times skip astropy (times.py); astropy itself is the reference."""
    import numpy as np
    from astropy.time import Time

    cleaned = text.removesuffix("Z").removesuffix("+00:00")
    want = Time(cleaned, scale="utc", precision=9).datetime64.astype("datetime64[ns]")
    assert parse_utc_ns(text) == int(want.astype(np.int64))


@pytest.mark.parametrize(
    "text", ["2018-02-30T00:00:00", "2018-11-31T10:00:00", "2018-13-01T00:00:00"]
)
def test_a_time_that_does_not_exist_is_a_decode_error(text: str) -> None:
    with pytest.raises(DecodeError, match="unreadable UTC time"):
        parse_utc_ns(text)
