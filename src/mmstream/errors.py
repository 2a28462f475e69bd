"""One exception hierarchy: every error mmstream raises on purpose is an MmstreamError."""


class MmstreamError(Exception):
    """Root of all mmstream errors."""


class ConfigError(MmstreamError):
    """The configuration is invalid; the message says which setting and how to fix it."""


class BrokerError(MmstreamError):
    """The local Kafka broker could not be resolved, started, reached or stopped."""


class DecodeError(MmstreamError):
    """A message could not be decoded; it goes to the dead-letter topic with this reason."""


class RegistryError(MmstreamError):
    """An analysis is declared wrongly (bad signature, duplicate name, bad parameters)."""


class AnalysisError(MmstreamError):
    """A registered analysis raised while processing an alert."""
