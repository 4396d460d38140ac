"""Mixed-integer formulations of ReLU networks and the solver back-ends (``backends``)."""

from .backends import BACKENDS, get_backend
from .backends.base import SolveOutput
from .backends.highs import solve_highs
from .formulation import MilpModel, build_network_model

__all__ = ["BACKENDS", "MilpModel", "SolveOutput", "build_network_model", "get_backend", "solve_highs"]
