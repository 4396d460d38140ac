"""reluopt: optimisation over trained ReLU neural networks.

    import reluopt
    net = reluopt.load("model.onnx")
    problem = reluopt.Problem.build(net, lb=-3, ub=3, minimize=0)
    result = reluopt.solve(problem, method="mip", time_limit=60)
    print(result.value, result.bound, result.x)
"""

from .bounds import LayerBounds, compute_bounds
from .errors import (
    ModelError,
    ParseError,
    ProblemError,
    ReluoptError,
    SolverError,
    UnsupportedError,
)
from .lipschitz import lipschitz  # the function shadows the subpackage name on purpose
from .methods import available_methods, solve
from .network import Layer, Network
from .problem import Domain, LeastSquares, Objective, OutputConstraints, Problem
from .result import Result

__version__ = "0.1.0"


def load(path, **kwargs) -> Network:
    """Load a network from ONNX, a native ``.npz``, a pickled scikit-learn model or a torch
    file, chosen by the file's extension."""
    from .io import load_model

    return load_model(path, **kwargs)


__all__ = [
    "Domain", "Layer", "LayerBounds", "LeastSquares", "ModelError", "Network", "Objective",
    "OutputConstraints",
    "ParseError", "Problem", "ProblemError", "ReluoptError", "Result", "SolverError",
    "UnsupportedError", "__version__", "available_methods", "compute_bounds", "lipschitz", "load", "solve",
]
