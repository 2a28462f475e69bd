"""What the commands' arguments name: the settings, the ledger, an instant (shared by
``cli.py`` and ``opscli.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def settings_of(args: argparse.Namespace) -> Any:
    from mmstream.config import load_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "bootstrap", None):
        overrides["kafka"] = {"bootstrap.servers": args.bootstrap}
    return load_settings(args.config, **overrides)


def ledger_of(args: argparse.Namespace) -> Any:
    from mmstream.errors import ConfigError
    from mmstream.ledger.store import Ledger

    url = args.ledger or settings_of(args).ledger_location()
    if url is None:
        raise ConfigError("the ledger is off in this configuration (ledger = false)")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ConfigError(f"no ledger at {url}: has mmstream run with this configuration?")
    return Ledger(url)


def instant(text: str) -> int:
    from mmstream.errors import ConfigError, DecodeError
    from mmstream.times import now_ns, parse_utc_ns

    if text == "now":
        return now_ns()
    try:
        return parse_utc_ns(text)
    except DecodeError as exc:
        raise ConfigError(f"not a UTC time: {text!r} (e.g. 2026-11-22T10:00:00Z)") from exc
