"""LeakyReLU ``max(g, alpha g)`` end to end: torch -> ONNX -> ``reluopt.load`` (forward checked
against onnxruntime and torch), bounds, MIP, branch and bound, heuristics, verification and
analysis against an independent brute force, round trips through every format, and clear
refusals (importers with a slope outside [0, 1), the Lipschitz bounds).

The brute force enumerates every full-dimensional linear region of the box (depth-first over
neurons with a strict-margin LP, as ``bruteforce.py`` does for ReLU, but with the leaky map
``slope = 1`` or ``alpha`` per neuron, so deeper layers see the leaky outputs) and maximises
the objective over each closed region by an LP. It reads only the layers' weights and alphas.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import reluopt
from reluopt import Network, Problem
from reluopt.errors import ModelError, UnsupportedError
from reluopt.network import Layer

torch = pytest.importorskip("torch")
nn = torch.nn

MARGIN = 1e-9
BOX = (-2.0 * np.ones(2), 2.0 * np.ones(2))


# ----------------------------------------------------------------------------- brute force
def _alpha(layer) -> float:
    return 0.0 if layer.activation == "relu" else float(layer.alpha)


def own_forward(net: Network, X: np.ndarray) -> np.ndarray:
    h = np.atleast_2d(X)
    for layer in net.layers[:-1]:
        g = h @ layer.W.T + layer.b
        h = np.maximum(g, _alpha(layer) * g)
    return h @ net.layers[-1].W.T + net.layers[-1].b


def _interior(rows, rhs, lb, ub):
    """Max margin ``s`` with ``a x + s ||a|| <= b`` (rows normalised) in the box: ``(x, s)``."""
    d = lb.size
    if not rows:
        return 0.5 * (lb + ub), 1.0
    A, b = np.array(rows), np.array(rhs)
    norms = np.linalg.norm(A, axis=1) + 1e-300
    A, b = A / norms[:, None], b / norms
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.hstack([A, np.ones((A.shape[0], 1))]), b_ub=b,
                  bounds=[*zip(lb, ub, strict=True), (None, 1.0)], method="highs")
    return (res.x[:d], res.x[-1]) if res.status == 0 else (None, -np.inf)


def leaky_regions(net: Network, lb, ub) -> list[tuple[list, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Every full-dimensional region: ``(pattern, rows, rhs, T, t)``, the region being
    ``rows x <= rhs`` (closed) and the output ``T x + t`` on it."""
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    d, out = lb.size, []

    def dfs(l, i, pattern, rows, rhs, M, m, A, c, witness):
        if l == net.depth:
            last = net.layers[-1]
            out.append(([p.copy() for p in pattern], np.array(rows).reshape(-1, d), np.array(rhs),
                        last.W @ M, last.W @ m + last.b))
            return
        layer = net.layers[l]
        if i == 0:
            A, c = layer.W @ M, layer.W @ m + layer.b
        for active in (1, 0):
            sign = -1.0 if active else 1.0            # active: -(A x + c) <= 0
            new_rows, new_rhs = rows + [sign * A[i]], rhs + [-sign * c[i]]
            v = sign * (A[i] @ witness + c[i])
            if v < -MARGIN * (np.linalg.norm(A[i]) + 1e-300):
                x = witness                            # the parent's point is strictly inside this side
            else:
                x, s = _interior(new_rows, new_rhs, lb, ub)
                if x is None or s <= MARGIN:
                    continue
            pattern[l][i] = active
            if i + 1 < layer.n_out:
                dfs(l, i + 1, pattern, new_rows, new_rhs, M, m, A, c, x)
            else:
                slope = np.where(pattern[l] == 1, 1.0, _alpha(layer))
                dfs(l + 1, 0, pattern, new_rows, new_rhs, A * slope[:, None], c * slope, None, None, x)

    x0, _ = _interior([], [], lb, ub)
    dfs(0, 0, [np.zeros(n, np.int8) for n in net.hidden_sizes], [], [], np.eye(d), np.zeros(d), None, None, x0)
    return out


def brute_max(regions, lb, ub, c, d0: float = 0.0) -> tuple[float, np.ndarray]:
    """``max c . y + d0`` over the box: the best LP over the closed regions."""
    best, arg = -np.inf, None
    for _, rows, rhs, T, t in regions:
        res = linprog(-(c @ T), A_ub=rows, b_ub=rhs, bounds=list(zip(lb, ub, strict=True)), method="highs")
        if res.status == 0 and -res.fun + c @ t + d0 > best:
            best, arg = -res.fun + c @ t + d0, res.x
    return best, arg


