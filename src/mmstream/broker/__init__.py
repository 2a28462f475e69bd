"""A real single-node Apache Kafka (KRaft) that mmstream starts itself from Maven Central jars."""

from mmstream.broker.local import BrokerInfo, LocalKafka, resolve_jars

__all__ = ["BrokerInfo", "LocalKafka", "resolve_jars"]
