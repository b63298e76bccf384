"""Where corpus work runs: a tiny scheduler interface over local processes or Dask.

A scheduler maps a picklable top-level function over a list of tasks and hands the
results back **in task order**; any reduction (summing E-step statistics, counting
frames) happens on the driver, in that order, so a run gives the same floating-point
sums whichever scheduler ran it::

    with get_scheduler("local", jobs=2) as sched:
        results = sched.map(fn, tasks, on_result=lambda i, r: bar.update())
        total = sched.map_reduce(fn, tasks, operator.add)

``local``
    A pool of spawned worker processes on this machine. Every worker dies with its
    parent: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, plus a watchdog thread that
    exits the worker when its parent process is gone (other systems, or a parent that
    died while the worker held the GIL). A ``kill -9`` of the driver therefore leaves
    no worker behind, and the multiprocessing resource tracker, whose pipe the workers
    held open, sees end-of-file and exits too.
``dask``
    A ``dask.distributed.LocalCluster`` with ``jobs`` single-threaded worker processes
    (``pip install "vqalign[dask]"``).
``tcp://host:port`` (or any Dask address)
    An existing Dask cluster (``Client(address)``). Its workers must see the same
    paths as the driver (a shared file system): tasks carry paths, never arrays.

The numerical code never knows which scheduler runs it: a task is a plain function of
plain arguments. ``jobs=1`` with ``local`` runs the tasks in this process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from vqalign.exceptions import ParameterError, VQAlignError

SCHEDULERS = ("local", "dask")


# --------------------------------------------------------------------------- worker set-up
def _die_with_parent(parent_pid: int) -> None:
    """Initializer of every local worker: exit as soon as the parent process is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog remains
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        import time
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="vqalign-parent-watchdog", daemon=True).start()
    # one numba/BLAS thread per worker process: the processes are the parallelism
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


# --------------------------------------------------------------------------- interface
class Scheduler:
    """Map a function over tasks, results in task order. Subclasses: Local, Dask."""

    name = "scheduler"
    n_workers = 1

    def _run(self, fn, tasks, on_result):  # pragma: no cover - abstract
        raise NotImplementedError

    def map(self, fn: Callable, tasks: Sequence, *,
            on_result: Callable[[int, object], None] | None = None) -> list:
        """``[fn(t) for t in tasks]`` computed by the workers, in task order.

        ``on_result(i, result)`` is called on the driver as each task finishes (in
        completion order): progress bars, writing records. An exception raised by a
        task is re-raised here; tasks that must not stop a corpus catch their own
        errors and return them as values.
        """
        tasks = list(tasks)
        if not tasks:
            return []
        return self._run(fn, tasks, on_result)

    def map_reduce(self, fn: Callable, tasks: Sequence, reduce: Callable, initial=None, *,
                   on_result: Callable[[int, object], None] | None = None):
        """Fold ``reduce(acc, fn(t))`` over the results in task order on the driver
        (deterministic sums whatever order the workers finish in)."""
        acc = initial
        first = initial is None
        for r in self.map(fn, tasks, on_result=on_result):
            if first:
                acc, first = r, False
            else:
                acc = reduce(acc, r)
        return acc

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        return f"{self.name} ({self.n_workers} worker{'s' if self.n_workers != 1 else ''})"


class LocalScheduler(Scheduler):
    """Spawned worker processes on this machine that never outlive the driver."""

    name = "local"

    def __init__(self, jobs: int = 2):
        self.n_workers = int(jobs)
        self._pool = None

    def _executor(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor
            # processes are created on first submit from this (the driver's) thread;
            # PDEATHSIG is tied to the creating thread, so always map from one thread
            self._pool = ProcessPoolExecutor(max_workers=self.n_workers,
                                             mp_context=mp.get_context("spawn"),
                                             initializer=_die_with_parent,
                                             initargs=(os.getpid(),))
        return self._pool

    def _run(self, fn, tasks, on_result):
        if self.n_workers == 1 or len(tasks) == 1 and self._pool is None:
            out = []
            for i, t in enumerate(tasks):
                r = fn(t)
                out.append(r)
                if on_result is not None:
                    on_result(i, r)
            return out
        from concurrent.futures import FIRST_COMPLETED, wait

        ex = self._executor()
        from concurrent.futures.process import BrokenProcessPool
        futs, pending = {}, set()
        out = [None] * len(tasks)
        try:
            # a worker that dies while tasks are still being submitted breaks the pool
            # at submit (seen in CI: the killed-worker test failed with a bare
            # BrokenProcessPool), so the submission is inside the same handler
            for i, t in enumerate(tasks):
                futs[ex.submit(fn, t)] = i
            pending = set(futs)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    i = futs[f]
                    out[i] = f.result()
                    if on_result is not None:
                        on_result(i, out[i])
        except BrokenProcessPool:
            self._pool = None
            raise VQAlignError(
                "a worker process died unexpectedly (killed, or out of memory); finished "
                "work is kept: re-run the same command to resume, with fewer --jobs if "
                "memory is short") from None
        except BaseException:
            for f in futs:      # the finished ones ignore it
                f.cancel()
            raise
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskScheduler(Scheduler):
    """A ``dask.distributed`` client: a LocalCluster of ``jobs`` workers, or an address."""

    name = "dask"

    def __init__(self, jobs: int = 2, address: str | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ParameterError(
                "--scheduler dask needs dask.distributed, which is not installed; "
                "pip install \"vqalign[dask]\" or use --scheduler local") from None
        self.address = address
        self._cluster = None
        if address is None:
            self.n_workers = int(jobs)
            self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=40)
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(address, timeout=10)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ParameterError(
                    f"cannot reach the Dask scheduler at {address!r} ({exc}); start one with "
                    "`dask scheduler` and `dask worker ADDRESS`, or use --scheduler local"
                ) from None
            self.n_workers = max(1, len(self._client.scheduler_info().get("workers", {})))
            self.name = f"dask {address}"

    def _run(self, fn, tasks, on_result):
        from dask.distributed import as_completed

        futs = self._client.map(fn, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futs)}
        out = [None] * len(tasks)
        try:
            for f in as_completed(futs):
                i = index[f.key]
                out[i] = f.result()
                if on_result is not None:
                    on_result(i, out[i])
        except BaseException:
            self._client.cancel(futs)
            raise
        return out

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def get_scheduler(spec: str = "local", jobs: int = 2) -> Scheduler:
    """``"local"``, ``"dask"`` or a Dask address (``"tcp://host:8786"``) -> a Scheduler."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"--jobs must be a positive integer, got {jobs!r}")
    if not isinstance(spec, str) or not spec:
        raise ParameterError(f"scheduler {spec!r}: use 'local', 'dask' or a Dask address "
                             "such as tcp://host:8786")
    if spec == "local":
        return LocalScheduler(jobs)
    if spec == "dask":
        return DaskScheduler(jobs)
    if "://" in spec:
        return DaskScheduler(jobs, address=spec)
    raise ParameterError(f"scheduler {spec!r} is not one of 'local', 'dask' or a Dask address "
                         "(tcp://host:8786)")


__all__ = ["Scheduler", "LocalScheduler", "DaskScheduler", "get_scheduler", "SCHEDULERS"]
