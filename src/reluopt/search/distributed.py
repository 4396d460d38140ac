"""Branch and bound farmed out to a Dask cluster: sub-trees on workers, one sound merge here.

``run_search`` runs a search in this process for ``Cluster.warmup_seconds``; a search still
open then goes to the cluster (``farm``). The driver keeps the frontier and sends its best
nodes out in tasks (a batch of nodes, a time budget, the incumbent); a worker rebuilds the
strategy from a ``Spec``, runs the same engine on the batch until its budget is spent, and
sends back its open nodes, the largest bound of every reason its retired nodes left for, the
counts, the nodes bounded and its best points. The driver re-checks every point by its own
forward pass (the strategy's tracker), merges the retired bounds and pushes the open nodes.

Soundness: a node out on a worker still counts in the certified bound (``Search.outside``)
until its task's answer is merged; a task that fails, is lost or is cancelled (time limit,
Ctrl-C) puts its nodes back on the frontier, so a failed task never yields a bound. The
stopping rules are the strategy's (``search.gap``, ``disjuncts``), applied here on the merged
bound; a worker never stops on a bound of its sub-tree alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..parallel import blas_threads
from ..result import TIME_LIMIT
from ..tracker import Anytime
from .cluster import Cluster
from .engine import Limits, Search
from .split_settings import ABOVE
from .tree import Node

#: Seconds the driver waits for a task before it polls its limits and Ctrl-C again.
POLL_SECONDS = 0.25


@dataclass
class Task:
    """One sub-tree for a worker.

    Parameters
    ----------
    nodes : list of Node
        Bounded open nodes: the roots of the sub-tree.
    seconds : float
        Wall-clock budget of the sub-tree's loop (checked once per batch).
    remaining : float
        Seconds left of the whole search (``inf``: no limit): the deadline of the worker's
        leaf MIPs, which the task budget does not cut short (a cut-short leaf would be frozen).
    node_budget : float
        Most nodes to bound (``inf``: none).
    start_nodes : int
        Nodes the whole search had bounded when the task left (node-count rules see the same count).
    incumbent : ndarray or None
        The driver's best point, re-evaluated by the worker for its pruning threshold.
    """

    nodes: list[Node]
    seconds: float
    remaining: float = math.inf
    node_budget: float = math.inf
    start_nodes: int = 0
    incumbent: np.ndarray | None = None


@dataclass
class Report:
    """What a worker sends back (see the module docstring).

    Parameters
    ----------
    open : list of Node
        The sub-tree's nodes still open when the budget ran out.
    retired : dict
        Per reason (``tree.REASONS``), the largest bound of a node that left for it.
    counts : dict
        Per reason, how many nodes left for it.
    nodes : int
        Nodes bounded by the task.
    points : ndarray or None
        Candidate points (the driver re-checks them).
    state : dict
        Strategy state to merge (``Spec.merge``).
    seconds : float
        Wall time of the task on the worker.
    cpu_seconds : float
        CPU time of the task's thread.
    """

    open: list[Node]
    retired: dict[str, float]
    counts: dict[str, int]
    nodes: int
    points: np.ndarray | None
    state: dict = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


class Spec:
    """How a worker rebuilds a strategy and what the driver merges back: one subclass per kind."""

    def build(self) -> Any:
        """A fresh strategy for a worker.

        Returns
        -------
        Strategy
        """
        raise NotImplementedError

    def seed(self, strategy: Any, incumbent: np.ndarray | None) -> None:
        """Give the worker's strategy the driver's incumbent (for its pruning threshold).

        Parameters
        ----------
        strategy : Strategy
        incumbent : ndarray or None
        """

    def incumbent(self, strategy: Any) -> np.ndarray | None:
        """The driver's best point to send with a task.

        Parameters
        ----------
        strategy : Strategy

        Returns
        -------
        ndarray or None
        """
        return None

    def found(self, strategy: Any) -> bool:
        """Whether the worker found what ends the whole search (then it returns at once).

        Parameters
        ----------
        strategy : Strategy

        Returns
        -------
        bool
        """
        return False

    def export(self, strategy: Any) -> tuple[np.ndarray | None, dict]:
        """The worker's candidate points and its strategy state to merge.

        Parameters
        ----------
        strategy : Strategy

        Returns
        -------
        tuple
            Points (n, d) or None, and a dict.
        """
        return None, {}

    def merge(self, strategy: Any, points: np.ndarray | None, state: dict) -> None:
        """Merge a worker's points (re-checked here) and state into the driver's strategy.

        Parameters
        ----------
        strategy : Strategy
        points : ndarray or None
        state : dict
        """


@dataclass
class GapSpec(Spec):
    """An optimising strategy (``InputSplit``, ``ReluSplit``): ``cls(problem, anytime, settings, seed, **kwargs)``.

    Parameters
    ----------
    cls : type
    problem : Problem
    settings : object
    seed : int
    kwargs : dict
    """

    cls: type
    problem: Any
    settings: Any
    seed_value: int = 0
    kwargs: dict = field(default_factory=dict)

    def build(self) -> Any:
        """A fresh strategy with its own tracker. See `Spec.build`."""
        return self.cls(self.problem, Anytime(self.problem, "worker"), self.settings, self.seed_value, **self.kwargs)

    def seed(self, strategy: Any, incumbent: np.ndarray | None) -> None:
        """Offer the driver's point to the worker's tracker (it evaluates it). See `Spec.seed`."""
        if incumbent is not None:
            strategy.anytime.offer(incumbent[None, :], "incumbent")

    def incumbent(self, strategy: Any) -> np.ndarray | None:
        """The driver tracker's point. See `Spec.incumbent`."""
        return strategy.anytime.x

    def found(self, strategy: Any) -> bool:
        """A point reached ``stop_above``. See `Spec.found`."""
        return strategy.stop_status(math.inf) == ABOVE

    def export(self, strategy: Any) -> tuple[np.ndarray | None, dict]:
        """The worker's best point and its statistics. See `Spec.export`."""
        x = strategy.anytime.x
        return (None if x is None else x[None, :]), {"stats": dict(strategy.stats)}

    def merge(self, strategy: Any, points: np.ndarray | None, state: dict) -> None:
        """Offer the points to the driver's tracker; add up the statistics. See `Spec.merge`."""
        if points is not None:
            strategy.anytime.offer(points, f"{strategy.source}:worker")
        stats = strategy.stats
        for key, value in state.get("stats", {}).items():
            if key == "max_depth":
                stats[key] = max(stats.get(key, 0), value)
            elif isinstance(value, int | float) and not isinstance(value, bool) and key in stats:
                stats[key] += value
            elif key not in stats:
                stats[key] = value


