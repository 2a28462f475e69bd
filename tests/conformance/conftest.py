from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA


def samples(*patterns: str) -> list[Path]:
    """Sample files under ../shared/data matching the glob patterns (empty when absent)."""
    found: list[Path] = []
    for pattern in patterns:
        found.extend(sorted(SHARED_DATA.glob(pattern)))
    return found


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(SHARED_DATA)) for p in paths]


def skip_if_empty(paths: list[Path]) -> None:
    if not paths:
        pytest.skip(f"no samples under {SHARED_DATA}")