def leaky_network(sizes, alpha, seed) -> Network:
    rng = np.random.default_rng(seed)
    layers = [Layer(rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i]), 0.5 * rng.normal(size=sizes[i + 1]),
                    "leaky_relu" if i < len(sizes) - 2 else "identity", None,
                    alpha if i < len(sizes) - 2 else None)
              for i in range(len(sizes) - 1)]
    return Network(tuple(layers))


# ----------------------------------------------------------------------------- the torch model
def torch_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.Linear(8, 1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnx")
    model = torch_model()
    path = tmp_path_factory.mktemp("leaky") / "leaky.onnx"
    torch.onnx.export(model, torch.zeros(1, 2), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return model, path


@pytest.fixture(scope="module")
def leaky_net(exported):
    return reluopt.load(exported[1])


@pytest.fixture(scope="module")
def regions(leaky_net):
    return leaky_regions(leaky_net, *BOX)


def test_onnx_and_torch_imports_match_onnxruntime_and_torch(exported, leaky_net):
    ort = pytest.importorskip("onnxruntime")
    model, path = exported
    assert [layer.activation for layer in leaky_net.layers] == ["leaky_relu", "leaky_relu", "identity"]
    assert leaky_net.layers[0].alpha == pytest.approx(0.1, abs=1e-8)     # float32 in the ONNX file
    X = np.random.default_rng(0).uniform(-3, 3, size=(2000, 2))
    X = np.vstack([X, np.zeros((1, 2))])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {"x": X.astype(np.float32)})[0]
    with torch.no_grad():
        y_torch = model(torch.tensor(X, dtype=torch.float32)).numpy()
    y = leaky_net.forward(X)
    assert np.max(np.abs(y - y_ort)) < 1e-5 and np.max(np.abs(y - y_torch)) < 1e-5
    assert np.allclose(y, own_forward(leaky_net, X), rtol=0, atol=1e-12)
    # the in-memory torch module reads the same network (alpha exactly 0.1 there)
    direct = reluopt.load(model)
    assert direct.layers[1].activation == "leaky_relu" and direct.layers[1].alpha == 0.1
    assert np.max(np.abs(direct.forward(X) - y_torch)) < 1e-5
    with torch.no_grad():   # and a float64 copy of the module agrees to round-off
        y64 = model.double()(torch.tensor(X)).numpy()
        model.float()
    assert np.max(np.abs(direct.forward(X) - y64)) < 1e-12


@pytest.mark.parametrize("sense", ["maximize", "minimize"])
@pytest.mark.parametrize("method", ["bab", "mip"])
def test_bab_and_mip_reach_the_brute_force_optimum(leaky_net, regions, sense, method):
    lb, ub = BOX
    sign = 1.0 if sense == "maximize" else -1.0
    truth, _ = brute_max(regions, lb, ub, np.array([sign]))
    truth *= sign
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 301), np.linspace(-2, 2, 301)), -1).reshape(-1, 2)
    values = own_forward(leaky_net, grid)[:, 0]                  # the grid never beats the truth
    assert values.max() <= truth + 1e-9 if sense == "maximize" else values.min() >= truth - 1e-9
    res = reluopt.solve(Problem.build(leaky_net, lb=lb, ub=ub, **{sense: 0}), method=method, time_limit=60,
                        abs_gap=1e-8, rel_gap=1e-8)
    assert res.status == "optimal", res
    assert res.value == pytest.approx(truth, abs=1e-6 * (1 + abs(truth)))
    assert res.value == pytest.approx(float(own_forward(leaky_net, res.x)[0, 0]), abs=1e-12)
    # a true bound, and a tight one (the MIP widens the solver's dual bound by its tolerances)
    assert sign * res.bound >= sign * truth - 1e-9
    assert abs(res.bound - truth) <= 1e-5 * (1 + abs(truth))


