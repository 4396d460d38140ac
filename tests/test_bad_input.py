"""Bad input gives one line on stderr and exit code 2 (never a traceback), before any work.

Covers: broken native ``.npz`` files, ONNX weights whose shapes do not fit, ``-o`` values
of the wrong type, ``--seed`` < 0, output files (``--json``, ``--plot``, ...) that cannot be
written, and VNN-LIB files nested very deep or too big to read within the timeout.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import reluopt.tracker as tracker_mod
from conftest import random_network
from reluopt import Network
from reluopt.cli import main
from reluopt.errors import ParseError, ProblemError
from reluopt.io import save_npz
from reluopt.verification import VnnlibTimeout, load_vnnlib, parse_vnnlib


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(capsys, argv, *needles, code: int = 2) -> str:
    """Run the CLI; the exit code is ``code`` and stderr one line holding every needle."""
    rc, _, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert rc == code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def net_file(tmp_path):
    return save_npz(random_network([2, 4, 2], seed=3), tmp_path / "net.npz")


# ----------------------------------------------------------------------------- 1, 3: native .npz
def _tampered(tmp_path, src, name, **header_changes):
    with np.load(src) as data:
        arrays = dict(data.items())
    header = json.loads(str(arrays["header"]))
    for key, value in header_changes.items():
        if value is ...:
            del header[key]
        else:
            header[key] = value
    arrays["header"] = np.array(json.dumps(header))
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_empty_npz_file(tmp_path, capsys):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert_one_line_error(capsys, ["bounds", empty, "--box=0,1"], "empty.npz", "empty")


def test_npz_without_arrays_or_header(tmp_path, capsys):
    np.savez(tmp_path / "none.npz")
    assert_one_line_error(capsys, ["bounds", tmp_path / "none.npz", "--box=0,1"], "none.npz", "no arrays")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    assert_one_line_error(capsys, ["bounds", tmp_path / "other.npz", "--box=0,1"], "other.npz", "no header")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    assert_one_line_error(capsys, ["bounds", tmp_path / "single.npz", "--box=0,1"], "single.npz", ".npy")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 truncated")
    assert_one_line_error(capsys, ["bounds", tmp_path / "junk.npz", "--box=0,1"], "junk.npz", "not a readable")


@pytest.mark.parametrize("activations, needle", [
    (["relu"], "1 activations for 2 layers"),                       # too few
    (["relu", "identity", "relu"], "3 activations for 2 layers"),   # too many
    ([], "0 activations for 2 layers"),                              # none
    (..., "no 'activations'"),                                       # entry missing
    (["relu", 7], "list of activation names"),
])
def test_npz_header_activations_do_not_match_layers(tmp_path, capsys, net_file, activations, needle):
    bad = _tampered(tmp_path, net_file, "bad.npz", activations=activations)
    assert_one_line_error(capsys, ["bounds", bad, "--box=0,1"], "bad.npz", needle)


def test_npz_header_taus_and_layers(tmp_path, capsys, net_file):
    bad = _tampered(tmp_path, net_file, "taus.npz", taus=[None])
    assert_one_line_error(capsys, ["bounds", bad, "--box=0,1"], "taus.npz", "'taus'")
    bad = _tampered(tmp_path, net_file, "tau.npz", taus=["x", None])
    assert_one_line_error(capsys, ["bounds", bad, "--box=0,1"], "tau.npz", "layer 0", "tau")
    with np.load(net_file) as data:
        arrays = dict(data.items())
    arrays["W3"], arrays["b3"] = np.eye(2), np.zeros(2)         # a gap: no layer 2
    np.savez(tmp_path / "gap.npz", **arrays)
    assert_one_line_error(capsys, ["bounds", tmp_path / "gap.npz", "--box=0,1"], "gap.npz", "'W3'")


def test_valid_npz_still_loads(tmp_path, capsys, net_file):
    rc, out, err = run_cli(capsys, ["bounds", net_file, "--box=0,1"])
    assert rc == 0 and err == "" and "y[1] in" in out


# ----------------------------------------------------------------------------- 2: ONNX shapes
def _onnx_model(path, nodes, inits, d=3):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _node(op, inputs, output, name, **attrs):
    from onnx import helper

    return helper.make_node(op, inputs, [output], name=name, **attrs)


def _onnx_case(case):
    pytest.importorskip("onnx")
    W32, b2 = np.ones((3, 2)), np.ones(2)
    return {
        "gemm_W": ([_node("Gemm", ["x", "W", "b"], "y", "fc1")], {"W": np.ones((4, 2)), "b": b2},
                   ["fc1", "Gemm", "(4, 2)", "takes 4 inputs", "has 3"]),
        "gemm_WT": ([_node("Gemm", ["x", "W", "b"], "y", "fc1", transB=1)], {"W": np.ones((2, 4)), "b": b2},
                    ["fc1", "transB=1", "takes 4 inputs"]),
        "gemm_bias": ([_node("Gemm", ["x", "W", "b"], "y", "fc1")], {"W": W32, "b": np.ones(5)},
                      ["fc1", "bias 'b'", "(5,)", "expected 2 values"]),
        "matmul_W": ([_node("MatMul", ["x", "W"], "y", "mm")], {"W": np.ones((4, 2))},
                     ["mm", "MatMul", "(4, 2)", "takes 4 inputs", "has 3"]),
        "add_bias": ([_node("MatMul", ["x", "W"], "h", "mm"), _node("Add", ["h", "b"], "y", "add")],
                     {"W": W32, "b": np.ones(5)}, ["add", "Add", "(5,)", "does not broadcast", "(1, 2)"]),
        "mul_scale": ([_node("Mul", ["x", "c"], "y", "scale")], {"c": np.ones(4)},
                      ["scale", "Mul", "(4,)", "(1, 3)"]),
    }[case]


@pytest.mark.parametrize("case", ["gemm_W", "gemm_WT", "gemm_bias", "matmul_W", "add_bias", "mul_scale"])
def test_onnx_weights_that_do_not_fit(tmp_path, capsys, case):
    nodes, inits, needles = _onnx_case(case)
    path = _onnx_model(tmp_path / f"{case}.onnx", nodes, inits)
    assert_one_line_error(capsys, ["bounds", path, "--box=0,1"], f"{case}.onnx", *needles)


def test_onnx_valid_gemm_still_loads(tmp_path, capsys):
    pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(2, 3)), rng.normal(size=(1, 2))       # transB=1, bias (1, N)
    path = _onnx_model(tmp_path / "ok.onnx", [_node("Gemm", ["x", "W", "b"], "y", "fc1", transB=1)],
                       {"W": W, "b": b})
    from reluopt.io import load_model

    net = load_model(path)
    x = np.array([0.3, -0.2, 0.5])
    assert np.allclose(net.forward(x), W.astype(np.float32) @ x + b.astype(np.float32)[0], atol=1e-6)


# ----------------------------------------------------------------------------- 4: -o and --seed
@pytest.mark.parametrize("option, needle", [
    ("threads=abc", "threads must be a positive integer, got 'abc'"),
    ("threads=0", "threads must be a positive integer"),
    ("threads=2.5", "threads must be a positive integer"),
    ("starts=True", "starts must be a positive integer"),
    ("rel_gap=-1", "rel_gap must be a non-negative finite number"),
    ("abs_gap=nan", "abs_gap must be a non-negative finite number"),
    ("heuristic_fraction=2", "heuristic_fraction must be a finite number in [0, 1]"),
    ("rescale=3", "rescale must be True or False"),
    ("relax_solver=foo", "relax_solver must be one of ipm, simplex, got 'foo'"),
    ("heuristics=3", "heuristics must be a name, got 3"),
    ("seed=3", "set by --seed"),
    ("time_limit=3", "set by --time-limit"),
    ("threads", "expected KEY=VALUE"),
])
def test_option_values_of_the_wrong_type(capsys, net_file, option, needle):
    argv = ["solve", net_file, "--box=0,1", "--maximize", "0", "-q", "--method", "mip", "-o", option]
    assert_one_line_error(capsys, argv, "--option", needle)


def _record_calls(monkeypatch, cls, name: str) -> list:
    """Record every call of ``cls.name`` (still calling it)."""
    calls: list = []
    original = getattr(cls, name)

    def spy(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, spy)
    return calls


def test_unknown_option_fails_before_the_run(capsys, net_file, monkeypatch):
    runs = _record_calls(monkeypatch, tracker_mod.Anytime, "__init__")     # every method run starts one
    argv = ["solve", net_file, "--box=0,1", "--maximize", "0", "-q", "--time-limit", "30", "-o", "foo=1"]
    assert_one_line_error(capsys, argv, "does not take that option: 'foo'", "auto")
    assert runs == []                          # not after auto's heuristic phase
    argv = ["solve", net_file, "--box=0,1", "--maximize", "0", "-q", "--method", "ppga", "-o", "threads=2"]
    assert_one_line_error(capsys, argv, "method 'ppga' does not take that option: 'threads'")


@pytest.mark.parametrize("command", [
    ["solve", "{net}", "--box=0,1", "--maximize", "0", "-q", "--method", "ppga"],
    ["compare", "{net}", "--box=0,1", "--maximize", "0", "--methods", "sampling"],
    ["analyze", "{net}", "--box=0,1"],
    ["lipschitz", "{net}", "--box=0,1", "--output", "0", "-q"],
    ["verify", "{net}", "{prop}"],
])
def test_negative_seed(tmp_path, capsys, net_file, command):
    prop = tmp_path / "p.vnnlib"
    prop.write_text(_vnnlib(2, 2, "(assert (<= Y_0 Y_1))"))
    argv = [a.format(net=net_file, prop=prop) for a in command] + ["--seed=-1"]
    assert_one_line_error(capsys, argv, "--seed must be a non-negative integer, got -1")


def test_valid_options_still_run(tmp_path, capsys, net_file):
    out = tmp_path / "r.json"
    argv = ["solve", net_file, "--box=0,1", "--maximize", "0", "-q", "--method", "ppga", "--time-limit", "0.5",
            "--seed", "4", "-o", "starts=4", "-o", "lr=0.1", "-o", "max_iter=None", "--json", out]
    rc, _, err = run_cli(capsys, argv)
    assert rc in (0, 1), err
    assert json.loads(out.read_text())["x"] is not None


# ----------------------------------------------------------------------------- 5: output files
COMMANDS_WITH_OUTPUTS = [
    (["solve", "{net}", "--box=0,1", "--maximize", "0", "-q"], "--json"),
    (["bounds", "{net}", "--box=0,1"], "--json"),
    (["compare", "{net}", "--box=0,1", "--maximize", "0"], "--json"),
    (["compare", "{net}", "--box=0,1", "--maximize", "0"], "--plot"),
    (["analyze", "{net}", "--box=0,1"], "--json"),
    (["analyze", "{net}", "--box=0,1"], "--plot"),
    (["lipschitz", "{net}", "--box=0,1", "--output", "0", "-q"], "--json"),
    (["surf", "{net}", "--box=0,1", "--in-range", "1"], "--json"),
    (["verify", "{net}", "{prop}"], "--counterexample"),
    (["verify", "--instances", "{csv}"], "--results"),
]


@pytest.mark.parametrize("command, flag", COMMANDS_WITH_OUTPUTS)
@pytest.mark.parametrize("where", ["folder", "missing folder"])
def test_output_file_checked_before_the_run(tmp_path, capsys, net_file, command, flag, where, monkeypatch):
    prop = tmp_path / "p.vnnlib"
    prop.write_text(_vnnlib(2, 2, "(assert (<= Y_0 Y_1))"))
    csv = tmp_path / "instances.csv"
    csv.write_text(f"{net_file.name},{prop.name},5\n")
    target = tmp_path if where == "folder" else tmp_path / "no_such_dir" / "out.png"
    argv = [a.format(net=net_file, prop=prop, csv=csv) for a in command] + [flag, target]
    loaded = _record_calls(monkeypatch, Network, "__post_init__")      # every command loads a network
    line = assert_one_line_error(capsys, argv, flag, "folder")
    assert loaded == []                         # failed before the run, not after it
    assert ("does not exist" in line) == (where == "missing folder")
    assert not (tmp_path / "no_such_dir").exists()


def test_plot_with_an_unknown_image_type(tmp_path, capsys, net_file):
    argv = ["analyze", net_file, "--box=0,1", "--plot", tmp_path / "regions.xyz"]
    assert_one_line_error(capsys, argv, "--plot", "'.xyz'")


def test_json_to_a_good_file_and_to_stdout(tmp_path, capsys, net_file):
    rc, _, err = run_cli(capsys, ["bounds", net_file, "--box=0,1", "--json", tmp_path / "b.json"])
    assert rc == 0 and err == ""
    assert "crown" in json.loads((tmp_path / "b.json").read_text())["methods"]
    rc, out, _ = run_cli(capsys, ["bounds", net_file, "--box=0,1", "--json", "-"])
    assert rc == 0 and "crown" in json.loads(out)["methods"]


# ----------------------------------------------------------------------------- 6: VNN-LIB
def _vnnlib(n: int, m: int, body: str) -> str:
    head = "".join(f"(declare-const X_{i} Real)\n" for i in range(n))
    head += "".join(f"(declare-const Y_{j} Real)\n" for j in range(m))
    box = "".join(f"(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))\n" for i in range(n))
    return head + box + body + "\n"


def test_vnnlib_nested_200k_deep_parses():
    depth = 200_000
    text = _vnnlib(2, 2, "(assert " + "(and " * depth + "(<= Y_0 Y_1)" + ")" * depth + ")")
    prop = parse_vnnlib(text)
    (box,) = prop.boxes
    (dj,) = box.disjuncts
    assert np.allclose(dj.C, [[1.0, -1.0]]) and np.allclose(dj.e, [0.0])
    assert np.allclose(box.lb, -1) and np.allclose(box.ub, 1)


def test_vnnlib_deep_terms_and_or():
    depth = 20_000
    term = "(+ " * depth + "Y_0" + " 1)" * depth                 # Y_0 + depth
    ors = "(or " * depth + "(<= Y_1 3)" + ")" * depth
    prop = parse_vnnlib(_vnnlib(1, 2, f"(assert (and (<= {term} 0) {ors}))"))
    (dj,) = prop.boxes[0].disjuncts
    order = np.argsort(dj.e)
    assert np.allclose(dj.C[order], [[1.0, 0.0], [0.0, 1.0]]) and np.allclose(dj.e[order], [-depth, 3.0])


def test_vnnlib_deep_garbage_is_one_line(tmp_path, capsys, net_file):
    depth = 100_000
    prop = tmp_path / "deep.vnnlib"
    prop.write_text(_vnnlib(2, 2, "(assert " + "(" * depth + ")" * depth + ")"))
    assert_one_line_error(capsys, ["verify", net_file, prop], "deep.vnnlib", "line 9",
                          "expected a comparison")
    prop.write_text(_vnnlib(2, 2, "(assert " + "(and " * depth + "(<= Y_0 Y_1)"))
    assert_one_line_error(capsys, ["verify", net_file, prop], "deep.vnnlib", "never closed")


def _big_vnnlib(path, n_boxes: int) -> None:
    """One (or ...) of n_boxes boxes over 2 inputs: about 110 bytes a box."""
    rows = [f"  (and (>= X_0 {k * 1e-3:.4f}) (<= X_0 {0.5 + k * 1e-3:.4f}) (>= X_1 0) (<= X_1 1) (<= Y_0 Y_1))"
            for k in range(n_boxes)]
    path.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(declare-const Y_1 Real)\n(assert (or\n" + "\n".join(rows) + "\n))\n")


def test_vnnlib_time_limit_stops_a_big_file(tmp_path):
    big = tmp_path / "big.vnnlib"
    _big_vnnlib(big, 30_000)                           # 2.3 MB: seconds to parse in full
    assert big.stat().st_size > 2_000_000
    with pytest.raises(VnnlibTimeout, match=r"big\.vnnlib: the time limit of 0\.05 s ran out while parsing "
                                            r"\(at line \d+\)") as info:
        load_vnnlib(big, time_limit=0.05)
    # stopped part way (how soon after the limit: benchmarks/bench_speed_checks.py)
    assert int(re.search(r"at line (\d+)", str(info.value)).group(1)) < len(big.read_text().splitlines())
    assert isinstance(info.value, ParseError)
    with pytest.raises(ProblemError, match="time limit must be"):
        load_vnnlib(big, time_limit=-1)


def test_verify_timeout_while_parsing_is_unknown(tmp_path, capsys, net_file):
    """verify's convention: the timeout ran out with no answer -> 'unknown', exit 1, and one
    line on stderr saying why (the file itself may be fine, so it is not 'bad input')."""
    big = tmp_path / "big.vnnlib"
    _big_vnnlib(big, 30_000)
    ce = tmp_path / "ce.txt"
    rc, out, err = run_cli(capsys, ["verify", net_file, big, "--timeout", "0.05", "--counterexample", ce])
    assert rc == 1 and out.strip() == "unknown"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "time limit of 0.05 s ran out while parsing" in lines[0] and "big.vnnlib" in lines[0]
    assert ce.read_text() == "unknown\n"


def test_verify_instances_timeout_while_parsing(tmp_path, capsys, net_file):
    big = tmp_path / "big.vnnlib"
    _big_vnnlib(big, 30_000)
    csv = tmp_path / "instances.csv"
    csv.write_text(f"{net_file.name},{big.name},0.05\n")
    rc, out, err = run_cli(capsys, ["verify", "--instances", csv, "-q", "--results", tmp_path / "r.csv"])
    assert rc == 1 and "big: unknown" in out and "unknown 1" in out
    assert "ran out while parsing" in err
    assert "unknown" in (tmp_path / "r.csv").read_text()
