"""Validate JSON against gcn-schema (from ../shared/data), resolving its $refs locally."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SHARED_DATA

SCHEMA_ROOT = SHARED_DATA / "gcn-json" / "gcn-schema"


def validator_for(relative: str) -> Any:
    """A jsonschema validator for e.g. ``gcn/notices/icecube/lvk_nu_track_search.schema.json``."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    if not (SCHEMA_ROOT / relative).exists():
        pytest.skip(f"gcn-schema not found under {SCHEMA_ROOT}")
    resources = []
    for path in SCHEMA_ROOT.rglob("*.schema.json"):
        doc = json.loads(path.read_text())
        if "$id" in doc:
            resources.append((doc["$id"], referencing.Resource.from_contents(doc)))
    registry = referencing.Registry().with_resources(resources)
    schema = json.loads((SCHEMA_ROOT / relative).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)