@pytest.mark.parametrize("seed,alpha", [(0, 0.01), (1, 0.2), (2, 0.5), (3, 0.9)])
def test_random_leaky_networks_against_brute_force(seed, alpha):
    """2-6-6-2 nets, max of y0 - y1 on a box off the origin and with an input constraint."""
    net = leaky_network([2, 6, 6, 2], alpha, seed)
    lb, ub = np.array([-1.0, -0.5]), np.array([0.7, 1.5])
    c = np.array([1.0, -1.0])
    truth, _ = brute_max(leaky_regions(net, lb, ub), lb, ub, c)
    problem = Problem.build(net, lb=lb, ub=ub, maximize="y[0] - y[1]")
    for method in ("bab", "mip"):
        res = reluopt.solve(problem, method=method, time_limit=60, abs_gap=1e-8, rel_gap=1e-8)
        assert res.status == "optimal" and abs(res.value - truth) <= 1e-6 * (1 + abs(truth)), (method, res, truth)
        assert truth - 1e-9 <= res.bound <= truth + 1e-5 * (1 + abs(truth))
    # the heuristics return real points, never better than the truth (ppga-lr and walk run to
    # their time limit here: 0.3 s is hundreds of steps on a 2-6-6-2 net)
    for method in ("sampling", "ppga-lr", "walk"):
        res = reluopt.solve(problem, method=method, time_limit=0.3, seed=0)
        assert res.x is not None and res.value <= truth + 1e-9, (method, res)
        assert res.value == pytest.approx(float(own_forward(net, res.x)[0] @ c), abs=1e-12)


def test_heuristics_and_auto_on_the_torch_model(leaky_net, regions):
    lb, ub = BOX
    truth, _ = brute_max(regions, lb, ub, np.array([1.0]))
    problem = Problem.build(leaky_net, lb=lb, ub=ub, maximize=0)
    for method in ("sampling", "ppga-lr", "walk"):
        res = reluopt.solve(problem, method=method, time_limit=1.5, seed=1)
        assert res.value <= truth + 1e-9 and res.value >= truth - 0.05, (method, res.value, truth)
    res = reluopt.solve(problem, method="auto", time_limit=60)
    assert res.status == "optimal" and abs(res.value - truth) <= 1e-6


def test_bounds_mip_model_and_gradients_are_sound(leaky_net):
    from reluopt.bounds import crown_bounds, interval_bounds
    from reluopt.bounds.alpha import alpha_crown_bounds
    from reluopt.bounds.obbt import obbt_bounds
    from reluopt.milp.formulation import build_problem_model

    net = leaky_net
    lb, ub = np.array([-1.0, -0.3]), np.array([0.5, 1.2])
    X = np.vstack([np.random.default_rng(5).uniform(lb, ub, size=(3000, 2)), [lb, ub, [lb[0], ub[1]]]])
    pre = net.preactivations(X)
    ibp = interval_bounds(net, lb, ub)
    crown = crown_bounds(net, lb, ub)
    alpha = alpha_crown_bounds(net, lb, ub, crown)
    obbt = obbt_bounds(net, lb, ub)
    for b in (ibp, crown, alpha, obbt):
        for l, g in enumerate(pre):
            assert np.all(g >= b.lower[l][0] - 1e-12) and np.all(g <= b.upper[l][0] + 1e-12), (b.method, l)
    for l in range(net.depth):   # each method tightens the one before
        assert np.all(crown.upper[l] <= ibp.upper[l] + 1e-12) and np.all(alpha.upper[l] <= crown.upper[l] + 1e-12)
    assert sum(s["unstable"] for s in crown.stability(net)) > 0
    # every input's forward pass is a feasible point of the MIP (stable inactive neurons: h = alpha g)
    model = build_problem_model(Problem.build(net, lb=lb, ub=ub, maximize=0), crown)
    assert all(np.all(hc >= 0) for hc in model.h_cols)
    for x in X[::50]:
        v = model.point_to_columns(x)
        Av = model.A @ v
        assert np.all(Av >= model.row_lower - 1e-9) and np.all(Av <= model.row_upper + 1e-9)
        assert np.all(v >= model.col_lower - 1e-9) and np.all(v <= model.col_upper + 1e-9)
    # the region's Jacobian is the gradient; finite differences agree away from kinks
    x = np.array([0.1, 0.2])
    grad = net.gradient(x, np.array([1.0]))
    fd = [(own_forward(net, x + h)[0, 0] - own_forward(net, x - h)[0, 0]) / 2e-7 for h in 1e-7 * np.eye(2)]
    assert np.allclose(grad, fd, atol=1e-5)
    assert np.allclose(net.jacobian(x)[0], grad)
    pattern = [p[0] for p in net.phase_pattern(x[None])]
    _, (T, t) = net.region_affine(pattern)
    assert np.allclose(T @ x + t, net.forward(x))


