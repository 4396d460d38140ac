"""``reluopt solve --write``: reluopt's MIP as an MPS or LP file that another solver (here
highspy, reading the file afresh) solves to the optimum, which brute force over the network's
linear regions (one LP each) confirms."""

from __future__ import annotations

import json

import highspy
import numpy as np
import pytest
from scipy.optimize import linprog

from bruteforce import cached_regions
from conftest import random_network
from reluopt.cli import main
from reluopt.io import save_npz

LB = np.array([-1.0, -1.5])
UB = np.array([1.0, 0.5])


@pytest.fixture(scope="module")
def net():
    return random_network([2, 6, 6, 2], seed=11)


def brute_force(net, c, sense):
    """The optimum of ``c . y`` over the box with ``x0 - x1 <= 1`` (``sense`` 'max' or 'min')."""
    s = 1.0 if sense == "max" else -1.0
    best = -np.inf
    for pattern, _ in cached_regions(net, LB, UB):
        pre, (T, t) = net.region_affine(pattern)
        rows, rhs = [np.array([[1.0, -1.0]])], [np.array([1.0])]
        for (Al, cl), p in zip(pre, pattern, strict=True):
            sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
            rows.append(sign[:, None] * Al)
            rhs.append(-sign * cl)
        obj = s * (c @ T)
        res = linprog(-obj, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=list(zip(LB, UB, strict=True)),
                      method="highs")
        if res.status == 0:
            best = max(best, float(obj @ res.x + s * (c @ t)))
    return s * best


def read_and_solve(path):
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    assert h.readModel(str(path)) != highspy.HighsStatus.kError
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    names = h.getLp().col_names_
    x = np.array([h.getSolution().col_value[names.index(f"x_{i}")] for i in range(2)])
    return h.getInfo().objective_function_value, x


@pytest.mark.parametrize(("sense", "suffix"), [("max", "mps"), ("min", "lp"), ("min", "mps")])
def test_written_model_solves_to_the_optimum(net, tmp_path, sense, suffix):
    path = save_npz(net, tmp_path / "net.npz")
    out = tmp_path / f"model.{suffix}"
    flag = "--maximize" if sense == "max" else "--minimize"
    code = main(["solve", str(path), "--box=-1:1,-1.5:0.5", flag, "y[0] - 0.5*y[1]", "--constraint",
                 "x[0] - x[1] <= 1", "--method", "mip", "--write", str(out), "--quiet", "--json",
                 str(tmp_path / "r.json")])
    assert code == 0 and out.exists()
    truth = brute_force(net, np.array([1.0, -0.5]), sense)
    value, x = read_and_solve(out)
    assert value == pytest.approx(truth, abs=1e-6)
    y = net.forward(x)
    assert y[0] - 0.5 * y[1] == pytest.approx(truth, abs=1e-5)     # its inputs give the optimum
    assert json.loads((tmp_path / "r.json").read_text())["value"] == pytest.approx(truth, abs=1e-6)


def test_write_rejects_other_extensions_and_help_explains(net, tmp_path, capsys):
    path = save_npz(net, tmp_path / "net.npz")
    code = main(["solve", str(path), "--box=-1,1", "--maximize", "0", "--method", "mip", "--write",
                 str(tmp_path / "model.txt"), "--quiet"])
    assert code == 2
    assert "must end in .mps or .lp" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    assert "--write FILE" in capsys.readouterr().out
