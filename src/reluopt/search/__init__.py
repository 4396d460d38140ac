"""Branch and bound, written once: the node record and frontier (``tree``), input-box splitting
(``boxes``), the loop with its limits and progress (``engine``), and the strategies that use it:
``InputSplit`` for optimisation (``methods.bab``), ``ReluSplit`` (``relu_split``: branching on
ReLU phases, ``methods.bab_relu``), the disjunct tree of verification (``disjuncts``) and the
Lipschitz search (``lipschitz.bab``).
"""

from .engine import Limits, Search, Strategy
from .input_split import InputSplit
from .split_settings import ABOVE, BELOW, BRANCHING, Settings
from .tree import Frontier, Node

__all__ = ["ABOVE", "BELOW", "BRANCHING", "Frontier", "InputSplit", "Limits", "Node", "Search", "Settings",
           "Strategy"]