def test_regions_and_verification_agree_with_the_enumeration(leaky_net, regions):
    from reluopt.analysis.regions import count_regions_exact
    from reluopt.verification import Disjunct, InputBox, Property, verify

    lb, ub = BOX
    count = count_regions_exact(leaky_net, lb, ub)
    assert count.exact and count.stats["distinct_patterns"] == len(regions)
    truth, _ = brute_max(regions, lb, ub, np.array([1.0]))
    for shift, status in ((-1e-3, "sat"), (1e-3, "unsat")):
        # counterexample: y0 >= truth + shift, i.e. -y0 <= -(truth + shift)
        dj = Disjunct(np.array([[-1.0]]), np.array([-(truth + shift)]), np.zeros(1, bool))
        prop = Property(2, 1, (InputBox(lb, ub, (dj,)),))
        verdict = verify(leaky_net, prop, timeout=30, falsify=False)
        assert verdict.status == status, (shift, verdict)
        if status == "sat":
            assert prop.is_counterexample(verdict.x, leaky_net.forward(verdict.x))


def test_round_trips_through_every_format(tmp_path):
    from reluopt.io.export import save_onnx
    from reluopt.io.native import load_npz, save_npz
    from reluopt.io.onnx import load_onnx
    from reluopt.io.torch import from_torch, to_torch

    net = leaky_network([3, 5, 4, 2], 0.25, 7)
    X = np.random.default_rng(1).normal(size=(500, 3))
    back = load_npz(save_npz(net, tmp_path / "net.npz"))
    assert [(layer.activation, layer.alpha) for layer in back.layers] == \
        [(layer.activation, layer.alpha) for layer in net.layers]
    assert np.array_equal(back.forward(X), net.forward(X))
    onnx_back = load_onnx(save_onnx(net, tmp_path / "net.onnx"))
    assert onnx_back.layers[0].activation == "leaky_relu"
    assert np.allclose(onnx_back.forward(X), net.forward(X), rtol=0, atol=1e-7)   # alpha is float32 in ONNX
    mod = to_torch(net, dtype=torch.float64)
    assert isinstance(mod[1], nn.LeakyReLU) and mod[1].negative_slope == 0.25
    with torch.no_grad():
        assert np.allclose(mod(torch.tensor(X)).numpy(), net.forward(X), rtol=0, atol=1e-12)
    assert np.array_equal(from_torch(mod).forward(X), net.forward(X))
    # TorchScript archives of a LeakyReLU Sequential load too
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(mod), str(path))
    assert np.allclose(reluopt.load(path).forward(X), net.forward(X), rtol=0, atol=1e-12)


def test_slopes_outside_the_leaky_range_are_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from reluopt.io.onnx import load_onnx

    W, b = np.ones((2, 2)), np.zeros(2)
    for alpha in (None, 0.0, 1.0, -0.1, float("nan"), True):
        with pytest.raises(ModelError, match="leaky_relu needs a negative slope 0 < alpha < 1"):
            Network((Layer(W, b, "leaky_relu", None, alpha), Layer(W, b, "identity")))
    # torch: a slope of 0 is a ReLU, a slope >= 1 (or < 0) is not max(g, slope g)
    as_relu = reluopt.load(nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.0), nn.Linear(3, 1)))
    assert as_relu.layers[0].activation == "relu"
    with pytest.raises(UnsupportedError, match="negative_slope=1.5"):
        reluopt.load(nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(1.5), nn.Linear(3, 1)))

    def onnx_file(alpha, name):
        node = helper.make_node("LeakyRelu", ["g"], ["h"], **({} if alpha is None else {"alpha": alpha}))
        graph = helper.make_graph(
            [helper.make_node("Gemm", ["x", "W", "b"], ["g"], transB=1), node,
             helper.make_node("Gemm", ["h", "W2", "b2"], ["y"], transB=1)], "g",
            [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 2])],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 1])],
            initializer=[numpy_helper.from_array(np.ones((3, 2)), "W"), numpy_helper.from_array(np.zeros(3), "b"),
                         numpy_helper.from_array(np.ones((1, 3)), "W2"), numpy_helper.from_array(np.zeros(1), "b2")])
        path = tmp_path / name
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
        return path

    default = load_onnx(onnx_file(None, "default.onnx"))        # ONNX's default alpha is 0.01
    assert default.layers[0].activation == "leaky_relu" and default.layers[0].alpha == pytest.approx(0.01)
    assert load_onnx(onnx_file(0.0, "zero.onnx")).layers[0].activation == "relu"
    with pytest.raises(UnsupportedError, match="LeakyRelu with alpha=2"):
        load_onnx(onnx_file(2.0, "two.onnx"))


def test_lipschitz_refuses_leaky_relu_clearly(leaky_net):
    with pytest.raises(UnsupportedError, match="slopes 0 or 1.*leaky_relu"):
        reluopt.lipschitz(leaky_net, box=BOX, norm="inf", output=0)
