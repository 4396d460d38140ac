"""verify(): sat/unsat against brute force on tiny nets (region enumeration + epigraph LPs),
counterexamples re-checked by onnxruntime, the CLI, and VNN-COMP instances."""

from __future__ import annotations

import csv
import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from bruteforce import cached_regions
from conftest import random_network
from reluopt.cli import main
from reluopt.verification import Disjunct, InputBox, Property, parse_vnnlib, verify

LB = np.array([-1.0, -1.0])
UB = np.array([1.0, 1.0])


def max_margin(net, lb, ub, C, e):
    """Exact ``max_x min_j (e_j - C_j y(x))`` over the box: the best epigraph LP over every
    full-dimensional linear region (independent of reluopt's bounds and solvers). The regions
    are enumerated once per net and box (``cached_regions``): the tests ask several margins of
    the same net."""
    best = -np.inf
    d = net.input_dim
    for pattern, _ in cached_regions(net, lb, ub):
        pre, (T, t) = net.region_affine(pattern)
        rows, rhs = [], []
        for (Al, cl), p in zip(pre, pattern, strict=True):
            sign = np.where(np.asarray(p) > 0, -1.0, 1.0)
            rows.append(np.hstack([sign[:, None] * Al, np.zeros((Al.shape[0], 1))]))
            rhs.append(-sign * cl)
        rows.append(np.hstack([C @ T, np.ones((C.shape[0], 1))]))   # t + C T x <= e - C t
        rhs.append(e - C @ t)
        cost = np.zeros(d + 1)
        cost[-1] = -1.0
        res = linprog(cost, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs),
                      bounds=[*zip(lb, ub, strict=True), (None, None)], method="highs")
        if res.status == 0:
            best = max(best, -res.fun)
    return best


def single(lb, ub, C, e) -> Property:
    C = np.atleast_2d(np.asarray(C, float))
    dj = Disjunct(C, np.asarray(e, float), np.zeros(C.shape[0], bool))
    return Property(lb.size, C.shape[1], (InputBox(lb, ub, (dj,)),))


