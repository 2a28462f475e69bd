"""Analyses: plain Python functions registered with :func:`analysis`."""

from mmstream.analyses.registry import (
    AnalysisInput,
    AnalysisSpec,
    CoincidentEvent,
    Outcome,
    Registry,
    analysis,
)

__all__ = ["AnalysisInput", "AnalysisSpec", "CoincidentEvent", "Outcome", "Registry", "analysis"]
