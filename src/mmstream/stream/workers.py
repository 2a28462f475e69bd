"""Where handlers run: worker processes with a time and a memory limit, or inline.

A handler is a physicist's code: it may loop forever, allocate without bound or crash the
interpreter. In a worker process none of that reaches the service: at its time limit the
worker is killed (TIMED_OUT); its address space is capped by ``RLIMIT_AS`` at the limit
above what the worker held when the run began, so an allocation past it raises
MemoryError (FAILED); a worker that dies is replaced (FAILED, with its exit code). Workers
come from a ``forkserver``: forking the service itself (threads, Kafka clients) is unsafe.
The inline pool runs a handler on the caller's thread, without limits (unit tests).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import pickle
import resource
import signal
import time
import traceback
from collections import deque
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from mmstream.analyses.registry import AnalysisInput, AnalysisSpec, Outcome, params_sha256
from mmstream.model import ResultStatus
from mmstream.ops.logging import get_logger
from mmstream.stream.cost import Cost, measured

log = get_logger("mmstream.workers")
MiB = 1 << 20


@dataclass
class Task:
    id: int
    spec: AnalysisSpec[Any]
    inp: AnalysisInput[Any]
    time_limit_s: float
    memory_limit_bytes: int | None
    measure_memory: bool = True


@dataclass
class Done:
    """A finished run: an outcome, or why there is none (``status`` FAILED or TIMED_OUT)."""

    id: int
    outcome: Outcome | None
    error: str | None = None
    status: ResultStatus | None = None
    cost: Cost = field(default_factory=Cost)
    traceback: str | None = None


_RESOURCES: dict[tuple[str, str], Any] = {}  # (analysis, params hash) -> setup's result


def _with_resources(task: Task) -> AnalysisInput[Any]:
    """The input, with what the analysis's setup hook made (once per process and params)."""
    spec, inp = task.spec, task.inp
    if spec.setup is None:
        return inp
    key = (spec.label, params_sha256(inp.params))
    if key not in _RESOURCES:
        _RESOURCES[key] = spec.setup(inp.params)
    return replace(inp, context=replace(inp.context, resources=_RESOURCES[key]))


def execute(task: Task) -> Done:
    """Run one handler, measured; an exception is a FAILED run with its one-line reason."""
    cost = Cost()
    try:
        inp = _with_resources(task)
    except Exception as exc:
        error = "setup failed: " + "".join(traceback.format_exception_only(exc)).strip()
        return Done(task.id, None, error, ResultStatus.FAILED, cost, traceback.format_exc())
    try:
        with measured(task.measure_memory) as cost:
            outcome = task.spec(inp)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"the handler returned {type(outcome).__name__}, not an Outcome")
        return Done(task.id, outcome, cost=cost)
    except MemoryError as exc:
        limit = task.memory_limit_bytes
        why = f"memory limit of {limit // MiB} MiB exceeded" if limit else "out of memory"
        return Done(task.id, None, f"MemoryError: {why} {exc}".strip(), ResultStatus.FAILED,
                    cost)  # fmt: skip
    except Exception as exc:
        error = "".join(traceback.format_exception_only(exc)).strip()
        return Done(task.id, None, error, ResultStatus.FAILED, cost, traceback.format_exc())


class InlinePool:
    """Runs each handler at once, on the caller's thread (no limits)."""

    def __init__(self) -> None:
        self._done: list[Done] = []

    def submit(self, task: Task) -> None:
        self._done.append(execute(task))

    def collect(self) -> list[Done]:
        done, self._done = self._done, []
        return done

    def busy(self) -> int:
        return 0

    def wait(self, timeout_s: float) -> None:
        return None  # runs finish inside submit

    def close(self) -> None:
        return None