def onnx_outputs(net, x, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from reluopt.io.export import save_onnx

    path = save_onnx(net, tmp_path / "net.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: np.atleast_2d(x).astype(np.float64)})[0][0]


def check_verdict(net, prop, verdict, truth, tmp_path=None):
    """The answer must agree with the truth; a sat witness must be real (also in onnxruntime)."""
    assert verdict.status in ("sat", "unsat", "unknown")
    assert verdict.status == ("sat" if truth >= 0 else "unsat"), (verdict, truth)
    if verdict.status == "sat":
        x = verdict.x
        assert prop.is_counterexample(x, net.forward(x))
        np.testing.assert_allclose(verdict.y, net.forward(x), rtol=0, atol=1e-12)
        if tmp_path is not None:
            y = onnx_outputs(net, x, tmp_path)
            assert prop.is_counterexample(x, y)


CASES = [  # (sizes, seed, C)
    ([2, 6, 6, 2], 0, [[1.0, -1.0]]),
    ([2, 8, 2], 1, [[1.0, -1.0], [-1.0, 0.0]]),
    ([2, 5, 5, 3], 2, [[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]),
]


@pytest.mark.parametrize("sizes,seed,C", CASES)
@pytest.mark.parametrize("delta", [-1e-3, 1e-3])
@pytest.mark.parametrize("exact", ["mip", "auto"])
def test_close_sat_and_unsat_match_brute_force(sizes, seed, C, delta, exact, tmp_path):
    """Shift the threshold so the true max margin is exactly ``delta``: +1e-3 is a
    counterexample in a sliver of the box, -1e-3 a property that barely holds."""
    net = random_network(sizes, seed=seed)
    C = np.array(C)
    m0 = max_margin(net, LB, UB, C, np.zeros(C.shape[0]))
    e = np.full(C.shape[0], delta - m0)
    truth = max_margin(net, LB, UB, C, e)
    assert truth == pytest.approx(delta, abs=1e-7)
    # a dense grid never beats the region enumeration (a check of the brute force itself)
    g = np.stack(np.meshgrid(np.linspace(-1, 1, 201), np.linspace(-1, 1, 201)), -1).reshape(-1, 2)
    assert np.max(np.min(e - net.forward(g) @ C.T, axis=1)) <= truth + 1e-9
    prop = single(LB, UB, C, e)
    verdict = verify(net, prop, timeout=30, exact=exact)
    check_verdict(net, prop, verdict, truth, tmp_path)
    # the same without the attack: the exact method (or CROWN's own point) must decide
    verdict = verify(net, prop, timeout=30, exact=exact, falsify=False)
    check_verdict(net, prop, verdict, truth, tmp_path)
    assert verdict.method in ("mip", "bab", "bab-split", "bab+bab-split", "crown-point", "crown")


def test_unknown_when_no_exact_method_never_wrong():
    net = random_network([2, 6, 6, 2], seed=0)
    C = np.array([[1.0, -1.0]])
    m0 = max_margin(net, LB, UB, C, np.zeros(1))
    prop = single(LB, UB, C, np.array([-m0 - 1e-3]))
    verdict = verify(net, prop, timeout=5, exact="none")
    assert verdict.status in ("unsat", "unknown")
    assert verdict.x is None


@pytest.mark.slow   # among the slowest tests (pytest --durations); still part of make test
@settings(deadline=None, max_examples=12)
@given(seed=st.integers(0, 10_000), shift=st.floats(-0.3, 0.3), two=st.booleans())
def test_random_properties_agree_with_brute_force(seed, shift, two):
    net = random_network([2, 5, 4, 2], seed=seed)
    C = np.array([[1.0, -1.0], [0.0, 1.0]]) if two else np.array([[-1.0, 0.0]])
    e = np.full(C.shape[0], shift)
    truth = max_margin(net, LB, UB, C, e)
    if abs(truth) < 1e-6:   # a tie at 0 is legitimate either way only with exact arithmetic
        return
    prop = single(LB, UB, C, e)
    check_verdict(net, prop, verify(net, prop, timeout=20, seed=seed), truth)


def test_disjunction_over_boxes_and_disjuncts(tmp_path):
    """Two boxes x two disjuncts: unsat only if all four pairs are; sat on the one that is."""
    net = random_network([2, 6, 6, 2], seed=5)
    left = (np.array([-1.0, -1.0]), np.array([0.0, 1.0]))
    right = (np.array([0.0, -1.0]), np.array([1.0, 1.0]))
    C1, C2 = np.array([[1.0, -1.0]]), np.array([[-1.0, 1.0], [0.0, -1.0]])
    # thresholds: every pair 0.01 short of its true max, except (right, C2) which is 0.01 over
    pairs = {}
    for bname, (lb, ub) in (("left", left), ("right", right)):
        for cname, C in (("C1", C1), ("C2", C2)):
            pairs[bname, cname] = max_margin(net, lb, ub, C, np.zeros(C.shape[0]))

    def prop_with(over: set):
        boxes = []
        for bname, (lb, ub) in (("left", left), ("right", right)):
            djs = []
            for cname, C in (("C1", C1), ("C2", C2)):
                s = 0.01 if (bname, cname) in over else -0.01
                djs.append(Disjunct(C, np.full(C.shape[0], s - pairs[bname, cname]),
                                    np.zeros(C.shape[0], bool)))
            boxes.append(InputBox(lb, ub, tuple(djs)))
        return Property(2, 2, tuple(boxes))

    unsat = verify(net, prop_with(set()), timeout=30)
    assert unsat.status == "unsat"
    prop = prop_with({("right", "C2")})
    sat = verify(net, prop, timeout=30)
    assert sat.status == "sat"
    assert 0.0 <= sat.x[0] <= 1.0
    assert prop.is_counterexample(sat.x, net.forward(sat.x))
    assert prop.is_counterexample(sat.x, onnx_outputs(net, sat.x, tmp_path))


def test_crown_fast_path_and_empty_conjunction():
    net = random_network([2, 6, 2], seed=3)
    lb, ub = LB, UB
    far = single(lb, ub, [[-1.0, 0.0]], [-1e6])          # y0 >= 1e6: impossible
    v = verify(net, far, timeout=10)
    assert v.status == "unsat" and v.method == "crown"
    anything = Property(2, 2, (InputBox(lb, ub, (Disjunct(np.zeros((0, 2)), np.zeros(0),
                                                          np.zeros(0, bool)),)),))
    v = verify(net, anything, timeout=10)
    assert v.status == "sat" and np.all(v.x >= lb) and np.all(v.x <= ub)


def test_timeout_is_validated():
    net = random_network([2, 4, 2], seed=0)
    from reluopt.errors import ProblemError

    with pytest.raises(ProblemError):
        verify(net, single(LB, UB, [[1.0, 0.0]], [0.0]), timeout=0)


# ----------------------------------------------------------------------------- CLI
def _write_case(tmp_path, net, text):
    from reluopt.io.export import save_onnx

    model = save_onnx(net, tmp_path / "net.onnx")
    prop = tmp_path / "prop.vnnlib"
    prop.write_text(text)
    return model, prop


PROP_TEXT = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1)) (assert (<= X_0 1))
(assert (>= X_1 -1)) (assert (<= X_1 1))
(assert (>= Y_0 {t}))
"""


def test_cli_sat_writes_vnncomp_witness(tmp_path, capsys):
    net = random_network([2, 6, 6, 2], seed=0)
    C = np.array([[-1.0, 0.0]])
    top = max_margin(net, LB, UB, C, np.zeros(1))     # max of y0 over the box
    model, prop = _write_case(tmp_path, net, PROP_TEXT.format(t=top - 0.05))
    ce = tmp_path / "ce.txt"
    code = main(["verify", str(model), str(prop), "--timeout", "20", "--counterexample", str(ce)])
    assert code == 0 and capsys.readouterr().out.strip() == "sat"
    text = ce.read_text()
    assert text.startswith("sat\n((X_0 ")
    values = {f"{k}_{i}": float(v) for k, i, v in re.findall(r"\((X|Y)_(\d+) ([^)\s]+)\)", text)}
    x = np.array([values["X_0"], values["X_1"]])
    y = onnx_outputs(net, x, tmp_path)
    assert y[0] >= top - 0.05
    np.testing.assert_allclose([values["Y_0"], values["Y_1"]], y, atol=1e-9)


def test_cli_unsat_and_bad_input(tmp_path, capsys):
    net = random_network([2, 6, 6, 2], seed=0)
    top = max_margin(net, LB, UB, np.array([[-1.0, 0.0]]), np.zeros(1))
    model, prop = _write_case(tmp_path, net, PROP_TEXT.format(t=top + 0.05))
    assert main(["verify", str(model), str(prop), "--timeout", "20"]) == 0
    assert capsys.readouterr().out.strip() == "unsat"
    bad = tmp_path / "bad.vnnlib"
    bad.write_text(PROP_TEXT.format(t=0).replace("(>= Y_0 0)", "(>= Y_0 (* Y_0 Y_1))"))
    assert main(["verify", str(model), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 7" in err and "non-linear" in err


def test_cli_instances_vnncomp_test(shared_data, tmp_path, capsys):
    results = tmp_path / "results.csv"
    code = main(["verify", "--instances", str(shared_data / "vnncomp_test" / "test_instances.csv"),
                 "--results", str(results), "--timeout-scale", "0.5"])
    out = capsys.readouterr().out
    assert code == 0 and "[5/5]" in out
    rows = list(csv.DictReader(results.open()))
    got = {(r["onnx"], r["vnnlib"]): r["result"] for r in rows}
    # test_sat / test_unsat are ACAS Xu-sized nets built to violate / satisfy property 3;
    # the three 1-input nets cannot reach their thresholds (checked by a grid in the
    # tiny-nets tests below)
    assert got == {("test_nano.onnx", "test_nano.vnnlib"): "unsat",
                   ("test_tiny.onnx", "test_tiny.vnnlib"): "unsat",
                   ("test_small.onnx", "test_small.vnnlib"): "unsat",
                   ("test_sat.onnx", "test_prop.vnnlib"): "sat",
                   ("test_unsat.onnx", "test_prop.vnnlib"): "unsat"}
    assert all(float(r["seconds"]) < 30 for r in rows)


def test_vnncomp_test_one_input_nets_by_grid(shared_data):
    from reluopt.io import load_model
    from reluopt.verification import load_vnnlib

    for name in ("test_nano", "test_tiny", "test_small"):
        net = load_model(shared_data / "vnncomp_test" / f"{name}.onnx")
        prop = load_vnnlib(shared_data / "vnncomp_test" / f"{name}.vnnlib").check(net)
        box = prop.boxes[0]
        x = np.linspace(box.lb[0], box.ub[0], 10001)[:, None]
        y = net.forward(x)
        assert not any(dj.holds(y).any() for dj in box.disjuncts)


def test_vnncomp_sat_witness_onnxruntime(shared_data):
    """The sat instance's witness passes the original ONNX file in onnxruntime (float32)."""
    ort = pytest.importorskip("onnxruntime")
    from reluopt.io import load_model
    from reluopt.verification import load_vnnlib

    path = shared_data / "vnncomp_test" / "test_sat.onnx"
    net = load_model(path)
    prop = load_vnnlib(shared_data / "vnncomp_test" / "test_prop.vnnlib")
    v = verify(net, prop, timeout=30)
    assert v.status == "sat"
    assert _ort_counterexample(ort, path, prop, v.x)


def _ort_counterexample(ort, path, prop, x) -> bool:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    dtype = np.float64 if "double" in inp.type else np.float32
    xin = np.asarray(x, dtype)      # the point as onnxruntime reads it must be in the box too
    y = sess.run(None, {inp.name: xin.reshape(shape)})[0].reshape(-1)
    return prop.is_counterexample(xin.astype(np.float64), y.astype(np.float64))


def test_parse_then_verify_end_to_end():
    net = random_network([2, 4, 2], seed=9)
    text = PROP_TEXT.format(t=1e6)
    prop = parse_vnnlib(text)
    assert verify(net, prop, timeout=10).status == "unsat"


@pytest.mark.parametrize("onnx,vnnlib", [
    ("ACASXU_run2a_1_1_batch_2000.onnx", "prop_3.vnnlib"),
    ("ACASXU_run2a_1_7_batch_2000.onnx", "prop_3.vnnlib"),
    ("ACASXU_run2a_2_1_batch_2000.onnx", "prop_2.vnnlib"),
])
def test_acasxu_expected_answers(shared_data, onnx, vnnlib):
    """Quick instances of acasxu/expected_subset.csv (the VNN-COMP 2021 tools' answers);
    a sat witness must also pass the original ONNX file in onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    from reluopt.io import load_model
    from reluopt.verification import load_vnnlib

    folder = shared_data / "acasxu"
    with (folder / "expected_subset.csv").open() as fh:
        expected = {(r["onnx"], r["vnnlib"]): r["expected"] for r in csv.DictReader(fh)}
    truth = {"holds": "unsat", "violated": "sat"}[expected[onnx, vnnlib]]
    net = load_model(folder / onnx)
    prop = load_vnnlib(folder / vnnlib)
    v = verify(net, prop, timeout=60)
    assert v.status == truth
    if truth == "sat":
        assert _ort_counterexample(ort, folder / onnx, prop, v.x)


def test_progress_reports_margin_and_bound():
    """The callback gets ProgressLine's keys: the best margin can never exceed the bound."""
    from reluopt.cli.common import format_progress

    net = random_network([2, 6, 6, 2], seed=0)
    C = np.array([[1.0, -1.0]])
    m0 = max_margin(net, LB, UB, C, np.zeros(1))
    seen: list[dict] = []
    v = verify(net, single(LB, UB, C, np.array([-m0 - 1e-3])), timeout=30, progress=seen.append,
               falsify=False)
    assert v.status == "unsat" and seen
    for info in seen:
        assert {"elapsed", "phase", "incumbent", "bound"} <= set(info)
        assert info["incumbent"] <= info["bound"] + 1e-9
        assert info["incumbent"] <= -1e-3 + 1e-9      # never a margin above the true max
        format_progress(info)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("delta", [-2e-3, 2e-3])
def test_shared_split_tree_matches_brute_force(seed, delta):
    """verify_split on a disjunction of two or three conjunctions: unsat exactly when every
    disjunct's true max margin is < 0; otherwise a counterexample reaches ``on_points``."""
    from reluopt.search.disjuncts import split_disjuncts

    rng = np.random.default_rng(seed)
    net = random_network([2, 5, 4, 3], seed=seed)
    djs, truths = [], []
    for k in range(2 + seed % 2):
        C = rng.normal(size=(1 + k % 2, 3))
        m0 = max_margin(net, LB, UB, C, np.zeros(C.shape[0]))
        shift = delta if k == 0 else -0.05          # only the first disjunct can be sat
        e = np.full(C.shape[0], shift - m0)
        truths.append(max_margin(net, LB, UB, C, e))
        djs.append(Disjunct(C, e, np.zeros(C.shape[0], bool)))
    assert max(truths) == pytest.approx(delta, abs=1e-7)
    found = []

    class Found(Exception):
        pass

    def on_points(X):
        Y = net.forward(np.clip(X, LB, UB))
        for dj in djs:
            found.extend(X[dj.holds(Y)])
        if found:
            raise Found

    try:
        out = split_disjuncts(net, LB, UB, djs, deadline=time.perf_counter() + 20, on_points=on_points)
    except Found:
        out = None
    if delta < 0:
        assert out is not None and out.status == "unsat" and not found
        assert np.all(out.upper < 0) and np.all(out.upper >= np.array(truths) - 1e-9)
    else:       # a sat region exists: never closed; its centre or a bound maximiser lands in it
        assert out is None or (out.status == "unknown" and out.upper[0] >= truths[0] - 1e-9)
        x = np.array(found[0]) if found else None
        assert x is not None and djs[0].holds(net.forward(x))[0]


def _fold_inputs(net, free, x_fixed):
    """The network restricted to the inputs ``free`` with the others fixed at ``x_fixed``."""
    from reluopt.network import Network

    fixed = np.setdiff1d(np.arange(net.input_dim), free)
    first = net.layers[0]
    weights = [(first.W[:, free], first.b + first.W[:, fixed] @ x_fixed)]
    weights += [(layer.W, layer.b) for layer in net.layers[1:]]
    return Network.from_weights(weights)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("delta", [-1e-3, 1e-3])
def test_many_input_mip_path_matches_brute_force(seed, delta):
    """More than BAB_MAX_DIM inputs (alpha-CROWN phase, cut-off MIP), but only two of them free:
    the truth is the brute force on the 2-input network with the others folded in."""
    net = random_network([18, 10, 8, 2], seed=seed)
    rng = np.random.default_rng(seed)
    free = np.array([3, 11])
    x0 = rng.uniform(-1, 1, 18)
    lb, ub = x0.copy(), x0.copy()
    lb[free], ub[free] = -1.0, 1.0
    small = _fold_inputs(net, free, x0[np.setdiff1d(np.arange(18), free)])
    C = np.array([[1.0, -1.0]])
    m0 = max_margin(small, LB, UB, C, np.zeros(1))
    e = np.array([delta - m0])
    truth = max_margin(small, LB, UB, C, e)
    assert truth == pytest.approx(delta, abs=1e-7)
    prop = single(lb, ub, C, e)
    verdict = verify(net, prop, timeout=30, exact="mip", falsify=False)
    check_verdict(net, prop, verdict, truth)
    assert "alpha-crown" in verdict.stats["phases"] or verdict.method in ("crown", "crown-point")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_crown_bounds_contain_samples_and_beat_crown(seed):
    from reluopt.bounds import crown_bounds, linear_output_bounds
    from reluopt.bounds.alpha import alpha_crown_bounds, optimise_rows

    net = random_network([20, 16, 12, 10, 3], seed=seed)
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, 20)
    lb, ub = x0 - 0.3, x0 + 0.3
    cb = crown_bounds(net, lb[None], ub[None])
    ab = alpha_crown_bounds(net, lb, ub, cb, iters=30)
    X = lb + rng.random((20000, 20)) * (ub - lb)
    X[:64] = np.where(rng.random((64, 20)) < 0.5, lb, ub)     # corners too
    h = X
    for k, layer in enumerate(net.hidden_layers):
        g = h @ layer.W.T + layer.b
        assert np.all(g >= ab.lower[k][0]) and np.all(g <= ab.upper[k][0])
        assert np.all(ab.lower[k][0] >= cb.lower[k][0]) and np.all(ab.upper[k][0] <= cb.upper[k][0])
        h = layer.activate(g)
    assert ab.n_unstable(net) <= cb.n_unstable(net)
    C = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]])
    lowers = [L[0] for L in ab.lower]
    uppers = [U[0] for U in ab.upper]
    up = optimise_rows(net, net.depth, C, lowers, uppers, lb, ub, iters=40)
    plain, _, _, _ = linear_output_bounds(net, lb, ub, C, ab)
    assert np.all(up <= plain[0] + 1e-9)
    assert np.all(net.forward(X) @ C.T <= up[None, :])


