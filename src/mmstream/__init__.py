"""mmstream: real-time multi-messenger follow-up of astronomical alerts over Apache Kafka."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mmstream")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