@dataclass
class StrategyFactory:
    """Makes an optimising strategy, here and (as a ``GapSpec``) on cluster workers.

    Parameters
    ----------
    cls : type
        ``InputSplit`` or ``ReluSplit``: ``cls(problem, anytime, settings, seed, **kwargs)``.
    problem : Problem
    anytime : Anytime
        The driver's tracker.
    seed : int
    kwargs : dict
        Further (picklable) constructor arguments.
    """

    cls: type
    problem: Any
    anytime: Anytime
    seed: int = 0
    kwargs: dict = field(default_factory=dict)

    def __call__(self, settings: Any) -> Any:
        """The driver's strategy.

        Parameters
        ----------
        settings : object

        Returns
        -------
        Strategy
        """
        return self.cls(self.problem, self.anytime, settings, self.seed, **self.kwargs)

    def spec(self, settings: Any) -> GapSpec:
        """How workers rebuild it (without the driver's tracker).

        Parameters
        ----------
        settings : object

        Returns
        -------
        GapSpec
        """
        return GapSpec(self.cls, self.problem, settings, self.seed, dict(self.kwargs))


#: glibc ``mallopt`` parameters (malloc.h) and the values ``_malloc_for_numpy`` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 * 1024 * 1024, 64 * 1024 * 1024
_malloc_tuned = False


