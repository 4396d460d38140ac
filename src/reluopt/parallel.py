"""Executors for independent tasks: serial, local processes, or a Dask cluster.

The neurons of one OBBT layer (and the starts of a multi-start heuristic) are independent,
so they run as ``executor.map(fn, tasks)``: ``fn`` a module-level function and every task
made of picklable data (numpy arrays, a Network). Solver objects are not picklable, so each
task builds its own model. Passing a ``dask.distributed.Client`` runs the same tasks on a
cluster; dask is an optional extra (``pip install reluopt[dask]``) imported only then.

``get_executor(spec)``: ``None`` / ``'serial'`` (in-process), ``'processes'`` (one worker per
CPU), an ``int`` worker count (1 means serial), a ``dask.distributed.Client``, or an object
already implementing ``Executor``. Use it as a context manager: executors it creates are
shut down on exit, a Client or executor you passed in is left running.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .errors import ProblemError


class Executor:
    """Runs ``fn`` over tasks, results in task order. ``workers`` says how many run at once."""

    workers: int = 1

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        """Run ``fn`` on every task.

        Parameters
        ----------
        fn : callable
            A module-level (picklable) function of one task.
        tasks : sequence
            Picklable task data.

        Returns
        -------
        list
            ``[fn(t) for t in tasks]``, in task order.
        """
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources this executor owns."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def name(self) -> str:
        return type(self).__name__


class SerialExecutor(Executor):
    """In this process, one task after the other."""

    def map(self, fn, tasks):
        return [fn(t) for t in tasks]

    @property
    def name(self) -> str:
        return "serial"


class ProcessExecutor(Executor):
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes (created lazily).

    Parameters
    ----------
    workers : int, optional
        The number of processes (default: the CPU count).
    pool : ProcessPoolExecutor, optional
        An existing pool to use; it is the caller's and is not shut down by ``close``.
    """

    def __init__(self, workers: int | None = None, pool: ProcessPoolExecutor | None = None):
        self.workers = int(workers or os.cpu_count() or 1)
        self._pool = pool
        self._owned = pool is None

    def map(self, fn, tasks):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return list(self._pool.map(fn, tasks))

    def close(self) -> None:
        if self._owned and self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def name(self) -> str:
        return f"processes({self.workers})"


class DaskExecutor(Executor):
    """Tasks submitted to a ``dask.distributed.Client`` and gathered in order.

    The client is the caller's: it is never closed here.

    Parameters
    ----------
    client : dask.distributed.Client
        The client to submit to; ``workers`` is its thread count.
    """

    def __init__(self, client):
        self.client = client
        try:
            info = client.scheduler_info()
            workers = info.get("workers", {})
            self.workers = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
        except Exception:  # a client without scheduler info still works, just unsized
            self.workers = 1

    def map(self, fn, tasks):
        # pure=False: the same task twice must run twice (no result caching by key)
        futures = [self.client.submit(fn, t, pure=False) for t in tasks]
        return self.client.gather(futures)

    @property
    def name(self) -> str:
        return f"dask({self.workers})"


def _is_dask_client(obj) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("distributed") and hasattr(obj, "submit") and hasattr(obj, "gather")


def require_dask():
    """Import ``dask.distributed`` or explain how to get it.

    Returns
    -------
    module
        The ``distributed`` module.

    Raises
    ------
    ProblemError
        Dask is not installed (the message says how to install it).
    """
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ProblemError(
            "a Dask executor needs the optional 'dask' extra: pip install 'reluopt[dask]' "
            f"({exc})"
        ) from None
    import distributed

    return distributed


def get_executor(spec=None) -> Executor:
    """An Executor from a spec (see the module docstring).

    Parameters
    ----------
    spec : None, str, int, ProcessPoolExecutor, dask.distributed.Client or Executor
        None/'serial', 'processes', an int worker count (1: serial), a pool, a Client or an
        Executor (returned as is). 'dask' does not start a local cluster: pass a Client.

    Returns
    -------
    Executor
        The executor; use it as a context manager.

    Raises
    ------
    ProblemError
        A spec that is none of these.
    """
    if spec is None or isinstance(spec, Executor):
        return spec if spec is not None else SerialExecutor()
    if isinstance(spec, bool):
        raise ProblemError(f"executor spec must be None, 'serial', 'processes', an int or a "
                           f"dask Client, got {spec!r}")
    if isinstance(spec, int):
        if spec < 1:
            raise ProblemError(f"executor worker count must be >= 1, got {spec}")
        return SerialExecutor() if spec == 1 else ProcessExecutor(spec)
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "serial":
            return SerialExecutor()
        if key in ("processes", "process", "local"):
            return ProcessExecutor()
        if key == "dask":
            require_dask()
            raise ProblemError("for Dask, pass a dask.distributed.Client (e.g. "
                               "Client(LocalCluster(n_workers=2))) rather than the string 'dask'")
        raise ProblemError(f"unknown executor {spec!r}; expected 'serial', 'processes', an int "
                           "worker count or a dask.distributed.Client")
    if isinstance(spec, ProcessPoolExecutor):
        # the pool's size is a private attribute (not in the type stubs); fall back to cpu_count
        return ProcessExecutor(getattr(spec, "_max_workers", None), pool=spec)
    if _is_dask_client(spec):
        return DaskExecutor(spec)
    raise ProblemError(f"cannot use {type(spec).__name__} as an executor; expected 'serial', "
                       "'processes', an int worker count or a dask.distributed.Client")


def chunk(items: Sequence[Any], n_chunks: int) -> list[list[Any]]:
    """Split ``items`` into at most ``n_chunks`` contiguous, nearly equal, non-empty parts.

    Parameters
    ----------
    items : sequence
        The items to split.
    n_chunks : int
        The largest number of parts.

    Returns
    -------
    list of list
        The parts, in order (none for no items).
    """
    items = list(items)
    n = max(1, min(int(n_chunks), len(items)))
    if not items:
        return []
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        out.append(items[start:end])
        start = end
    return out


# ----------------------------------------------------------------------------- BLAS threads
def blas_threads(n: int | None) -> contextlib.AbstractContextManager:
    """Context limiting BLAS to ``n`` threads (None: leave it alone).

    Searches multiply small batches (64 starts x a few hundred neurons, a few boxes x a
    hidden layer); a threaded BLAS gains nothing there, and on a loaded machine its spinning
    threads made each product 30-40x slower (profile in benchmarks/PROFILE_local_search.md).
    Uses threadpoolctl when installed (it comes with scikit-learn), else does nothing.

    Parameters
    ----------
    n : int or None

    Returns
    -------
    contextlib.AbstractContextManager
        A ``threadpoolctl`` limit, or a no-op context.
    """
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """``blas_threads(1)``: the setting of every local search and branch and bound.

    Returns
    -------
    contextlib.AbstractContextManager
    """
    return blas_threads(1)


def one_blas_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run ``fn`` inside ``single_threaded_blas``, for functions whose products are small.

    Parameters
    ----------
    fn : callable
        The function to wrap (a method, or a search over batches of starts).

    Returns
    -------
    callable
        ``fn`` with the same signature, run with single-threaded BLAS.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)

    return wrapper
