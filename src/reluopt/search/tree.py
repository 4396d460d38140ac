"""The search tree every branch and bound in reluopt shares: nodes and the best-first frontier.

A node is a sub-problem with a certified upper bound of what it can still hold (max form).
The frontier keeps the open nodes, best bound first, and remembers the largest bound of every
node that left it without being split (pruned by the incumbent, closed by an exact solve,
frozen because it became too small, proven empty): the certified bound of the whole search is
the largest of those and of the open nodes' bounds, so dropping a node never loses soundness.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: Why a node left the frontier without being split.
PRUNED = "pruned"        # its bound cannot beat the incumbent (or a caller's threshold)
CLOSED = "closed"        # an exact solve (a leaf MIP) settled it; its bound is that solve's
FROZEN = "frozen"        # too small to split and still undecided: its bound stays in the answer
EMPTY = "infeasible"     # proven to hold no feasible point
REASONS = (PRUNED, CLOSED, FROZEN, EMPTY)

#: Neuron bounds inherited from a parent: (lowers, uppers), one array per hidden layer.
Prior = tuple[list[np.ndarray], list[np.ndarray]]


@dataclass
class Node:
    """One sub-problem: an input box, its certified bound and what its children inherit.

    Parameters
    ----------
    lo, hi : ndarray, shape (d,)
        The node's input box.
    bound : float
        Certified upper bound (max form) of the node's sub-problem; the frontier's priority.
    prior : Prior or None
        Neuron bounds valid on the box (stored rounded outward to float32): children start
        from them, so bounds only tighten down the tree.
    depth : int
        Number of splits from the root.
    """

    lo: np.ndarray
    hi: np.ndarray
    bound: float
    prior: Prior | None = None
    depth: int = 0


class Frontier:
    """Open nodes, best bound first, and the bounds of the nodes that left unsplit.

    Attributes
    ----------
    retired : dict
        Per reason in ``REASONS``, the largest bound of a node that left for it.
    counts : collections.Counter
        Per reason, how many nodes left for it.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Node]] = []
        self._pushed = 0
        self.retired: dict[str, float] = dict.fromkeys(REASONS, -math.inf)
        self.counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[Node]:
        return (entry[2] for entry in self._heap)

    def push(self, node: Node) -> None:
        """Add an open node.

        Parameters
        ----------
        node : Node
        """
        self._pushed += 1
        heapq.heappush(self._heap, (-node.bound, self._pushed, node))

    def pop(self, k: int = 1) -> list[Node]:
        """Remove and return the ``k`` nodes with the largest bounds (fewer if fewer are open).

        Parameters
        ----------
        k : int

        Returns
        -------
        list of Node
        """
        return [heapq.heappop(self._heap)[2] for _ in range(min(k, len(self._heap)))]

    def top(self) -> float:
        """The largest bound of an open node, the next one best-first order would pop.

        Returns
        -------
        float
            ``-inf`` when no node is open.
        """
        return -self._heap[0][0] if self._heap else -math.inf

    def retire(self, bound: float, reason: str) -> None:
        """Record a node that leaves unsplit: its bound still counts in ``bound()``.

        Parameters
        ----------
        bound : float
            The node's certified bound (``-inf`` for a node proven empty).
        reason : str
            One of ``REASONS``.
        """
        self.retired[reason] = max(self.retired[reason], float(bound))
        self.counts[reason] += 1

    def prune(self, threshold: float) -> int:
        """Retire the open nodes whose bound is at most ``threshold``; returns how many.

        Parameters
        ----------
        threshold : float
            Nodes at or below it cannot matter any more (e.g. incumbent + gap tolerance).

        Returns
        -------
        int
        """
        n = 0
        while self._heap and -self._heap[0][0] <= threshold:
            self.retire(heapq.heappop(self._heap)[2].bound, PRUNED)
            n += 1
        return n

    def cap(self, bound: float) -> None:
        """Lower every node's bound to ``bound``, a certified bound of the whole problem (hence
        of every sub-problem), e.g. from one exact solve of the root.

        Parameters
        ----------
        bound : float
        """
        for _, _, node in self._heap:
            node.bound = min(node.bound, bound)
        self._heap = [(-node.bound, k, node) for _, k, node in self._heap]
        heapq.heapify(self._heap)
        self.retired = {r: min(b, bound) for r, b in self.retired.items()}

    def bound(self) -> float:
        """Certified upper bound of the whole search: open and retired nodes alike.

        Returns
        -------
        float
            The max of ``top()`` and every retired bound.
        """
        return max(self.top(), *self.retired.values())
