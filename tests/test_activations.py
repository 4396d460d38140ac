"""Every activation of ``reluopt.activations`` against its own definition: the relaxation holds
on a dense grid of [L, U], the MILP rows of one neuron admit exactly the graph, the phase
classification agrees with the pieces, and points, slopes and pieces agree with each other."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluopt import Network, activations
from reluopt.activations import ClippedReLU, Identity, LeakyReLU, ReLU
from reluopt.errors import ModelError
from reluopt.network import Layer

HIDDEN = [ReLU(), ClippedReLU(0.7), ClippedReLU(3.0), LeakyReLU(0.1), LeakyReLU(0.01), LeakyReLU(0.7)]
IDS = ["relu", "clipped-0.7", "clipped-3", "leaky-0.1", "leaky-0.01", "leaky-0.7"]
GRID = 401


def _bounds(data, lo: float = -5.0, hi: float = 5.0, n: int = 6):
    """``n`` random intervals L < U, some ending exactly on 0 or on a cap-like value."""
    pairs = []
    for _ in range(n):
        a = data.draw(st.one_of(st.floats(lo, hi), st.sampled_from([0.0, 0.7, 3.0, -1.0])))
        b = data.draw(st.one_of(st.floats(lo, hi), st.sampled_from([0.0, 0.7, 3.0, 1.0])))
        if abs(a - b) < 1e-3:
            b = a + 1e-3
        pairs.append((min(a, b), max(a, b)))
    L, U = (np.array(v) for v in zip(*pairs, strict=True))
    return L, U


def _grid(L: np.ndarray, U: np.ndarray) -> np.ndarray:
    """(GRID, n) points of every [L_i, U_i], ends and kinks included."""
    t = np.linspace(0.0, 1.0, GRID)[:, None]
    return L[None, :] + t * (U - L)[None, :]


def _tol(*arrays) -> float:
    return 1e-9 * (1.0 + max(float(np.max(np.abs(a))) for a in arrays))


# ----------------------------------------------------------------------------- relaxation
@pytest.mark.parametrize("act", HIDDEN, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_relaxation_contains_the_function_on_a_dense_grid(act, data):
    L, U = _bounds(data)
    G = _grid(L, U)
    F = act.forward(G)
    a_lo, b_lo, a_up, b_up = act.relaxation(L, U)
    tol = _tol(G, F)
    assert np.all(a_lo * G + b_lo <= F + tol)
    assert np.all(F <= a_up * G + b_up + tol)
    # any admissible lower slope (alpha-CROWN) is valid too
    free, s_lo, s_hi = act.lower_slope_range(L, U)
    assert np.all(s_lo[free] <= s_hi[free])
    for pick in (0.0, 1.0, data.draw(st.floats(0.0, 1.0))):
        alpha = s_lo + pick * (s_hi - s_lo)
        a2, b2, u2, c2 = act.relaxation(L, U, alpha)
        assert np.all(a2 * G + b2 <= F + tol)
        assert np.array_equal(u2, a_up) and np.array_equal(c2, b_up)   # alpha moves the lower line only
        assert np.all(b2[free] == 0.0) and np.allclose(a2[free], alpha[free])


@pytest.mark.parametrize("act", HIDDEN, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_interval_slopes_and_pieces_agree_with_the_function(act, data):
    L, U = _bounds(data)
    G = _grid(L, U)
    F = act.forward(G)
    lo, hi = act.interval(L, U)
    tol = _tol(G, F)
    assert np.all(F >= lo - tol) and np.all(F <= hi + tol)
    # the piece of each point's phase reproduces the function, and its interval holds the point
    ph = act.phase(G)
    slope, offset = act.piece(ph)
    assert np.allclose(slope * G + offset, F, atol=tol, rtol=0)
    p_lo, p_hi = act.phase_bounds(ph)
    assert np.all((G >= p_lo) & (G <= p_hi))
    assert np.array_equal(np.asarray(act.slope(G), dtype=np.float64), slope)
    assert set(np.unique(slope)) <= set(act.slope_values)
    # slope bounds over (L, U): every slope at a point strictly inside
    s_lo, s_hi = act.slope_bounds(L, U)
    inner = (G > L) & (G < U)
    assert np.all(np.where(inner, slope >= s_lo, True)) and np.all(np.where(inner, slope <= s_hi, True))


@pytest.mark.parametrize("act", HIDDEN, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_phase_classification_from_bounds(act, data):
    L, U = _bounds(data)
    G = _grid(L, U)
    F = act.forward(G)
    ph = act.classify(L, U)
    kinks = np.array(act.kinks)
    # stable classes are mutually exclusive; unstable = some kink strictly inside (L, U)
    assert not np.any(ph.inactive & ph.linear) and not np.any(ph.linear & ph.saturated)
    inside = np.any((L[:, None] < kinks[None, :]) & (U[:, None] > kinks[None, :]), axis=1)
    assert np.array_equal(~ph.stable, inside)
    assert np.array_equal(act.unstable(L, U), inside)
    assert np.array_equal(ph.lower | ph.upper | ph.both, inside)
    # a stable neuron is one linear piece on the whole interval: the piece of its class
    for mask, phase in ((ph.inactive, 0), (ph.linear, 1), (ph.saturated, 2)):
        if mask.any():
            slope, offset = act.piece(np.full(int(mask.sum()), phase, dtype=np.int8))
            assert np.allclose(slope * G[:, mask] + offset, F[:, mask], atol=_tol(G, F), rtol=0)
    # batched (B, n) bounds give the same answer row by row
    both = act.unstable(np.vstack([L, L]), np.vstack([U, U]))
    assert np.array_equal(both[0], inside) and np.array_equal(both[1], inside)


@pytest.mark.parametrize("act", HIDDEN, ids=IDS)
def test_step_to_kink_stops_exactly_at_the_next_kink(act):
    rng = np.random.default_rng(3)
    g = rng.uniform(-4, 4, size=(50, 8))
    dg = rng.normal(size=(50, 8))
    t = act.step_to_kink(g, dg)
    assert np.all(t >= 0)
    finite = np.isfinite(t)
    assert finite.any()
    kinks = np.array(act.kinks)
    # the step lands on a kink, and the phase is unchanged strictly before it
    landed = g + t * dg
    assert np.all(np.min(np.abs(landed[finite][:, None] - kinks[None, :]), axis=1) <= 1e-9 * (1 + np.abs(g[finite])))
    before = g + 0.999 * t * dg
    same = np.where(finite, act.phase(before) == act.phase(g), True)
    assert np.all(same | (t == 0))
    # no step: the direction never meets a kink
    far = g + 1e6 * dg
    assert np.all(np.where(~finite, act.phase(far) == act.phase(g), True))


# ----------------------------------------------------------------------------- MILP rows
def _admitted(act, L: float, U: float, g: float) -> list[tuple[float, float]]:
    """Intervals of ``h`` that the layer rows of one neuron with bounds [L, U] admit at ``g``,
    one per assignment of its binaries that the rows allow (empty: none)."""
    blk = act.milp(np.array([L]), np.array([U]))
    kinds = [k for k in (0, 1) if blk.binaries[k][0]]
    out = []
    for bits in itertools.product((0.0, 1.0), repeat=len(kinds)):
        z = dict(zip(kinds, bits, strict=True))
        lo, hi = (float(blk.h_lower[0]), float(blk.h_upper[0])) if blk.keep[0] else (0.0, 0.0)
        ok = True
        for rows in blk.rows:
            if not rows.mask[0]:
                continue
            def at(v):
                return float(np.broadcast_to(np.asarray(v, np.float64), (1,))[0])
            rest = -at(rows.g_coef) * g + sum(at(c) * z[k] for k, c in rows.z)
            r_lo, r_hi = at(rows.lo) - rest, at(rows.hi) - rest
            if rows.h_coef == 0:
                ok &= r_lo <= 1e-12 and r_hi >= -1e-12
            else:
                lo, hi = max(lo, r_lo / rows.h_coef), min(hi, r_hi / rows.h_coef)
        if ok and lo <= hi + 1e-9:
            out.append((lo, hi))
    return out


@pytest.mark.parametrize("act", HIDDEN, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_milp_rows_of_one_neuron_admit_exactly_the_graph(act, data):
    L, U = _bounds(data, n=1)
    L, U = float(L[0]), float(U[0])
    for g in np.linspace(L, U, 41):
        h = float(act.forward(np.array([g]))[0])
        admitted = _admitted(act, L, U, g)
        assert admitted, f"no (h, z) at g={g} on [{L}, {U}]"
        tol = 1e-9 * (1 + abs(L) + abs(U))
        for lo, hi in admitted:
            assert lo >= h - tol and hi <= h + tol, (g, h, admitted)


@pytest.mark.parametrize("act", HIDDEN, ids=IDS)
def test_milp_binaries_sit_on_the_kinks_inside_the_bounds(act):
    L = np.array([-2.0, -2.0, 0.1, 0.5, -3.0, 1.0, 4.0])
    U = np.array([-0.5, 0.3, 0.6, 5.0, 5.0, 2.0, 6.0])
    blk = act.milp(L, U)
    ph = blk.phases
    assert np.array_equal(blk.binaries[0], ph.z1) and np.array_equal(blk.binaries[1], ph.z2)
    for i, k in itertools.product(range(L.size), range(2)):
        kink_inside = k < len(act.kinks) and L[i] < act.kinks[k] < U[i]
        assert blk.binaries[k][i] == kink_inside


# ----------------------------------------------------------------------------- the network uses them
def test_network_layers_ask_their_activation():
    rng = np.random.default_rng(0)
    layers = (Layer(rng.normal(size=(6, 3)), rng.normal(size=6), "clipped_relu", 0.4),
              Layer(rng.normal(size=(5, 6)), rng.normal(size=5), "relu"),
              Layer(rng.normal(size=(2, 5)), rng.normal(size=2), "identity"))
    net = Network(layers)
    assert isinstance(net.layers[0].act, ClippedReLU) and net.layers[0].act.tau == 0.4
    assert isinstance(net.layers[1].act, ReLU) and isinstance(net.layers[2].act, Identity)
    assert activations.get(net.layers[0]) is net.layers[0].act
    X = rng.normal(size=(200, 3))
    h = X
    for layer in net.layers:
        g = h @ layer.W.T + layer.b
        h = layer.act.forward(g)
    assert np.allclose(net.forward(X), h)
    assert net.has_clipped


def test_registry_and_parameter_checks():
    assert set(activations.names()) >= {"relu", "clipped_relu", "identity"}
    assert "identity" not in activations.hidden_names()
    W, b = np.ones((2, 2)), np.zeros(2)
    with pytest.raises(ModelError, match="unknown activation 'tanh'"):
        Network((Layer(W, b, "tanh"), Layer(W, b, "identity")))
    with pytest.raises(ModelError, match="tau > 0"):
        Network((Layer(W, b, "clipped_relu", -1.0), Layer(W, b, "identity")))
    with pytest.raises(ModelError, match="hidden layers must be"):
        Network((Layer(W, b, "identity"), Layer(W, b, "identity")))
    with pytest.raises(ModelError, match="output layer must be affine"):
        Network((Layer(W, b, "relu"),))
    # a rescaled clipped layer keeps the same function: act'(s g) = s act(g)
    act = ClippedReLU(0.5)
    scaled = ClippedReLU(**act.scaled(4.0))
    g = np.linspace(-1, 1, 101)
    assert np.allclose(scaled.forward(4.0 * g), 4.0 * act.forward(g))
