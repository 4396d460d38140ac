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

#: name -> "module:function" (module relative to reluopt.methods)
METHODS: dict[str, str] = {
    "mip": "mip:solve_mip",
    "bab": "bab:solve_bab",
    "sampling": "sampling:solve_sampling",
    "sampling-mip": "sampling:solve_sampling_mip",
    "sampling+mip": "sampling:solve_sampling_then_mip",
    "walk": "walk:solve_walk",
    "ppga": "gradient:solve_ppga",
    "ppga-lr": "gradient:solve_ppga_lr",
    "ppga+polish": "gradient:solve_ppga_polish",
    "ppga-lr+polish": "gradient:solve_ppga_lr_polish",
    "auto": "portfolio:solve_auto",
    "adam": "surfing:solve_adam",
    "surfing": "surfing:solve_surfing",
    "miqp": "surfing_exact:solve_miqp",
}


def available_methods() -> list[str]:
    """Names of the methods whose module exists in this installation."""
    out = []
    for name, target in METHODS.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(f"{__name__}.{module}") is not None:
            out.append(name)
    return out


def get_method(name: str) -> Callable[..., Result]:
    if name not in METHODS:
        raise ProblemError(f"unknown method {name!r}; choose from {', '.join(available_methods())}")
    module, func = METHODS[name].split(":")
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"{__name__}.{module}"):
            raise ProblemError(f"method {name!r} is not available in this version") from None
        raise
    return getattr(mod, func)


def solve(problem: Problem, method: str = "auto", **options) -> Result:
    """Solve ``problem`` with the named method (see ``METHODS``; default ``auto``: a short
    heuristic phase, then bab for low-dimensional bounded boxes, else the MIP)."""
    return get_method(method)(problem, **options)
