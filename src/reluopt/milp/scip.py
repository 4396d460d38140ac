"""Former home of the SCIP back-end, kept importable: see ``reluopt.milp.backends.scip``."""

from .backends.scip import TRUSTED_SCIP_STATUSES, ScipBackend, ScipInstance, import_scip, scip_model, solve_scip

__all__ = ["TRUSTED_SCIP_STATUSES", "ScipBackend", "ScipInstance", "import_scip", "scip_model", "solve_scip"]
