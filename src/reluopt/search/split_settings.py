"""The knobs of input splitting (``InputSplit``) and the defaults behind them.

Kept apart from the strategy so that ``methods.bab`` and the CLI can name and check the
options (``BRANCHING``, the stop statuses) without the bounding machinery. The measurements
behind the defaults are in ``benchmarks/results/bab.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Statuses of a search stopped by a caller's threshold (beyond reluopt.result's).
ABOVE = "above"   # a point with value >= stop_above was found
BELOW = "below"   # the certified bound fell below stop_below

BRANCHING = ("auto", "trial", "fsb", "lambda", "gradient", "widest")
BRANCHING_ALIASES = {"smear": "lambda"}

#: ``branching="auto"`` with one objective row starts with fsb and switches to trial after this
#: many nodes: fsb's cheap scores are faster on easy boxes but can stall.
AUTO_SWITCH_NODES = 2000

#: Without constraints, leaf MIPs start only after this many nodes: CROWN splitting closes most
#: gaps sooner and cheaper.
LEAF_AFTER_NODES = 2000

#: When the node count reaches ``LEAF_AFTER_NODES`` and the whole box's MIP (one objective row)
#: has at most this many binaries, the whole box is handed to the MIP once, for at most
#: ``ROOT_MIP_SHARE`` of the remaining time (``ROOT_MIP_SECONDS`` without a time limit): its
#: bound caps every node, and a closed MIP ends the search. Measured in
#: benchmarks/results/relu_split.md (issue 15, round 3).
ROOT_MIP_BINARIES = 48
ROOT_MIP_SHARE = 0.75
ROOT_MIP_SECONDS = 600.0

#: Step size of the lower slopes tuned per node (``Settings.slope_steps``), as in ``relu_bounds``.
SLOPE_LR = 0.1

#: Slopes are tuned only on networks with at most this many hidden layers: on one hidden layer
#: the tuned bound is the node's LP bound; on deeper nets (ACAS Xu, 6 x 50) they cost more per
#: node than they save (benchmarks/results/relu_split.md, issue 15 round 3).
SLOPE_MAX_DEPTH = 2

#: Split gains (fsb/trial) below this fraction of the node's gap count as none (off: see
#: benchmarks/results/bab.md).
GAIN_FLOOR = 0.0


@dataclass
class Settings:
    """The knobs of input splitting (see ``methods.bab.bab_maximize_min`` for their meaning).

    Attributes
    ----------
    abs_gap, rel_gap : float
        Stop when the incumbent is within these of the certified bound.
    stop_above, stop_below : float or None
        Stop at a point with value >= ``stop_above`` (``ABOVE``) or a certified bound
        < ``stop_below`` (``BELOW``), in the search's max form.
    batch_size : int
        About this many boxes are bounded per batched pass.
    branching : str
        One of ``BRANCHING`` (or an alias in ``BRANCHING_ALIASES``).
    grad_steps, mult_steps, region_steps : int
        Sign-gradient steps per batch, multiplier steps per node, region LPs per improvement.
    slope_steps : int
        Projected steps on the objective rows' lower ReLU slopes per node (alpha-CROWN warm-started
        from the parent; 0: the three fixed slopes only). Used on ReLU networks with at most
        ``SLOPE_MAX_DEPTH`` hidden layers.
    min_width : float
        Boxes narrower than this (relative to the root, in every dimension) are frozen.
    leaf_mip : bool
        Hand nodes whose MIP has at most ``leaf_unstable`` binaries (unstable neurons, less the
        last layer's that the objective wants small: ``leaf.relaxable``) to the MIP.
    leaf_unstable : int
    """

    abs_gap: float
    rel_gap: float
    stop_above: float | None = None
    stop_below: float | None = None
    batch_size: int = 128
    branching: str = "auto"
    grad_steps: int = 3
    mult_steps: int = 3
    region_steps: int = 5
    slope_steps: int = 3
    min_width: float = 1e-7
    leaf_mip: bool = True
    leaf_unstable: int = 12
