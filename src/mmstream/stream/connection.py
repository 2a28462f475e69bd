"""Connecting to Kafka: a first round trip that turns bad credentials or an unreachable
broker into one clear error, instead of clients retrying quietly forever.

Security settings (SASL PLAIN / SCRAM / OAUTHBEARER, TLS) are librdkafka's own properties,
passed through unchanged from the config file's ``[kafka]`` table or ``KAFKA_*`` variables,
e.g. ``KAFKA_SECURITY_PROTOCOL=SASL_SSL``, ``KAFKA_SASL_MECHANISM=SCRAM-SHA-512``,
``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``; GCN Kafka's client credentials are
``sasl.mechanism=OAUTHBEARER``, ``sasl.oauthbearer.method=oidc``,
``sasl.oauthbearer.client.id``, ``sasl.oauthbearer.client.secret`` and
``sasl.oauthbearer.token.endpoint.url``.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from mmstream.errors import ConfigError

# Errors that retrying will not cure: say so at once.
_FATAL = {
    KafkaError._AUTHENTICATION: "the broker rejected the credentials",
    KafkaError.SASL_AUTHENTICATION_FAILED: "the broker rejected the credentials",
    KafkaError._SSL: "the TLS handshake failed",
    KafkaError._INVALID_ARG: "a client setting is invalid",
}


def describe(kafka: dict[str, Any]) -> str:
    """Where and as whom we connect, without secrets (for errors and logs)."""
    who = kafka.get("sasl.username") or kafka.get("sasl.oauthbearer.client.id")
    parts = [
        str(kafka.get("bootstrap.servers", "?")),
        str(kafka.get("security.protocol", "PLAINTEXT")),
    ]
    if mech := kafka.get("sasl.mechanism") or kafka.get("sasl.mechanisms"):
        parts.append(f"{mech} as {who or '?'}")
    return ", ".join(parts)


def check_connection(kafka: dict[str, Any], timeout: float = 30.0) -> None:
    """One metadata round trip; raises ConfigError naming what is wrong (never the secret)."""
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**kafka, "error_cb": errors.append}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            errors.append(exc.args[0])
        admin.poll(0.1)  # serves error_cb: authentication failures arrive there
        for err in errors:
            if err.code() in _FATAL:
                raise ConfigError(
                    f"cannot connect to Kafka ({describe(kafka)}): {_FATAL[err.code()]}: "
                    f"{err.str()}"
                )
        errors.clear()
    raise ConfigError(f"cannot reach Kafka ({describe(kafka)}) within {timeout:g} s")
