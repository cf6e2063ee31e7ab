"""Run independent chunks of work on local processes or on a Dask distributed cluster.

Chunked stages (simulation, sample building, point clouds) call :func:`map_chunks` with a picklable
function and a list of chunk descriptions. The result is the same, in the same order, whatever executes it:

- ``workers=1``: in this process (easiest to debug, no pickling);
- ``workers>1`` (default: the number of usable cores): a ``ProcessPoolExecutor``;
- ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``): a Dask distributed cluster, for example a
  ``dask_jobqueue.SLURMCluster`` on a batch farm (see the README).

Progress is shown with tqdm when ``progress`` is true.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from tqdm import tqdm  # text bars: readable in terminals, papermill logs and stored notebooks

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Cores this process may use (respects CPU affinity and ``JETCLOUD_WORKERS``)."""
    env = os.environ.get("JETCLOUD_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def map_chunks(
    func: Callable[[T], R],
    chunks: Sequence[T] | Iterable[T],
    *,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    desc: str = "chunks",
) -> list[R]:
    """Apply ``func`` to every chunk; return the results in chunk order.

    The first exception raised by a chunk is re-raised here (remaining local work is cancelled), with the
    chunk named in the log.
    """
    chunks = list(chunks)
    if scheduler:
        return _map_dask(func, chunks, scheduler, progress, desc)
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(chunks)) or 1
    bar = tqdm(total=len(chunks), desc=desc, disable=not progress, unit="chunk")
    results: list[Any] = [None] * len(chunks)
    try:
        if workers == 1:
            for i, chunk in enumerate(chunks):
                results[i] = func(chunk)
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(func, chunk): i for i, chunk in enumerate(chunks)}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return results
    finally:
        bar.close()


def _map_dask(func, chunks, scheduler, progress, desc):
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise ImportError("a Dask scheduler needs the 'dist' extra: pip install 'jetcloud[dist]'") from err
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(func, chunks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(chunks)
        with tqdm(total=len(chunks), desc=f"{desc} (dask)", disable=not progress, unit="chunk") as bar:
            for future in dask_completed(futures):
                results[index[future.key]] = future.result()
                bar.update()
        return results
    finally:
        if client is not scheduler:
            client.close()
