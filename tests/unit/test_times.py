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
