"""The worker pool, without a broker: a handler's result comes back from its process, and a
handler that loops, allocates without bound, kills its process or returns the wrong type
yields TIMED_OUT or FAILED with the reason, while the pool goes on with the next run."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mmstream.analyses import AnalysisInput
from mmstream.analyses.registry import AnalysisSpec, Registry
from mmstream.model import NS_PER_S, Alert, AlertType, ResultStatus, Role, SourceRef, Window
from mmstream.stream.store import EventStore
from mmstream.stream.workers import Done, InlinePool, MiB, ProcessPool, Task
from tests import runaway_analyses as runaway

T0 = 1_800_000_000 * NS_PER_S


def _task(task_id: int, spec: AnalysisSpec, time_limit_s: float = 30.0) -> Task:  # type: ignore[type-arg]
    alert = Alert("S1", "1", AlertType.PRELIMINARY, Role.OBSERVATION, "LVK", T0, None, None,
                  SourceRef("t", 0, task_id, "igwn"))  # fmt: skip
    window = Window.around(T0, -10, 10)
    events = {"icecube": EventStore(10**15).window("icecube", window)}
    inp = AnalysisInput(alert, window, events, spec.validate_params({}))
    return Task(task_id, spec, inp, time_limit_s, 256 * MiB)


def _wait(pool: ProcessPool, n: int, timeout: float = 60.0) -> list[Done]:
    done: list[Done] = []
    deadline = time.monotonic() + timeout
    while len(done) < n:
        assert time.monotonic() < deadline, f"only {len(done)} of {n} runs came back"
        done += pool.collect()
        time.sleep(0.02)
    return done


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    p = ProcessPool(1)
    yield p
    p.close()


def test_a_run_comes_back_from_its_worker_process(pool: ProcessPool) -> None:
    spec = Registry.discover().get("temporal_coincidence")
    pool.submit(_task(1, spec))
    (done,) = _wait(pool, 1)
    assert done.id == 1 and done.error is None and done.outcome is not None
    assert done.outcome.statistics["n_events"] == 0.0
    assert done.cost.cpu_s > 0 and done.cost.started_at


@pytest.mark.parametrize(
    ("spec", "status", "reason"),
    [
        (runaway.loops_forever, ResultStatus.TIMED_OUT, "stopped at the time limit of 2 s"),
        (runaway.allocates_without_bound, ResultStatus.FAILED, "memory limit of 256 MiB"),
        (runaway.crashes_the_interpreter, ResultStatus.FAILED, "worker process died (signal 9)"),
        (runaway.returns_a_string, ResultStatus.FAILED, "returned str, not an Outcome"),
        (
            runaway.returns_an_unreadable_outcome,
            ResultStatus.FAILED,
            "the outcome could not be read back: RuntimeError: cannot be rebuilt here",
        ),
    ],
)
def test_a_runaway_run_is_stopped_and_the_next_run_goes_on(
    pool: ProcessPool,
    spec: AnalysisSpec,
    status: ResultStatus,
    reason: str,  # type: ignore[type-arg]
) -> None:
    healthy = Registry.discover().get("temporal_coincidence")
    pool.submit(_task(10, spec, time_limit_s=2.0))
    pool.submit(_task(11, healthy))  # queued behind it: one worker
    first, second = sorted(_wait(pool, 2), key=lambda d: d.id)
    assert first.status is status and first.outcome is None
    assert first.error is not None and reason in first.error
    assert second.error is None and second.outcome is not None
    assert pool.busy() == 0


def test_a_setup_hook_runs_once_per_process_and_its_resources_reach_the_handler(
    pool: ProcessPool,
) -> None:
    pool.submit(_task(20, runaway.uses_a_table))
    pool.submit(_task(21, runaway.uses_a_table))
    first, second = sorted(_wait(pool, 2), key=lambda d: d.id)
    assert first.outcome is not None and second.outcome is not None
    assert first.outcome.statistics["sum"] == 3.0
    assert first.outcome.summary == second.outcome.summary, "made once, used twice"


def test_a_failing_setup_hook_is_a_failed_run_with_its_reason(pool: ProcessPool) -> None:
    pool.submit(_task(30, runaway.setup_fails))
    (done,) = _wait(pool, 1)
    assert done.status is ResultStatus.FAILED and done.error is not None
    assert done.error.startswith("setup failed: FileNotFoundError: no such PDF table")


def test_a_worker_that_died_while_idle_is_replaced_before_the_next_run(
    pool: ProcessPool,
) -> None:
    pool.workers[0].process.kill()  # an OOM kill between runs
    pool.workers[0].process.join(5)
    pool.submit(_task(40, Registry.discover().get("temporal_coincidence")))
    (done,) = _wait(pool, 1)
    assert done.error is None and done.outcome is not None


def test_the_inline_pool_runs_on_the_callers_thread() -> None:
    pool = InlinePool()
    pool.submit(_task(3, runaway.returns_a_string))
    (done,) = pool.collect()
    assert done.status is ResultStatus.FAILED and "not an Outcome" in (done.error or "")
    assert pool.collect() == []
