"""JSON from outside: parsed with the standard library, its failures made decode errors.

Python's decoder recurses once per nesting level; a document nested 100,000 deep raises
RecursionError (not a JSONDecodeError), which would otherwise escape every decoder.
"""

from __future__ import annotations

import json
from typing import Any

from mmstream.errors import DecodeError


def load_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise DecodeError("not JSON we accept: nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"not JSON: {str(exc)[:200]}") from exc
