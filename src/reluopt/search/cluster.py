"""Where branch and bound farms its frontier out: a Dask cluster, local or the user's.

``Cluster`` holds the choice (``workers=n``: a ``LocalCluster`` of ``n`` one-thread worker
processes, started only when a search first needs it; ``scheduler="tcp://host:8786"`` or a
``distributed.Client``: an existing cluster) and the knobs of the farming (``search.distributed``).
``scope`` makes a cluster the active one for the searches run inside it (``active``): ``solve``
and ``verify`` open a scope, so every branch and bound they run (``bab``, ``bab-relu``, the
verification trees) can use it without the option being threaded through each call. Dask is the
optional ``dask`` extra, imported only here and only when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProblemError
from ..parallel import require_dask

#: The cluster of the running ``scope`` (None: searches run in this process).
_ACTIVE: contextvars.ContextVar[Cluster | None] = contextvars.ContextVar("reluopt_cluster", default=None)


@dataclass
class Cluster:
    """A Dask cluster for branch and bound, and how the frontier is farmed out to it.

    Parameters
    ----------
    workers : int or None
        Start a ``LocalCluster`` of this many worker processes (one thread each, BLAS single-
        threaded) when a search first needs it; closed by ``close``.
    scheduler : str, distributed.Client or None
        The address of a running scheduler (``tcp://host:8786``) or a connected Client; the
        cluster is the user's and is left running. Give ``workers`` or ``scheduler``, not both.
    warmup_seconds : float
        A search runs this long in this process first; only searches still open then go to
        the cluster (starting one costs seconds, and most instances finish sooner).
    task_seconds : float
        Wall-clock budget of one task: a worker bounds and branches its sub-tree this long,
        then sends back its open nodes.
    task_nodes : int
        Most frontier nodes per task (the roots of its sub-tree).
    tasks_per_worker : int
        Tasks kept in flight per worker thread, so that none waits for the driver.
    max_failures : int
        Failed tasks (their nodes go back on the frontier) after which the search goes on in
        this process alone.
    processes : bool
        Local workers in processes (True) or threads of this process (False: for tests).
    """

    workers: int | None = None
    scheduler: Any = None
    warmup_seconds: float = 2.0
    task_seconds: float = 2.0
    task_nodes: int = 64
    tasks_per_worker: int = 2
    max_failures: int = 8
    processes: bool = True
    _client: Any = field(default=None, init=False, repr=False)
    _local: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ProblemError("give a worker count or a scheduler address, not both")
        if self.workers is None and self.scheduler is None:
            raise ProblemError("a cluster needs a worker count (workers=2) or a scheduler address "
                               "(scheduler='tcp://host:8786')")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise ProblemError(f"workers must be a positive integer, got {self.workers!r}")
        if self.scheduler is not None and not isinstance(self.scheduler, str) and not (
                hasattr(self.scheduler, "submit") and hasattr(self.scheduler, "scheduler_info")):
            raise ProblemError(f"scheduler must be an address such as 'tcp://host:8786' or a "
                               f"dask.distributed.Client, got {type(self.scheduler).__name__}")
        for name in ("warmup_seconds", "task_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ProblemError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("task_nodes", "tasks_per_worker"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ProblemError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        require_dask()
        if isinstance(self.scheduler, str):
            self.client()          # a wrong address is an error now, not at the first hard node

    def client(self):
        """The connected Client, starting the local cluster or connecting on first use.

        Returns
        -------
        distributed.Client

        Raises
        ------
        ProblemError
            The scheduler cannot be reached.
        """
        if self._client is not None:
            return self._client
        distributed = require_dask()
        if self.workers is not None:
            import dask

            # the workers' statistical profiler wakes every 10 ms for the GIL: on a busy machine
            # each wake-up stalls the task thread (measured in benchmarks/results/distributed.md)
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self._local = distributed.LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                    dashboard_address=":0", silence_logs=logging.ERROR)
            self._client = distributed.Client(self._local)
        elif isinstance(self.scheduler, str):
            try:
                self._client = distributed.Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise ProblemError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        else:
            self._client = self.scheduler
        return self._client

    @property
    def owned(self) -> bool:
        """Whether ``close`` shuts the client down (a local cluster, or a connection made here)."""
        return self.workers is not None or isinstance(self.scheduler, str)

    def threads(self) -> int:
        """Worker threads the cluster has now (at least 1), to size the tasks in flight.

        Returns
        -------
        int
        """
        info = self.client().scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def close(self) -> None:
        """Shut down what this object started (a Client passed in is left running)."""
        if self.owned and self._client is not None:
            self._client.close()
        if self._local is not None:
            self._local.close()
        self._client = self._local = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_cluster(workers: Any = None, scheduler: Any = None) -> Cluster | None:
    """A ``Cluster`` from the user's options, or None for a run in this process.

    Parameters
    ----------
    workers : int, Cluster or None
        A worker count for a local cluster, or a ``Cluster`` (used as it is).
    scheduler : str, distributed.Client or None
        An existing cluster.

    Returns
    -------
    Cluster or None
    """
    if isinstance(workers, Cluster):
        if scheduler is not None:
            raise ProblemError("give a Cluster or a scheduler address, not both")
        return workers
    if workers is None and scheduler is None:
        return None
    return Cluster(workers=workers, scheduler=scheduler)


@contextlib.contextmanager
def scope(workers: Any = None, scheduler: Any = None) -> Iterator[Cluster | None]:
    """Make the cluster of these options the active one (``active``) for the searches inside.

    A cluster made here from a worker count or an address is closed on exit; a ``Cluster``
    passed in is the caller's and stays open (it can serve many runs).

    Parameters
    ----------
    workers, scheduler
        As in ``make_cluster``.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the active ``Cluster`` or None.
    """
    cluster = make_cluster(workers, scheduler)
    if cluster is None:
        yield _ACTIVE.get()
        return
    token = _ACTIVE.set(cluster)
    try:
        yield cluster
    finally:
        _ACTIVE.reset(token)
        if cluster is not workers:
            cluster.close()


def active() -> Cluster | None:
    """The cluster of the running ``scope`` (None: run in this process).

    Returns
    -------
    Cluster or None
    """
    return _ACTIVE.get()
