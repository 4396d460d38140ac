"""General optimisation models over trained networks, solved by reluopt's own methods.

``Model`` holds named decision variables (continuous or integer), networks fed by affine
expressions of them (chained or sharing inputs), linear constraints and a linear objective;
``Model.solve`` runs ``mip``, ``auto`` or ``bab`` and returns a forward-checked ``ModelResult``.
"""

from .core import Model, Var
from .result import ModelResult

__all__ = ["Model", "ModelResult", "Var"]
