"""What an input may cost before it is refused: sizes, sky-map tiles, times, tolerances.

Every limit is checked before the resource is spent (a gzip stream is inflated only up to
``max_decompressed_bytes``, an Avro array of zero-byte items is refused before it is read),
so one hostile message can neither exhaust memory nor hang the service. The defaults sit
well above what real alerts need (docs/formats.md lists them with the reasons they give);
``[limits]`` in the settings file changes them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1 << 20


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A whole alert message (GCN and GWCelery send up to 8 MiB).
    max_message_bytes: int = Field(default=8 * MIB, gt=0)
    # A gzip-compressed sky map once inflated (a BAYESTAR multi-order map is 1-5 MB).
    max_decompressed_bytes: int = Field(default=64 * MIB, gt=0)
    # Multi-order sky maps: tile count and deepest order (HEALPix allows 0..29).
    max_skymap_tiles: int = Field(default=2_000_000, gt=0)
    max_skymap_order: int = Field(default=16, ge=0, le=29)
    # A sky map's probabilities must sum to 1 within this (after multiplying by tile areas).
    probability_tolerance: float = Field(default=0.01, gt=0)
    # An alert's event time may lie this far after the message arrived (broken clocks).
    alert_max_future_s: float = Field(default=86_400.0, ge=0)
    # Detector events and heartbeats: how far after, and before, the Kafka timestamp of
    # their message their time may lie. A heartbeat from the future would close windows.
    detector_max_future_s: float = Field(default=300.0, ge=0)
    detector_max_age_s: float = Field(default=30 * 86_400.0, gt=0)
    # Writers (``source``) one detector may have: each is tracked for sequence gaps.
    max_sources: int = Field(default=1000, gt=0)
    # Condition keys (detector.<d>.context) one detector may have: each is kept, and
    # written into every result of its windows.
    max_condition_keys: int = Field(default=1000, gt=0)
    # Dead letters larger than this keep only this many leading bytes; the whole message
    # stays in the raw archive and the headers give its length and sha256. The topics
    # mmstream creates take 8 MiB plus headers, so any accepted alert fits whole.
    deadletter_max_bytes: int = Field(default=8 * MIB, ge=0)
    # Original headers copied into a dead letter, at most this many bytes in all.
    deadletter_max_header_bytes: int = Field(default=64 * 1024, ge=0)


DEFAULT_LIMITS = Limits()
