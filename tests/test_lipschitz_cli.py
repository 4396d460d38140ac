"""``reluopt lipschitz``: results against brute force, JSON, exit codes, clear errors."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from conftest import random_network
from reluopt.cli import EXIT_NO_PROOF, EXIT_OK, EXIT_USAGE, main
from reluopt.io import save_npz
from test_lipschitz import brute_lipschitz


@pytest.fixture
def net_file(tmp_path):
    net = random_network([2, 6, 6, 3], seed=11)
    return net, str(save_npz(net, tmp_path / "net.npz"))


def test_vector_case_mip_end_to_end(net_file, tmp_path, capsys):
    net, path = net_file
    out = tmp_path / "lip.json"
    code = main(["lipschitz", path, "--box=-1,1", "--norm", "inf", "--method", "mip", "--time-limit", "30",
                 "--samples", "2000", "--json", str(out), "--quiet"])
    assert code == EXIT_OK
    assert "status  optimal" in capsys.readouterr().out
    rep = json.loads(out.read_text())
    truth = max(brute_lipschitz(net, -1, 1, np.eye(3)[k], "inf") for k in range(3))
    assert rep["lower"] <= truth * (1 + 1e-9) and rep["upper"] >= truth * (1 - 1e-9)
    assert rep["upper"] - rep["lower"] <= 1e-5 * truth
    x = np.array(rep["x"])
    assert np.all(np.abs(x) <= 1)
    # the witness's pattern is the one reported, and its largest Jacobian-row l1 norm is the lower bound
    assert all(np.array_equal(a[0], b) for a, b in zip(net.phase_pattern(x[None]), rep["pattern"], strict=True))
    assert np.isclose(np.abs(net.jacobian(x)).sum(axis=1).max(), rep["lower"], rtol=1e-12)


@pytest.mark.parametrize("form", ["file", "dict-file", "expression", "inline"])
def test_objective_forms_agree(net_file, tmp_path, capsys, form):
    net, path = net_file
    c = np.array([1.0, -1.0, 0.0])
    if form == "file":
        (tmp_path / "c.json").write_text(json.dumps(c.tolist()))
        arg = str(tmp_path / "c.json")
    elif form == "dict-file":
        (tmp_path / "c.json").write_text(json.dumps({"c": c.tolist()}))
        arg = str(tmp_path / "c.json")
    else:
        arg = "y[0] - y[1]" if form == "expression" else "1,-1,0"
    code = main(["lipschitz", path, "--box=-1,1", "--norm", "1", "--objective", arg, "--method", "bab",
                 "--time-limit", "30", "--samples", "2000", "--json", "-", "--quiet"])
    assert code == EXIT_OK
    rep = json.loads(capsys.readouterr().out)
    truth = brute_lipschitz(net, -1, 1, c, "1")
    assert rep["lower"] <= truth * (1 + 1e-9) and rep["upper"] >= truth * (1 - 1e-9)
    assert rep["status"] == "optimal"


def test_gap_left_exits_one_and_json_is_strict(net_file, capsys):
    _, path = net_file
    code = main(["lipschitz", path, "--box=-1,1", "--output", "0", "--method", "bounds", "--json", "-", "--quiet"])
    assert code == EXIT_NO_PROOF
    captured = capsys.readouterr()
    assert "status  bounds" in captured.err      # the summary goes to stderr when JSON takes stdout

    def no_infinity(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    rep = json.loads(captured.out, parse_constant=no_infinity)
    assert rep["lower"] is None and rep["x"] is None and rep["upper"] > 0 and rep["status"] == "bounds"


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["lipschitz", "--help"])
    text = capsys.readouterr().out
    for option in ("--box", "--norm", "--output", "--objective", "--method", "--time-limit", "--bounds",
                   "--solver", "--polytope", "--samples", "--threads", "--seed", "--json", "--quiet"):
        assert option in text, option
    for method in ("auto", "sample", "bounds", "bab", "mip", "mip-upper", "miqcqp"):
        assert f"  {method} " in text, method
    assert "exit codes" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--norm", "3"], "norm must be 1, 2 or inf"),
        (["--norm", "1"], "vector case"),
        (["--box=-inf,1"], "finite"),
        (["--box=-1,1,2"], "--box"),
        (["--method", "newton"], "unknown Lipschitz method"),
        (["--output", "7"], "does not exist"),
        (["--objective", "1,2"], "has 2 coefficients"),
        (["--objective", "y[9]"], "does not exist"),
        (["--bounds", "magic"], "unknown bounds"),
        (["--solver", "cplex"], "unknown MIP solver"),
        (["--time-limit", "0"], "time limit"),
        (["--norm", "2", "--output", "0", "--method", "mip"], "miqcqp"),
    ],
)
def test_bad_input_is_one_clear_line(net_file, argv, message, capsys):
    _, path = net_file
    argv = ["--box=-1,1", *argv] if not any(a.startswith("--box") for a in argv) else argv
    assert main(["lipschitz", path, *argv, "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_l2_without_scip_names_the_extra(net_file, monkeypatch, capsys):
    _, path = net_file
    real_import = builtins.__import__

    def no_scip(name, *args, **kwargs):
        if name == "pyscipopt":
            raise ImportError("No module named 'pyscipopt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scip)
    code = main(["lipschitz", path, "--box=-1,1", "--norm", "2", "--output", "0", "--method", "miqcqp", "--quiet"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "reluopt[scip]" in err and "nonconvex" in err


def test_missing_model_file(capsys):
    assert main(["lipschitz", "/nonexistent/net.onnx", "--box=0,1"]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
