"""A real single-node Apache Kafka (KRaft) that mmstream starts itself from Maven Central jars."""

from mmstream.broker.jars import resolve_jars
from mmstream.broker.local import BrokerInfo, LocalKafka

__all__ = ["BrokerInfo", "LocalKafka", "resolve_jars"]
