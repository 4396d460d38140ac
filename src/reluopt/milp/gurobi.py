"""Former home of the Gurobi back-end, kept importable: see ``reluopt.milp.backends.gurobi``."""

from .backends.gurobi import GurobiBackend, GurobiInstance, import_gurobi, solve_gurobi

__all__ = ["GurobiBackend", "GurobiInstance", "import_gurobi", "solve_gurobi"]
