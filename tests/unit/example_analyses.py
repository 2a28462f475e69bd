"""An analysis as a physicist would ship it: a module with a decorated function."""

from pydantic import BaseModel, ConfigDict

from mmstream.analyses import AnalysisInput, Outcome, analysis


class CountParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    minimum: int = 1


@analysis(
    name="count_events", version="2.1.0", window=(-10, 10), params=CountParams, sources=["IceCube"]
)
def count_events(inp: AnalysisInput[CountParams]) -> Outcome:
    """Count events in the window."""
    n = sum(len(c) for c in inp.events.values())
    return Outcome(
        summary=f"{n} events", statistics={"n": float(n), "enough": float(n >= inp.params.minimum)}
    )
