"""The branch-and-bound loop, independent of what a node is and how it is bounded or split.

A ``Strategy`` supplies the problem-specific parts: the threshold below which a node cannot
matter, when to stop early, how many nodes to expand at once, and ``expand`` (split a batch of
nodes and bound the children). ``Search.run`` owns the rest: the frontier, pruning, the
certified bound (the max over open and retired nodes), time and node limits, Ctrl-C, and
progress. Input splitting (``input_split``), verification disjuncts (``disjuncts``) and the
Lipschitz search are strategies; ReLU splitting is meant to be one more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..result import INTERRUPTED, NODE_LIMIT, TIME_LIMIT
from .tree import Frontier, Node


class Strategy(Protocol):
    """What a branch and bound needs to know about its problem (see ``Search.run``)."""

    def threshold(self) -> float:
        """The value at or below which a node cannot matter, so that ``Search.run`` prunes it.

        Returns
        -------
        float
            Typically the incumbent plus the tolerance; ``-inf`` prunes nothing.
        """
        ...

    def stop_status(self, bound: float) -> str | None:
        """A status to stop with now, or None to go on (checked once per round).

        Parameters
        ----------
        bound : float
            The certified bound of the whole search (max over open and retired nodes).

        Returns
        -------
        str or None
            E.g. ``optimal`` when the gap closed or a target was reached; None to go on.
        """
        ...

    def exhausted_status(self, bound: float) -> str:
        """The status to stop with when no open node is left.

        Parameters
        ----------
        bound : float
            The certified bound of the whole search (max over open and retired nodes).

        Returns
        -------
        str
            E.g. ``optimal``, ``infeasible`` or ``unsat``.
        """
        ...

    def batch_size(self, open_nodes: int, nodes_left: float) -> int:
        """How many nodes to pop for the next ``expand``, to trade batching against best-first order.

        Parameters
        ----------
        open_nodes : int
            Nodes open on the frontier.
        nodes_left : float
            Nodes the node limit still allows (``inf`` without one).

        Returns
        -------
        int
            At least 1.
        """
        ...

    def expand(self, nodes: list[Node], search: Search) -> list[Node]:
        """Split ``nodes`` and bound the children; return the children still open.

        Children that leave unsplit (too small, proven empty, closed by an exact solve) are
        retired on ``search.frontier`` by the strategy, with their bounds.

        Parameters
        ----------
        nodes : list of Node
            Popped from the frontier, best first.
        search : Search
            The running search (its ``frontier`` and ``nodes`` counter).

        Returns
        -------
        list of Node
            Bounded children; ``Search.run`` prunes those at or below ``threshold()``.
        """
        ...

    def on_bound(self, bound: float) -> None:
        """Hear that the certified bound improved (e.g. to record it as the anytime bound).

        Parameters
        ----------
        bound : float
            The certified bound of the whole search (max over open and retired nodes).
        """
        ...

    def progress_info(self) -> dict:
        """Extra fields for a progress report, so that the line shows the problem's own state.

        Returns
        -------
        dict
            E.g. ``{"incumbent": ...}``; merged into the report's dict.
        """
        ...


@dataclass
class Limits:
    """When a search must stop without an answer.

    Parameters
    ----------
    deadline : float
        ``time.perf_counter()`` value; ``inf`` for none.
    node_limit : float
        Nodes bounded; ``inf`` for none.
    should_stop : callable or None
        Polled once per batch: True stops the search as ``interrupted`` (Ctrl-C).
    """

    deadline: float = math.inf
    node_limit: float = math.inf
    should_stop: Callable[[], bool] | None = None

    @classmethod
    def of(cls, time_limit: float | None = None, node_limit: int | None = None,
           should_stop: Callable[[], bool] | None = None) -> Limits:
        """Limits from a time limit in seconds (None: none) and a node limit (None: none).

        Parameters
        ----------
        time_limit : float or None
        node_limit : int or None
        should_stop : callable or None

        Returns
        -------
        Limits
        """
        deadline = math.inf if time_limit is None else time.perf_counter() + float(time_limit)
        return cls(deadline, math.inf if node_limit is None else int(node_limit), should_stop)


@dataclass
class Search:
    """One run of branch and bound (see ``run``).

    Parameters
    ----------
    limits : Limits
    progress : callable or None
        Receives a dict (elapsed, bound, nodes, nodes_per_s, open, and the strategy's fields)
        at most every ``progress_every`` seconds, and once at the end.
    progress_every : float

    Attributes
    ----------
    frontier : Frontier
    nodes : int
        Nodes bounded so far (strategies add to it in ``expand``).
    batches : int
        Calls of ``expand``.
    outside : float
        Largest bound of the nodes out on cluster workers (``search.distributed``; ``-inf``
        when none): they are open nodes too, so ``bound()`` counts them.
    """

    limits: Limits = field(default_factory=Limits)
    progress: Callable[[dict], None] | None = None
    progress_every: float = 0.1
    frontier: Frontier = field(default_factory=Frontier)
    nodes: int = 0
    batches: int = 0
    outside: float = -math.inf
    start: float = field(default_factory=time.perf_counter)
    _last_bound: float = math.inf
    _last_report: float = -math.inf

    @property
    def elapsed(self) -> float:
        """Seconds since the search started."""
        return time.perf_counter() - self.start

    def bound(self) -> float:
        """The certified bound of the whole search so far.

        Returns
        -------
        float
            The max over the open and retired nodes' bounds (``Frontier.bound``) and the
            nodes out on workers (``outside``).
        """
        return max(self.frontier.bound(), self.outside)

    def report(self, strategy: Strategy, force: bool = False) -> None:
        """Send a progress report (rate-limited unless ``force``).

        Parameters
        ----------
        strategy : Strategy
        force : bool
        """
        if self.progress is None:
            return
        now = self.elapsed
        if not force and now - self._last_report < self.progress_every:
            return
        self._last_report = now
        self.progress({"elapsed": now, "bound": self.bound(), "nodes": self.nodes,
                       "nodes_per_s": self.nodes / max(now, 1e-9), "open": len(self.frontier),
                       **strategy.progress_info()})

    def _record_bound(self, strategy: Strategy) -> float:
        bound = self.bound()
        if bound < self._last_bound:
            self._last_bound = bound
            strategy.on_bound(bound)
        return bound

    def run(self, strategy: Strategy, roots: list[Node]) -> str:
        """Best-first branch and bound from ``roots`` until a status is reached.

        Each round: retire the nodes at or below ``strategy.threshold()``, record the
        certified bound, stop if the strategy says so (or no node is open, or a limit or
        Ctrl-C is reached), else pop a batch, ``expand`` it and push the children above the
        threshold.

        Parameters
        ----------
        strategy : Strategy
        roots : list of Node
            Bounded root nodes (``expand`` has not been called on them).

        Returns
        -------
        str
            The strategy's status, or ``interrupted``, ``time_limit``, ``node_limit``.
        """
        self._push(strategy, roots)
        while True:
            self.frontier.prune(strategy.threshold())
            bound = self._record_bound(strategy)
            self.report(strategy)
            status = self.decide(strategy, bound)
            if status is not None:
                break
            nodes = self.frontier.pop(strategy.batch_size(len(self.frontier),
                                                          self.limits.node_limit - self.nodes))
            self.batches += 1
            self._push(strategy, strategy.expand(nodes, self))
        self._record_bound(strategy)
        self.report(strategy, force=True)
        return status

    def decide(self, strategy: Strategy, bound: float, pending: bool = False) -> str | None:
        """The status to stop with now, or None to go on: the strategy's rules, then the limits.

        Parameters
        ----------
        strategy : Strategy
        bound : float
            The certified bound of the whole search.
        pending : bool
            Nodes are out on workers (``search.distributed``): an empty frontier is not exhausted.

        Returns
        -------
        str or None
        """
        status = strategy.stop_status(bound)
        if status is None and not self.frontier and not pending:
            status = strategy.exhausted_status(bound)
        if status is None:
            status = self._limit_status()
        return status

    def record(self, strategy: Strategy) -> float:
        """Record the certified bound with the strategy when it improved, and return it.

        Parameters
        ----------
        strategy : Strategy

        Returns
        -------
        float
        """
        return self._record_bound(strategy)

    def push(self, strategy: Strategy, nodes: list[Node]) -> None:
        """Push bounded nodes on the frontier, retiring those at or below the strategy's threshold.

        Parameters
        ----------
        strategy : Strategy
        nodes : list of Node
        """
        self._push(strategy, nodes)

    def _push(self, strategy: Strategy, nodes: list[Node]) -> None:
        threshold = strategy.threshold()
        for node in nodes:
            if node.bound <= threshold:
                self.frontier.retire(node.bound, "pruned")
            else:
                self.frontier.push(node)

    def _limit_status(self) -> str | None:
        if self.limits.should_stop is not None and self.limits.should_stop():
            return INTERRUPTED
        if time.perf_counter() >= self.limits.deadline:
            return TIME_LIMIT
        if self.nodes >= self.limits.node_limit:
            return NODE_LIMIT
        return None
