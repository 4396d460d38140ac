"""reluopt: optimisation over trained ReLU neural networks.

    import reluopt
    net = reluopt.load("model.onnx")
    problem = reluopt.Problem.build(net, lb=-3, ub=3, minimize=0)
    result = reluopt.solve(problem, method="mip", time_limit=60)
    print(result.value, result.bound, result.x)
"""

from . import lipschitz  # the subpackage, callable: reluopt.lipschitz(...) is lipschitz_constant(...)
from .bounds import LayerBounds, compute_bounds
from .errors import (
    ModelError,
    ParseError,
    ProblemError,
    ReluoptError,
    SolverError,
    UnsupportedError,
)
from .lipschitz import lipschitz_constant
from .methods import available_methods, solve
from .model import Model, ModelResult
from .network import Layer, Network
from .problem import Domain, LeastSquares, Objective, OutputConstraints, Problem
from .result import Result

__version__ = "0.1.0"


def load(source, *, trust_pickle: bool = False, **kwargs) -> Network:
    """Load a network from a file, or convert a model object already in memory.

    Parameters
    ----------
    source : str, os.PathLike or object
        A file, by extension: ``.onnx``, ``.npz`` (reluopt native), ``.skops`` (scikit-learn),
        ``.pt``/``.pth`` (torch: TorchScript, or a pickled ``nn.Module``) or
        ``.pkl``/``.pickle``/``.joblib`` (a pickled scikit-learn model). Or an object: a
        ``Network`` (returned as is), a fitted scikit-learn MLP or ``Pipeline``, a torch
        ``nn.Module`` or an ``onnx.ModelProto``.
    trust_pickle : bool, default False
        Allow unpickling. A pickle can run arbitrary code when it is loaded, so pickled
        files (``.pkl``, ``.joblib``, a whole ``nn.Module`` in ``.pt``) are refused unless
        this is true. Only for files you trust; prefer ONNX, ``.npz`` or skops.
    **kwargs
        Passed on to ``reluopt.io.load_model`` (``allow_pickle``, deprecated alias of
        ``trust_pickle``).

    Returns
    -------
    Network

    Raises
    ------
    ReluoptError
        ``ModelError`` for a missing, unreadable or untrusted file, ``UnsupportedError`` for a
        format, object type or layer reluopt cannot read.

    Examples
    --------
    >>> net = reluopt.load("model.onnx")                       # doctest: +SKIP
    >>> net = reluopt.load(torch_module)                       # doctest: +SKIP
    >>> net = reluopt.load("mlp.joblib", trust_pickle=True)    # doctest: +SKIP
    """
    from .io import load_model

    return load_model(source, trust_pickle=trust_pickle, **kwargs)


__all__ = [
    "Domain", "Layer", "LayerBounds", "LeastSquares", "Model", "ModelError", "ModelResult", "Network", "Objective",
    "OutputConstraints",
    "ParseError", "Problem", "ProblemError", "ReluoptError", "Result", "SolverError",
    "UnsupportedError", "__version__", "available_methods", "compute_bounds", "lipschitz", "lipschitz_constant", "load",
    "solve",
]
