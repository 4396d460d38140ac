"""Mixed-integer formulations of ReLU networks and thin solver backends."""

from .formulation import MilpModel, build_network_model
from .highs import SolveOutput, solve_highs

__all__ = ["MilpModel", "SolveOutput", "build_network_model", "solve_highs"]
