"""Least-squares inversion of ReLU networks: find the input whose image is a target.

The objective is ``1/2 ||A G(x) + a - t||^2`` (``reluopt.LeastSquares``) for a trained
generative network ``G``, the identity ``A`` for inversion and a measurement matrix for
compressed sensing. Three methods, registered in ``reluopt.methods.METHODS`` so that
``reluopt.solve(problem, method=...)`` and the CLI reach them by name:

- ``surfing`` (``inversion.surfing``): Surfing (Song, Fan and Lafferty, NeurIPS 2019), Adam
  along the training checkpoints ``G_0 ... G_T``; also ``surf``/``direct``/
  ``inversion.comparison.compare_at_equal_budget`` for batches of targets (``reluopt surf``),
  and the paper's comparison ``compare_paper_setup`` against restarts run to convergence
  (``inversion.restarts.restarts_to_convergence``).
- ``adam`` (``inversion.adam``): multi-start projected Adam on any objective.
- ``miqp`` (``inversion.miqp``): the exact global minimum, a convex MIQP on SCIP.
"""

from __future__ import annotations

from .adam import Adam, solve_adam
from .comparison import compare_at_equal_budget, compare_paper_setup, relative_errors
from .miqp import build_miqp, solve_miqp
from .restarts import restarts_to_convergence
from .surfing import direct, gradient_budget, load_checkpoints, solve_surfing, surf, validate_checkpoints

__all__ = [
    "Adam", "build_miqp", "compare_at_equal_budget", "compare_paper_setup", "direct", "gradient_budget",
    "load_checkpoints", "relative_errors", "restarts_to_convergence", "solve_adam", "solve_miqp", "solve_surfing",
    "surf", "validate_checkpoints",
]