# ----------------------------------------------------------------------------- MILP back-ends
class _RecordingBackend:
    """A back-end behind ``milp.backends.Backend`` that records its calls and either passes them
    to HiGHS or answers every solve with ``output`` (a stub)."""

    name = "recording"
    extra = None

    def __init__(self, output=None):
        from reluopt.milp.backends.highs import HighsBackend

        self.inner = HighsBackend()
        self.output = output
        self.calls: list[dict] = []

    def build(self, model, **options):
        return self.inner.build(model, **options)

    def solve(self, model, **options):
        self.calls.append({"n_cols": model.n_cols, **options})
        return self.inner.solve(model, **options) if self.output is None else self.output


def _close_mip_case(delta):
    net = random_network([2, 6, 6, 2], seed=0)
    C = np.array([[1.0, -1.0]])
    m0 = max_margin(net, LB, UB, C, np.zeros(1))
    e = np.array([delta - m0])
    return net, single(LB, UB, C, e), max_margin(net, LB, UB, C, e)


@pytest.mark.parametrize("delta", [-1e-3, 1e-3])
def test_verify_solves_the_mip_through_the_backend_interface(monkeypatch, delta):
    """The exact MIP goes through ``get_backend(solver).solve`` with a time limit and the stop
    and progress callbacks: a back-end behind that interface decides the property."""
    import reluopt.verification.driver as driver

    stub = _RecordingBackend()
    asked: list[str] = []
    monkeypatch.setattr(driver, "get_backend", lambda name: asked.append(name) or stub)
    net, prop, truth = _close_mip_case(delta)
    verdict = verify(net, prop, timeout=30, exact="mip", falsify=False, solver="scip")
    check_verdict(net, prop, verdict, truth)
    assert asked == ["scip"]
    assert verdict.method == "mip" and stub.calls   # CROWN leaves this close case to the MIP
    for call in stub.calls:
        assert call["time_limit"] > 0 and callable(call["should_stop"]) and callable(call["on_progress"])