def _malloc_for_numpy() -> None:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_`` in this worker process (glibc only; once).

    Dask starts workers with that variable set, which turns off glibc's adaptive mmap threshold:
    every temporary array above 128 kB is then mapped and unmapped afresh. On ACAS Xu a task
    bounded about a third as many nodes per CPU second that way (benchmarks/results/distributed.md).
    Larger fixed thresholds give the heap reuse of a plain process back.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    except (OSError, AttributeError):     # not glibc: its defaults stand
        pass


def run_subtree(spec: Spec, task: Task) -> Report:
    """A worker's task: the engine on the task's nodes until its budget is spent.

    Parameters
    ----------
    spec : Spec
    task : Task

    Returns
    -------
    Report
    """
    _malloc_for_numpy()
    t0, c0 = time.perf_counter(), time.thread_time()
    with blas_threads(1):
        strategy = spec.build()
        search = Search(Limits(deadline=t0 + task.remaining, node_limit=task.start_nodes + task.node_budget))
        search.nodes = task.start_nodes
        strategy.search = search
        spec.seed(strategy, task.incumbent)
        search.run(_Subtree(strategy, spec, t0 + task.seconds), task.nodes)
    points, state = spec.export(strategy)
    frontier = search.frontier
    return Report(list(frontier), dict(frontier.retired), dict(frontier.counts), search.nodes - task.start_nodes,
                  points, state, time.perf_counter() - t0, time.thread_time() - c0)


class _Subtree:
    """A strategy on a worker: its own rules, except that only ``Spec.found`` and the end of
    the task's budget stop it early (a bound of one sub-tree says nothing about the whole search)."""

    def __init__(self, strategy: Any, spec: Spec, stop_at: float) -> None:
        self.strategy, self.spec, self.stop_at = strategy, spec, stop_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self.strategy, name)

    def stop_status(self, bound: float) -> str | None:
        if self.spec.found(self.strategy):
            return "found"
        return "budget" if time.perf_counter() >= self.stop_at else None

    def exhausted_status(self, bound: float) -> str:
        return "exhausted"


def run_search(search: Search, strategy: Any, roots: list[Node], cluster: Cluster, spec: Spec) -> str:
    """``search.run`` in this process for the warm-up, then on the cluster if still open.

    Parameters
    ----------
    search : Search
    strategy : Strategy
    roots : list of Node
    cluster : Cluster
    spec : Spec
        How workers rebuild ``strategy``.

    Returns
    -------
    str
        The status, as ``Search.run`` gives it.
    """
    deadline = search.limits.deadline
    search.limits.deadline = min(deadline, time.perf_counter() + cluster.warmup_seconds)
    try:
        status = search.run(strategy, roots)
    finally:
        search.limits.deadline = deadline
    if status != TIME_LIMIT or time.perf_counter() >= deadline:
        return status
    return farm(search, strategy, cluster, spec)


