"""Predict figures in worker processes, one figure at a time, each under a time limit.

    with FigurePool(functools.partial(Stack.from_bundle, "artifacts/bundle"), jobs=4, figure_timeout_s=300) as pool:
        for outcome in pool.run([(case_id, path), ...]):
            ...   # Outcome(key, annotation or None, problem or None), in completion order

Each worker is a ``spawn`` process (safe with CUDA and torch's thread pools) that builds its annotator
(anything with ``annotate(path) -> str`` and optionally ``set_level(level)``, e.g. a ``Stack``) once
from a picklable factory, then takes one figure at a time over its own pipe. torch, OpenCV and BLAS
run with ``cores // jobs`` threads per worker so the workers do not fight over cores. The supervisor
knows which figure each worker holds and since when: a figure that outlives ``figure_timeout_s`` gets
its worker killed, a worker that dies (segfault, out-of-memory kill, ``os._exit``) is noticed by its
process sentinel; either way the figure comes back with a ``problem`` (the caller writes
``authentic``), a fresh worker takes the dead one's place and the run goes on. The cost level (see
``Stack.set_level`` and ``ensemble.guard``) travels with each task, so a time guard in the parent can
step every worker down.

:class:`SerialRunner` runs the same contract in-process (no isolation, no time limit): for tests and
callers that pass a plain ``annotate`` function.

Top-level imports are standard library only: a worker sets its thread limits before the factory
imports numpy, torch or OpenCV.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
Task = tuple[str, Path]


@dataclass(frozen=True)
class Outcome:
    """One figure's result: its annotation, or ``None`` and the reason it has none."""

    key: str
    annotation: str | None
    problem: str | None = None
    cpu_s: float | None = None  # CPU seconds the figure cost its process (all threads)


class FigureRunner(Protocol):
    def run(self, tasks: Iterable[Task], level: Callable[[], int] = ...) -> Iterator[Outcome]: ...


