"""Where runs execute: a pool of local processes, or a Dask cluster (remote or a LocalCluster)."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

from sim.sweep.plan import RunTask
from sim.sweep.spec import SweepError
from sim.sweep.worker import execute_run


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"kpis": None, "error": f"{type(exc).__name__}: {exc}", "wall_s": math.nan}


def _local(tasks: Sequence[tuple[int, RunTask]], workers: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run on a pool of spawned processes; yields (index, outcome) as runs finish."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: dict[Future[dict[str, Any]], int] = {pool.submit(execute_run, task): i for i, task in tasks}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # the worker process died (e.g. out of memory)
                yield futures[future], _failed(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(
    tasks: Sequence[tuple[int, RunTask]], workers: int, scheduler: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run on a Dask cluster (at `scheduler`, or a LocalCluster of `workers` processes)."""
    import dask
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except OSError as exc:
                raise SweepError(
                    [
                        f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` "
                        "and workers with `dask worker ADDRESS`, or use --dask-local"
                    ]
                ) from None
        else:
            # The workers' statistical profiler samples every thread's stack each 10 ms, which holds the
            # GIL against a pure-Python simulation (~10 % slower runs); the workers take this config at start.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",  # loopback, any free port: no clash, no warning
                    )
                )
            client = stack.enter_context(Client(cluster))
        index = {}
        futures = []
        for i, task in tasks:
            future = client.submit(execute_run, task, key=f"chargetwin-{task.name}-{task.key[:16]}", pure=False)
            index[future.key] = i
            futures.append(future)
        for future in dask_completed(futures):
            try:
                yield index[future.key], future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not be sent
                yield index[future.key], _failed(exc)
