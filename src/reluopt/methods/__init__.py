"""Optimisation methods. Each has the signature

    method(problem, *, time_limit=None, seed=0, progress=None, **options) -> Result

and is looked up by name here, so the CLI, the portfolio and the benchmarks share one table.
Modules are imported lazily: a method whose extra is missing fails only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from ..errors import ProblemError
from ..problem import Problem
from ..result import Result

#: name -> "module:function" (module relative to reluopt.methods; "..inversion.x" is reluopt.inversion.x)
METHODS: dict[str, str] = {
    "mip": "mip:solve_mip",
    "bab": "bab:solve_bab",
    "bab-relu": "bab_relu:solve_bab_relu",
    "sampling": "sampling:solve_sampling",
    "sampling-mip": "sampling:solve_sampling_mip",
    "sampling+mip": "sampling:solve_sampling_then_mip",
    "walk": "walk:solve_walk",
    "ppga": "gradient:solve_ppga",
    "ppga-lr": "gradient:solve_ppga_lr",
    "pgd": "attack:solve_pgd",
    "ppga+polish": "gradient:solve_ppga_polish",
    "ppga-lr+polish": "gradient:solve_ppga_lr_polish",
    "auto": "portfolio:solve_auto",
    "adam": "..inversion.adam:solve_adam",
    "surfing": "..inversion.surfing:solve_surfing",
    "miqp": "..inversion.miqp:solve_miqp",
}


def _module_name(target: str) -> str:
    """The absolute module name of a ``METHODS`` entry (``"mip:solve_mip"`` -> ``reluopt.methods.mip``)."""
    module = target.split(":")[0]
    return importlib.util.resolve_name(module if module.startswith(".") else f".{module}", __name__)


def available_methods() -> list[str]:
    """Names of the methods whose module exists in this installation.

    Returns
    -------
    list of str
        Keys of `METHODS`, in table order.
    """
    return [name for name, target in METHODS.items()
            if importlib.util.find_spec(_module_name(target)) is not None]


def get_method(name: str) -> Callable[..., Result]:
    """The method called ``name``, imported on first use (one table for the CLI and the portfolio).

    Parameters
    ----------
    name : str
        A key of `METHODS`.

    Returns
    -------
    callable
        ``method(problem, *, time_limit=None, seed=0, progress=None, **options) -> Result``.

    Raises
    ------
    ProblemError
        ``name`` is unknown or its module is not in this installation.
    """
    if name not in METHODS:
        raise ProblemError(f"unknown method {name!r}; choose from {', '.join(available_methods())}")
    module, func = _module_name(METHODS[name]), METHODS[name].split(":")[1]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(module):
            raise ProblemError(f"method {name!r} is not available in this version") from None
        raise
    return getattr(mod, func)


#: Methods whose branch and bound can farm its frontier out to a Dask cluster (``workers``/``scheduler``).
CLUSTER_METHODS = ("auto", "bab", "bab-relu")


def solve(problem: Problem, method: str = "auto", *, workers=None, scheduler=None, **options) -> Result:
    """Solve ``problem`` with the named method.

    Parameters
    ----------
    problem : Problem
        The problem.
    method : str, optional
        A key of `METHODS`; default ``auto``: a short heuristic phase, then bab for
        low-dimensional bounded boxes, else the MIP.
    workers : int, search.cluster.Cluster or None
        Farm branch and bound out to a Dask ``LocalCluster`` of this many one-thread workers
        (started only when a search is still open after its warm-up), or to a ``Cluster``
        (with its knobs); methods in ``CLUSTER_METHODS`` only.
    scheduler : str, dask.distributed.Client or None
        The same on an existing cluster: a scheduler address (``tcp://host:8786``) or a Client.
    **options
        Passed to the method (``time_limit``, ``seed``, ``progress``, method options).

    Returns
    -------
    Result
        The method's result.
    """
    fn = get_method(method)
    if workers is None and scheduler is None:
        return fn(problem, **options)
    if method not in CLUSTER_METHODS:
        raise ProblemError(f"method {method!r} does not run on a Dask cluster; workers/scheduler work with "
                           f"{', '.join(CLUSTER_METHODS)}")
    from ..search.cluster import scope

    with scope(workers, scheduler):
        return fn(problem, **options)
