"""examples/model/reformer_units.py runs, and its optimum matches a grid over both units."""

from __future__ import annotations

import importlib.util
import re

import numpy as np

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "model" / "reformer_units.py"


def load_example():
    spec = importlib.util.spec_from_file_location("reformer_units", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_optimum(module) -> float:
    """The units share only the steam budget: per steam level, the best bypass of one unit on a
    fine grid; then the best pair of levels within the budget."""
    import reluopt

    net = reluopt.load(module.NET)
    bypass = np.linspace(0.1, 0.8, 7001)
    levels = 0.8 + module.STEP * np.arange(9)
    best = []
    for s in levels:
        y = net.forward(np.column_stack([bypass, np.full_like(bypass, s)]))
        ok = y[:, 1] <= 0.34
        g = 0.5 * y[:, 0] - module.BYPASS_COST * bypass - module.STEAM_COST * s
        best.append(np.max(g[ok]) if ok.any() else -np.inf)
    return max(best[i] + best[j] for i in range(9) for j in range(9)
               if levels[i] + levels[j] <= module.STEAM_BUDGET + 1e-12)


def test_reformer_units_example(capsys):
    module = load_example()
    assert module.main(["--method", "auto", "--time-limit", "300"]) == 0
    out = capsys.readouterr().out
    value, bound = (float(v) for v in re.search(r"objective (\S+), bound (\S+)", out).groups())
    truth = grid_optimum(module)
    assert value >= truth - 2e-4          # the grid's best (up to the solver's gap)
    assert bound >= truth - 1e-9          # a true bound
    assert "largest violation" in out