def farm(search: Search, strategy: Any, cluster: Cluster, spec: Spec) -> str:
    """Run the rest of ``search`` on the cluster (see the module docstring).

    Parameters
    ----------
    search : Search
        Its frontier holds the open nodes; its limits and Ctrl-C hold.
    strategy : Strategy
        The driver's strategy: its threshold, stopping rules and tracker.
    cluster : Cluster
    spec : Spec

    Returns
    -------
    str
        The strategy's status, or ``interrupted``, ``time_limit``, ``node_limit``.
    """
    from distributed import wait

    info: dict[str, Any] = {"tasks": 0, "failed": 0, "worker_seconds": 0.0, "worker_cpu_seconds": 0.0,
                            "nodes_sent": 0, "nodes_back": 0}
    strategy_stats = getattr(strategy, "stats", None)
    if isinstance(strategy_stats, dict):
        strategy_stats["cluster"] = info
    try:
        client = cluster.client()
        spec_ref = client.scatter(spec, broadcast=True, hash=False)
        info["workers"] = cluster.threads()
    except Exception as exc:  # noqa: BLE001 - no cluster (it did not start, or went away): go on here
        info["gave_up"], info["last_error"] = True, f"{type(exc).__name__}: {exc}"
        return search.run(strategy, [])
    slots = info["workers"] * cluster.tasks_per_worker
    flying: dict[Any, tuple[list[Node], float]] = {}
    status: str | None = None
    try:
        while status is None:
            search.frontier.prune(strategy.threshold())
            search.outside = max((b for _, b in flying.values()), default=-math.inf)
            bound = search.record(strategy)
            search.report(strategy)
            status = search.decide(strategy, bound, pending=bool(flying))
            if status is not None:
                break
            if info["failed"] >= cluster.max_failures:     # the cluster is not working: go on here
                info["gave_up"] = True
                _recall(client, flying, search)
                return search.run(strategy, [])
            _submit(client, spec_ref, search, strategy, spec, cluster, flying, slots, info)
            if not flying:
                continue
            try:
                done = wait(list(flying), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            for fut in done:
                nodes, _ = flying.pop(fut)
                try:
                    report: Report = fut.result()
                except Exception as exc:        # a failed or lost task: its nodes are open again
                    info["failed"] += 1
                    info["last_error"] = f"{type(exc).__name__}: {exc}"
                    search.push(strategy, nodes)
                    continue
                _merge(search, strategy, spec, report, info)
    finally:
        _recall(client, flying, search)
    search.record(strategy)
    search.report(strategy, force=True)
    return status


def _submit(client, spec_ref, search: Search, strategy: Any, spec: Spec, cluster: Cluster,
            flying: dict, slots: int, info: dict) -> None:
    """Send the best open nodes out until ``slots`` tasks are in flight."""
    free = slots - len(flying)
    while free > 0 and search.frontier:
        k = max(1, min(cluster.task_nodes, len(search.frontier) // free))
        nodes = search.frontier.pop(k)
        left = search.limits.deadline - time.perf_counter()
        budget = search.limits.node_limit - search.nodes
        task = Task(nodes, max(min(cluster.task_seconds, left), 0.0), max(left, 0.0),
                    max(1.0, math.ceil(budget / slots)) if math.isfinite(budget) else math.inf,
                    search.nodes, spec.incumbent(strategy))
        fut = client.submit(run_subtree, spec_ref, task, pure=False)
        flying[fut] = (nodes, max(n.bound for n in nodes))
        info["tasks"] += 1
        info["nodes_sent"] += len(nodes)
        free -= 1


def _merge(search: Search, strategy: Any, spec: Spec, report: Report, info: dict) -> None:
    """A finished task: points re-checked here, retired bounds and counts merged, open nodes pushed."""
    info["worker_seconds"] += report.seconds
    info["worker_cpu_seconds"] += report.cpu_seconds
    info["nodes_back"] += len(report.open)
    spec.merge(strategy, report.points, report.state)
    frontier = search.frontier
    for reason, bound in report.retired.items():
        frontier.retired[reason] = max(frontier.retired[reason], bound)
    frontier.counts.update(report.counts)
    search.nodes += report.nodes
    search.push(strategy, report.open)


def _recall(client, flying: dict, search: Search) -> None:
    """Cancel the tasks in flight and put their nodes back on the frontier (they stay open)."""
    if flying:
        try:
            client.cancel(list(flying))
        except Exception:  # noqa: BLE001 - a lost connection: the nodes come back all the same
            pass
        for nodes, _ in flying.values():
            for node in nodes:
                search.frontier.push(node)
        flying.clear()
    search.outside = -math.inf