def _vsize() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _worker(conn: Connection) -> None:
    """A worker process: run tasks until told to stop (or the service is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service to handle
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        try:
            task = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if task is None:
            return
        if task.memory_limit_bytes is not None:
            soft = _vsize() + task.memory_limit_bytes
            resource.setrlimit(resource.RLIMIT_AS, (soft if hard < 0 else min(soft, hard), hard))
        try:
            done = execute(task)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        try:
            data = pickle.dumps(done)
        except Exception as exc:  # an outcome that does not pickle
            data = pickle.dumps(Done(task.id, None, "the outcome could not be returned: "
                                     f"{type(exc).__name__}: {exc}", ResultStatus.FAILED,
                                     done.cost))  # fmt: skip
        conn.send_bytes(data)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: Task | None = None
    started: float = 0.0


class ProcessPool:
    """``size`` worker processes; tasks queue while all are busy."""

    def __init__(self, size: int, preload: list[str] | None = None) -> None:
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["numpy", "mmstream.analyses.registry", *(preload or [])])
        self.workers = [self._start() for _ in range(size)]
        self.queue: deque[Task] = deque()
        self._failed: list[Done] = []

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(target=_worker, args=(child,), daemon=True,
                                   name="mmstream-analysis")  # fmt: skip
        process.start()
        child.close()
        return _Worker(process, parent)

    def submit(self, task: Task) -> None:
        self.queue.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        for i in range(len(self.workers)):
            if not self.queue:
                return
            if self.workers[i].task is not None:
                continue
            if not self.workers[i].process.is_alive():  # died while idle (an OOM kill)
                self._replace(i)
            w = self.workers[i]
            task = self.queue.popleft()
            try:
                data = pickle.dumps(task)
            except Exception as exc:  # an input that does not pickle
                self._failed.append(
                    Done(
                        task.id,
                        None,
                        f"could not hand the run to a worker: {type(exc).__name__}: {exc}",
                        ResultStatus.FAILED,
                    )
                )
                continue
            try:
                w.conn.send_bytes(data)
            except OSError:  # the worker died after the check: a new one takes it
                self._replace(i)
                self.workers[i].conn.send_bytes(data)
            self.workers[i].task, self.workers[i].started = task, time.monotonic()

    def collect(self) -> list[Done]:
        """Finished runs, and runs stopped at their limit or by their worker's death."""
        out, self._failed = self._failed, []
        for i, w in enumerate(self.workers):
            task = w.task
            if task is None:
                continue
            eof = False
            if w.conn.poll():
                try:
                    data = w.conn.recv_bytes()
                except (EOFError, OSError):  # the worker is gone (maybe not yet reaped):
                    w.process.join(1)  # reported now, never polled again in a spin
                    data, eof = None, True
                if data is not None:
                    w.task = None
                    try:
                        out.append(pickle.loads(data))
                    except Exception as exc:  # e.g. an exception object in the outcome
                        out.append(
                            Done(
                                task.id,
                                None,
                                f"the outcome could not be read back: {type(exc).__name__}: {exc}",
                                ResultStatus.FAILED,
                            )
                        )
                        self._replace(i)
                    continue
            elapsed = time.monotonic() - w.started
            if eof or w.conn.closed or not w.process.is_alive():
                code = w.process.exitcode
                why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                out.append(
                    Done(
                        task.id,
                        None,
                        f"the worker process died ({why}) while running the analysis",
                        ResultStatus.FAILED,
                    )
                )
            elif elapsed > task.time_limit_s:
                out.append(Done(task.id, None, f"stopped at the time limit of "
                                f"{task.time_limit_s:g} s", ResultStatus.TIMED_OUT))  # fmt: skip
            else:
                continue
            self._replace(i)
        self._dispatch()
        return out

    def _replace(self, i: int) -> None:
        w = self.workers[i]
        if w.process.is_alive():
            w.process.kill()
        w.process.join(5)
        w.conn.close()
        self.workers[i] = self._start()

    def busy(self) -> int:
        return len(self.queue) + sum(w.task is not None for w in self.workers)

    def wait(self, timeout_s: float) -> None:
        """Until a worker answers (or dies), at most ``timeout_s``: the loop picks a result up
        as it comes instead of one poll timeout later."""
        conns = [w.conn for w in self.workers if w.task is not None]
        if conns:
            multiprocessing.connection.wait(conns, timeout_s)

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.conn.send_bytes(pickle.dumps(None))
        for w in self.workers:
            w.process.join(2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(2)
            w.conn.close()


Pool = InlinePool | ProcessPool


def make_pool(workers: int, preload: list[str] | None = None) -> Pool:
    return ProcessPool(workers, preload) if workers > 0 else InlinePool()
