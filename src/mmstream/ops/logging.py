"""structlog set-up: JSON lines by default (machine-searchable), console lines on request."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SECRET_WORDS = ("password", "secret", "token")
_secrets: set[str] = set()


def register_secrets(values: Iterable[Any]) -> None:
    """Values that must never reach a log line, whatever field or message carries them."""
    _secrets.update(str(v) for v in values if v is not None and len(str(v)) >= 4)


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """A settings mapping fit to log: secret-looking keys masked."""
    return {
        k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in config.items()
    }


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in redacted(value).items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The last processor before rendering: no registered secret leaves the process."""
    for key in list(event):
        if any(w in key.lower() for w in _SECRET_WORDS):
            event[key] = "***"
        else:
            event[key] = _scrub(event[key])
    return event


def configure(*, json: bool = True, level: int = logging.INFO) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