def test_a_failed_backend_run_proves_nothing(monkeypatch):
    """A run with status ``error`` never closes a pair, whatever bound it carries."""
    import reluopt.verification.driver as driver
    from reluopt.milp.backends import ERROR, SolveOutput

    stub = _RecordingBackend(SolveOutput(ERROR, None, None, -1.0, 0.0, message="stub failure"))
    monkeypatch.setattr(driver, "get_backend", lambda name: stub)
    net, prop, truth = _close_mip_case(-1e-3)
    assert truth < 0
    verdict = verify(net, prop, timeout=2, exact="mip", falsify=False)
    assert stub.calls
    assert verdict.status == "unknown" and verdict.stats["closed_by"] == {}


@pytest.mark.parametrize("delta", [-1e-3, 1e-3])
def test_verify_with_scip_matches_brute_force(delta):
    pytest.importorskip("pyscipopt")
    net, prop, truth = _close_mip_case(delta)
    verdict = verify(net, prop, timeout=60, exact="mip", falsify=False, solver="scip")
    check_verdict(net, prop, verdict, truth)


def test_solver_and_exact_are_validated(tmp_path, capsys):
    from reluopt.errors import ProblemError

    net, prop, _ = _close_mip_case(-1e-3)
    with pytest.raises(ProblemError, match="unknown MIP solver"):
        verify(net, prop, timeout=5, solver="cplex")
    with pytest.raises(ProblemError, match="unknown exact method"):
        verify(net, prop, timeout=5, exact="lp")
    with pytest.raises(SystemExit):
        main(["verify", "model.onnx", "prop.vnnlib", "--solver", "cplex"])
    assert "--solver" in capsys.readouterr().err


def test_old_verify_import_still_works():
    """``reluopt.verify.verify`` was the README's import before the ``verification`` package."""
    import reluopt.verification
    from reluopt.verify import Verdict
    from reluopt.verify import verify as old_verify

    assert old_verify is reluopt.verification.verify and Verdict is reluopt.verification.Verdict