def available_cores() -> int:
    """Cores this process may use (CPU affinity where the OS tells it, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None) -> int:
    """``jobs`` workers; ``0``, ``None`` or negative means one per available core."""
    return available_cores() if jobs is None or jobs <= 0 else int(jobs)


def _limit_threads(threads: int) -> None:
    """Thread pools of the numeric libraries, before (environment) and after (calls) they load."""
    import cv2

    cv2.setNumThreads(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "worker process vanished"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"worker process killed by {name}{hint}"
    return f"worker process exited with status {code}"


def _die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this worker when its parent dies (a killed notebook leaves no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(payload: bytes, conn: Connection, threads: int) -> None:
    """Body of a worker: build the annotator once, then annotate one task at a time until ``None``."""
    _die_with_parent()
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        _limit_threads(threads)
        annotator = pickle.loads(payload)()
        _limit_threads(threads)  # again: the factory may have imported torch
    except BaseException as exc:  # report why, the parent decides
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    level = 0
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        key, path, wanted = task
        if wanted != level and hasattr(annotator, "set_level"):
            annotator.set_level(wanted)
            level = wanted
        cpu = time.process_time()
        try:
            annotation, problem = annotator.annotate(Path(path)), None
        except Exception as exc:  # a bad figure is the parent's to log
            annotation, problem = None, f"{type(exc).__name__}: {exc}"
        try:
            conn.send(("done", key, annotation, problem, time.process_time() - cpu))
        except OSError:  # the parent is gone
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    task: Task | None = None
    since: float = 0.0


class WorkerStartError(RuntimeError):
    """The annotator cannot be built in a worker (e.g. a missing bundle): no figure could be predicted."""


class FigurePool:
    """``jobs`` isolated worker processes, each holding one annotator built by ``factory``."""

    def __init__(
        self,
        factory: Callable[[], Any],
        jobs: int | None = None,
        figure_timeout_s: float | None = None,
        threads: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.jobs = resolve_jobs(jobs)
        self.figure_timeout_s = figure_timeout_s if figure_timeout_s and figure_timeout_s > 0 else None
        self.threads = threads or max(1, available_cores() // self.jobs)
        self.clock = clock
        self._payload = pickle.dumps(factory)
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._early_deaths = 0
        self.replaced = 0

    def __enter__(self) -> FigurePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(self._payload, child, self.threads), name="recodai-figure", daemon=True
        )
        # The child inherits the environment at start: BLAS/OpenMP pools are sized before anything in it
        # (even a re-imported __main__) loads numpy. OpenBLAS threads that outnumber free cores spin and
        # can make one small SVD take seconds instead of milliseconds.
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: str(self.threads) for name in THREAD_VARIABLES})
        try:
            process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        child.close()
        return _Worker(process, parent)

    def _stop(self, worker: _Worker, kill: bool) -> None:
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        worker.conn.close()

    def _replace(self, index: int, kill: bool) -> None:
        self._stop(self._workers[index], kill)
        self._workers[index] = self._start()
        self.replaced += 1

    def close(self) -> None:
        """Ask every worker to finish, and kill those that do not within a few seconds."""
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        deadline = time.monotonic() + 5
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            self._stop(worker, kill=True)
        self._workers = []

    def _receive(self, index: int) -> Iterator[Outcome]:
        """Every message waiting on worker ``index``; a dead or hung worker is replaced."""
        worker = self._workers[index]
        alive = worker.process.is_alive()  # before reading: a dead worker's last words are all in the pipe
        while True:
            try:
                if not worker.conn.poll():
                    break
                message = worker.conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "ready":
                worker.ready, self._early_deaths = True, 0
            elif message[0] == "failed":
                self.close()
                raise WorkerStartError(f"a prediction worker could not start: {message[1]}")
            else:
                _, key, annotation, problem, cpu_s = message
                worker.task = None
                yield Outcome(key, annotation, problem, cpu_s)
        if not alive:
            worker.process.join(timeout=10)
            reason = _describe_exit(worker.process.exitcode)
            if worker.task is not None:
                yield Outcome(worker.task[0], None, f"{reason}; a fresh worker takes over")
            elif not worker.ready:
                self._early_deaths += 1
                if self._early_deaths > 2 * self.jobs:
                    self.close()
                    raise WorkerStartError(f"prediction workers keep dying while starting ({reason})")
            self._replace(index, kill=False)
        elif (
            worker.task is not None
            and self.figure_timeout_s is not None
            and self.clock() - worker.since > self.figure_timeout_s
        ):
            key = worker.task[0]
            self._replace(index, kill=True)
            yield Outcome(key, None, f"over the figure time limit of {self.figure_timeout_s:g} s; worker killed")

    def warm_up(self) -> None:
        """Start every worker and wait until each has built its annotator (to time figures alone)."""
        if not self._workers:
            self._workers = [self._start() for _ in range(self.jobs)]
        while not all(w.ready for w in self._workers):
            wait([w.conn for w in self._workers] + [w.process.sentinel for w in self._workers])
            for index in range(len(self._workers)):
                for _ in self._receive(index):  # idle workers: only "ready" (or a death) to read
                    pass

    def run(self, tasks: Iterable[Task], level: Callable[[], int] = lambda: 0) -> Iterator[Outcome]:
        """Annotate every ``(key, path)`` task; outcomes in completion order, one per task taken.

        ``tasks`` is read lazily (one task whenever a worker is free), so a caller may stop feeding
        (e.g. when a time budget is spent); ``level()`` is asked for each task as it is sent.
        """
        pending = iter(tasks)
        first = next(pending, None)
        if first is None:
            return  # nothing to do: no worker is started
        requeued: list[Task] = [first]  # tasks taken but not (yet) delivered to a worker
        if not self._workers:
            self._workers = [self._start() for _ in range(self.jobs)]
        exhausted = False
        while True:
            for worker in self._workers:
                if exhausted or not worker.ready or worker.task is not None:
                    continue
                task = requeued.pop() if requeued else next(pending, None)
                if task is None:
                    exhausted = True
                    break
                try:
                    worker.conn.send((task[0], str(task[1]), level()))
                except OSError:  # died while idle: the sentinel reports it, the task goes to another worker
                    requeued.append(task)
                    continue
                worker.task, worker.since = task, self.clock()
            busy = [w for w in self._workers if w.task is not None]
            if exhausted and not busy:
                return
            timeout = None
            if self.figure_timeout_s is not None and busy:
                timeout = max(0.0, min(w.since for w in busy) + self.figure_timeout_s - self.clock()) + 0.05
            wait([w.conn for w in self._workers] + [w.process.sentinel for w in self._workers], timeout)
            for index in range(len(self._workers)):
                yield from self._receive(index)


class SerialRunner:
    """The :class:`FigurePool` contract in this process: no isolation, no time limit."""

    def __init__(self, annotate: Callable[[Path], str], set_level: Callable[[int], None] | None = None):
        self.annotate, self.set_level = annotate, set_level

    def warm_up(self) -> None:
        """Nothing to start: the annotator already lives in this process."""

    def run(self, tasks: Iterable[Task], level: Callable[[], int] = lambda: 0) -> Iterator[Outcome]:
        current = 0
        for key, path in tasks:
            wanted = level()
            if wanted != current and self.set_level is not None:
                self.set_level(wanted)
                current = wanted
            cpu = time.process_time()
            try:
                annotation, problem = self.annotate(path), None
            except Exception as exc:  # one bad image must never sink the submission
                annotation, problem = None, f"{type(exc).__name__}: {exc}"
            yield Outcome(key, annotation, problem, time.process_time() - cpu)
