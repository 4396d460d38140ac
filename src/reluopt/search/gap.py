"""What every optimising search strategy shares: the incumbent, the gap test and the statuses.

``bab`` (``InputSplit``) and ``bab-relu`` (``ReluSplit``) maximise the same kind of problem
(objective rows in max form, tracked by one ``Anytime``) and stop by the same rules: a closed
gap (``optimal``), a caller's thresholds (``above``/``below``), or an empty frontier
(``infeasible``, ``optimal``, or ``feasible`` when frozen nodes keep the gap open). They differ
only in how they split and bound, so this part is written once.
"""

from __future__ import annotations

import math
from typing import Any

from ..result import FEASIBLE, INFEASIBLE, NO_SOLUTION, OPTIMAL
from ..tracker import Anytime
from .engine import Search
from .split_settings import ABOVE, BELOW


class GapStrategy:
    """Base of the optimising strategies (the gap part of the ``Strategy`` protocol).

    Subclasses set ``anytime``, ``cfg`` (with ``abs_gap``, ``rel_gap``, ``stop_above``,
    ``stop_below``), ``sign`` (the objective's, +1 for max), ``search`` and ``source`` (the name
    the tracker's history shows), and supply ``roots``, ``expand`` and ``batch_size``.

    Attributes
    ----------
    anytime : Anytime
    cfg : object
        The strategy's settings.
    sign : float
    search : Search or None
    source : str
    """

    anytime: Anytime
    cfg: Any
    sign: float
    search: Search | None
    source: str

    @property
    def value(self) -> float:
        """The incumbent's value in max form (``-inf`` without one)."""
        return -math.inf if self.anytime.value is None else self.sign * self.anytime.value

    def threshold(self) -> float:
        """Nodes whose bound is at most this are not needed. See `Strategy.threshold`."""
        cfg = self.cfg
        t = -math.inf
        if self.anytime.value is not None:
            t = self.value + max(cfg.abs_gap, cfg.rel_gap * abs(self.value))
        if cfg.stop_below is not None:
            t = max(t, cfg.stop_below)
            if cfg.stop_above is not None:
                # a node that cannot reach stop_above cannot give a counterexample; keep it
                # only when the caller also wants a proof of its bound
                t = max(t, min(cfg.stop_above, cfg.stop_below))
        return t

    def converged(self, bound: float) -> bool:
        """Is the gap between the incumbent and ``bound`` within the tolerances?

        Parameters
        ----------
        bound : float
            A certified bound (max form).

        Returns
        -------
        bool
            False while there is no incumbent.
        """
        if self.anytime.value is None:
            return False
        g = bound - self.value
        return g <= self.cfg.abs_gap or g <= self.cfg.rel_gap * max(abs(self.value), 1e-10)

    def stop_status(self, bound: float) -> str | None:
        """``above``/``below`` at a caller's threshold, ``optimal`` on a closed gap. See `Strategy.stop_status`."""
        cfg = self.cfg
        if cfg.stop_above is not None and self.anytime.value is not None and self.value >= cfg.stop_above:
            return ABOVE
        if cfg.stop_below is not None and bound < cfg.stop_below:
            return BELOW
        if self.search is not None and self.search.frontier and self.converged(bound):
            return OPTIMAL
        return None

    def exhausted_status(self, bound: float) -> str:
        """No open node: infeasible, optimal or feasible. See `Strategy.exhausted_status`."""
        if bound == -math.inf:
            return INFEASIBLE
        if self.anytime.value is not None and self.converged(bound):
            return OPTIMAL
        return FEASIBLE if self.anytime.value is not None else NO_SOLUTION

    def on_bound(self, bound: float) -> None:
        """Record the certified bound in the tracker (user sense). See `Strategy.on_bound`."""
        self.anytime.improve_bound(self.sign * bound, self.source)

    def progress_info(self) -> dict:
        """The incumbent (max form) for progress reports. See `Strategy.progress_info`."""
        return {"incumbent": None if self.anytime.value is None else self.value}
