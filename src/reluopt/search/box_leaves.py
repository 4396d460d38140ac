"""Leaf hand-offs of input splitting (``InputSplit``): node boxes and, once, the whole box to the MIP.

A node whose MIP has few binaries (``leaf_unstable``; the last layer's neurons that
``leaf.relaxable`` frees do not count) is solved by ``leaf.leaf_mip`` and closed on a trusted
status; a box too small to split goes to the MIP under constraints, else is frozen. When leaf
MIPs start (``LEAF_AFTER_NODES``) and the whole box's MIP has at most ``ROOT_MIP_BINARIES``
binaries, it is solved once for a share of the time left: its bound holds on every sub-box and
caps every node (``Frontier.cap``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .leaf import LEAF_MIP_MAX_SECONDS, run_leaf
from .split_settings import ROOT_MIP_SECONDS, ROOT_MIP_SHARE
from .tree import CLOSED, FROZEN, PRUNED, Node


class BoxLeaves:
    """The leaf part of ``InputSplit`` (a mixin: it uses the strategy's fields).

    Attributes
    ----------
    net, anytime, cfg, search, stats, leaf_problem, leaf_free, handoff_fits, s, k, p
        As set by ``InputSplit.__init__``.
    """

    net: Any
    anytime: Any
    cfg: Any
    search: Any
    stats: dict
    leaf_problem: Any
    leaf_free: np.ndarray | None
    handoff_fits: bool
    s: int
    k: int
    p: int
    _root: Node | None
    # supplied by GapStrategy and InputSplit (annotations only: no attribute shadows theirs)
    threshold: Callable[[], float]
    _offer: Callable[[np.ndarray, str], None]

    def _binaries(self, nb) -> np.ndarray:
        """Binaries of each box's leaf MIP: its unstable neurons but those ``leaf.relaxable`` frees."""
        n = nb.unstable(self.net)
        if self.leaf_free is not None:
            last = self.net.hidden_layers[-1].act.unstable(nb.lower[-1], nb.upper[-1])
            n = n - (last & self.leaf_free).sum(axis=1)
        return n

    def _root_mip(self, popped: Sequence[Node]) -> None:
        """Once, when leaf MIPs start: the whole box to the MIP if it has at most
        ``ROOT_MIP_BINARIES`` binaries, for ``ROOT_MIP_SHARE`` of the time left. Its bound holds
        on every sub-box, so it caps every node (the popped ones too); a closed MIP with its
        point as the incumbent then prunes the whole frontier."""
        assert self.search is not None and self._root is not None
        root, self._root = self._root, None
        if not (self.cfg.leaf_mip and self.handoff_fits):
            return
        left = self.search.limits.deadline - time.perf_counter()
        t0 = time.perf_counter()
        got = self._solve_leaf(root, ROOT_MIP_SHARE * left if math.isfinite(left) else ROOT_MIP_SECONDS,
                               start=self.anytime.x)
        self.stats["root_mip_seconds"] = time.perf_counter() - t0
        if got is None:
            return
        self.stats["root_mip"] = "closed" if got.closed else "open"
        self.search.frontier.cap(got.bound)
        for node in popped:
            node.bound = min(node.bound, got.bound)

    def _solve_leaf(self, node: Node, max_seconds: float = LEAF_MIP_MAX_SECONDS, start: np.ndarray | None = None):
        assert self.search is not None and self.leaf_problem is not None
        return run_leaf(self, node, self._offer, "bab:leaf-mip", max_seconds=max_seconds, start=start)

    def _handoff(self, node: Node) -> bool:
        """Solve the node's sub-box by the MIP; True if the MIP closed it (its bound then
        counts in the certified bound)."""
        got = self._solve_leaf(node)
        if got is None:
            return False
        node.bound = min(node.bound, got.bound)
        if not got.closed:
            return False
        assert self.search is not None
        self.search.frontier.retire(node.bound, CLOSED)
        return True

    def _leaf(self, node: Node) -> None:
        """A box too small to split: hand to the MIP if allowed, else freeze its bound."""
        assert self.search is not None
        bound = node.bound
        if self.cfg.leaf_mip and self.s == 1 and (self.k or self.p) and node.bound > self.threshold():
            got = self._solve_leaf(node)
            if got is not None:
                bound = min(bound, got.bound)
        self.search.frontier.retire(bound, FROZEN if bound > self.threshold() else PRUNED)
