"""Problem validation and the solve/bounds command line, including bad input: each mistake
gives one clear line naming it (exit code 2), never a traceback from a dependency."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import random_network
from reluopt import Problem, ProblemError, ReluoptError
from reluopt.cli import main
from reluopt.io import save_npz


@pytest.fixture
def model_file(tmp_path):
    net = random_network([2, 8, 8, 2], seed=3)
    return net, str(save_npz(net, tmp_path / "net.npz"))


@pytest.mark.parametrize("kwargs,message", [
    (dict(lb=[1.0, 0.0], ub=[0.0, 1.0], maximize=0), "lb"),
    (dict(lb=[0.0, np.nan], ub=[1.0, 1.0], maximize=0), "finite|NaN|nan"),
    (dict(lb=[0.0, 0.0, 0.0], ub=[1.0, 1.0, 1.0], maximize=0), "3"),
    (dict(lb=0.0, ub=1.0, maximize=7), "output index 7 does not exist"),
    (dict(lb=0.0, ub=1.0, maximize="y[4] - y[0]"), r"y\[4\].*does not exist"),
    (dict(lb=0.0, ub=1.0, maximize=0, constraints=["y[9] <= 1"]), r"y\[9\].*does not exist"),
    (dict(lb=0.0, ub=1.0, maximize=0, constraints=["y[0] < 1"]), "form"),
    (dict(lb=0.0, ub=1.0, maximize=0, minimize=1), "exactly one"),
])
def test_bad_problems_are_named(kwargs, message):
    net = random_network([2, 4, 2], seed=0)
    with pytest.raises(ReluoptError, match=message):
        Problem.build(net, **kwargs)


def test_expression_objective_and_constraints():
    net = random_network([2, 4, 2], seed=0)
    p = Problem.build(net, -1, 1, maximize="2*y[0] - y[1] + 0.5", constraints=["y[0] >= y[1]"])
    x = np.array([[0.1, 0.2]])
    y = net.forward(x)[0]
    assert p.objective_values(x)[0] == pytest.approx(2 * y[0] - y[1] + 0.5)
    assert p.is_feasible(x)[0] == (y[0] >= y[1] - 1e-6)
    with pytest.raises(ProblemError, match="least squares|linear"):
        from reluopt import LeastSquares
        Problem(net, p.domain, LeastSquares(t=np.zeros(2))).max_form()


def test_solve_cli_end_to_end(model_file, tmp_path, capsys):
    net, path = model_file
    out = tmp_path / "r.json"
    code = main(["solve", path, "--box=-1,1", "--maximize", "0", "--constraint", "y[1] <= 0.5",
                 "--method", "mip", "--time-limit", "30", "--json", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "status   optimal" in text and "y(x)" in text
    data = json.loads(out.read_text())
    x = np.array(data["x"])
    y = net.forward(x)
    assert data["value"] == pytest.approx(y[0]) and y[1] <= 0.5 + 1e-6
    assert data["status"] == "optimal" and data["stats"]["binaries"] >= 0
    # the same optimum from per-input bounds in a file, and from the Python API
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"lb": [-1, -1], "ub": [1, 1]}))
    assert main(["solve", path, "--box", str(box), "--maximize", "0", "--constraint", "y[1] <= 0.5",
                 "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["value"] == pytest.approx(data["value"], abs=1e-6)
    # the default method (auto: bab for 2 inputs) finds the same certified optimum
    assert main(["solve", path, "--box=-1,1", "--maximize", "0", "--constraint", "y[1] <= 0.5",
                 "--json", str(out), "--quiet"]) == 0
    auto = json.loads(out.read_text())
    assert auto["status"] == "optimal" and auto["value"] == pytest.approx(data["value"], abs=1e-4)


def test_negative_option_values_need_no_equals_sign(model_file, tmp_path):
    net, path = model_file
    out_a, out_b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["solve", path, "--box", "-1,1", "--minimize", "-y[0] + y[1]", "--json", str(out_a),
                 "--quiet"]) == 0
    assert main(["solve", path, "--box=-1,1", "--maximize", "y[0] - y[1]", "--json", str(out_b),
                 "--quiet"]) == 0
    a, b = json.loads(out_a.read_text()), json.loads(out_b.read_text())
    assert a["value"] == pytest.approx(-b["value"], abs=1e-6)
    y = net.forward(np.array(a["x"]))
    assert a["value"] == pytest.approx(-y[0] + y[1], abs=1e-9)


def test_infeasible_exit_code(model_file, capsys):
    _, path = model_file
    code = main(["solve", path, "--box=-1,1", "--maximize", "0", "--constraint", "y[0] >= 1e6", "--quiet"])
    assert code == 3
    assert "infeasible" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--box=-1,1,2", "--maximize", "0"], "expected 'LO,HI'"),
    (["--box=1:0,0:1", "--maximize", "0"], "lo 1.0 > hi 0.0"),
    (["--box=0:1,0:1,0:1", "--maximize", "0"], "3 intervals; the network has 2 inputs"),
    (["--box=-1,1", "--maximize", "5"], "output index 5 does not exist"),
    (["--box=-1,1", "--maximize", "0", "--method", "magic"], "unknown method 'magic'"),
    (["--box=-1,1", "--maximize", "0", "--constraint", "y0 << 3"], "constraint"),
    (["--box=-1,1", "--maximize", "0", "--time-limit", "-1"], "time limit must be positive"),
    (["--box=-1,1", "--maximize", "0", "--incumbent", "1,2,3"], "3 values; the network has 2 inputs"),
    (["--box=-1,1", "--maximize", "0", "-o", "frobnicate=1"], "does not take that option"),
])
def test_cli_bad_input_is_one_clear_line(model_file, argv, message, capsys):
    _, path = model_file
    assert main(["solve", path, *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all", b"\x08\x07\x12\x03abc"])
def test_corrupt_model_file_is_one_clear_line(tmp_path, content, capsys):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(content)
    assert main(["solve", str(bad), "--box=0,1", "--maximize", "0"]) == 2
    err = capsys.readouterr().err
    assert "broken.onnx" in err and "Traceback" not in err


def test_missing_model_file(capsys):
    assert main(["solve", "/nonexistent/net.onnx", "--box=0,1", "--maximize", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bounds_cli(model_file, tmp_path, capsys):
    net, path = model_file
    out = tmp_path / "b.json"
    assert main(["bounds", path, "--box=-1,1", "--method", "ibp,crown", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    xs = np.random.default_rng(0).uniform(-1, 1, (2000, 2))
    y = net.forward(xs)
    for m in ("ibp", "crown"):
        assert np.all(y >= np.array(data["methods"][m]["out_lower"]))
        assert np.all(y <= np.array(data["methods"][m]["out_upper"]))
    assert "stable" in capsys.readouterr().out
    assert main(["bounds", path, "--box=-1,1", "--method", "deeppoly"]) == 2


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    text = capsys.readouterr().out
    for option in ("--box", "--maximize", "--minimize", "--constraint", "--method", "--time-limit",
                   "--json", "--bounds", "--incumbent", "--polytope", "exit codes"):
        assert option in text


@pytest.mark.parametrize("command", [["solve", "--maximize", "0", "--time-limit", "10", "--quiet"], ["bounds"]])
def test_json_to_stdout_is_pure_json(model_file, command, capsys):
    _, path = model_file
    assert main([command[0], path, "--box=-1,1", *command[1:], "--json", "-"]) in (0, 1)
    captured = capsys.readouterr()
    json.loads(captured.out)            # nothing but the JSON document on stdout
    assert captured.err.strip()         # the human-readable report went to stderr


def test_solver_banner_is_kept_off_stdout(capfd):
    import os

    from reluopt.milp.backends.highs import _silenced_stdout_fd

    with _silenced_stdout_fd():
        os.write(1, b"Running HiGHS banner\n")
    os.write(1, b"after\n")
    assert capfd.readouterr().out == "after\n"


def test_solver_option_goes_to_the_mip_or_is_refused(model_file, tmp_path, capsys):
    pytest.importorskip("pyscipopt")
    net, path = model_file
    out = tmp_path / "s.json"
    assert main(["solve", path, "--box=-1,1", "--maximize", "0", "--solver", "scip", "--json", str(out),
                 "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["stats"]["exact"] == "mip" and data["status"] == "optimal"
    assert data["value"] == pytest.approx(net.forward(np.array(data["x"]))[0])
    assert main(["solve", path, "--box=-1,1", "--maximize", "0", "--solver", "scip", "--method", "bab"]) == 2
    assert "--solver chooses the MIP solver" in capsys.readouterr().err
