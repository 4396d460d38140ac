"""Linear-region counts against independent truths: LP enumeration of patterns (tests/bruteforce),
a 1-D breakpoint sweep, and dense grids (a lower bound, and containment of patterns)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bruteforce import enumerate_regions
from conftest import random_network
from reluopt import Network, ProblemError, UnsupportedError
from reluopt.analysis.regions import (
    chao1,
    chapman,
    count_regions,
    count_regions_exact,
    count_regions_sampled,
    pattern_keys,
    plot_regions,
)


def clipped(net: Network, tau: float) -> Network:
    return Network.from_weights([(l.W, l.b) for l in net.layers],
                                ["clipped_relu"] * net.depth + ["identity"], [tau] * net.depth + [None])


def sweep_1d(net: Network, lo: float, hi: float) -> int:
    """Independent 1-D count: layer by layer, a neuron's pre-activation is linear between the
    breakpoints found so far, so its crossings of 0 (and tau) come from linear interpolation
    of forward-pass values at those knots. Regions = intervals between the breakpoints."""
    knots = np.array([lo, hi])
    for l, layer in enumerate(net.hidden_layers):
        g = net.preactivations(knots[:, None])[l]                       # (k, n)
        levels = [0.0, layer.tau] if layer.activation == "clipped_relu" else [0.0]
        new = []
        for level in levels:
            s = g - level
            a, b = s[:-1], s[1:]
            i, j = np.nonzero(((a < 0) & (b > 0)) | ((a > 0) & (b < 0)))
            t = a[i, j] / (a[i, j] - b[i, j])
            new.append(knots[i] + t * (knots[i + 1] - knots[i]))
        knots = np.unique(np.concatenate([knots, *new]))
    # merge numerically coincident breakpoints
    gaps = np.diff(knots) > 1e-12 * (hi - lo)
    return int(np.sum(gaps))


@pytest.mark.parametrize("seed", range(5))
def test_exact_2d_matches_lp_enumeration(seed):
    net = random_network([2, 5, 4, 1], seed=seed)
    lb, ub = np.array([-2.0, -1.5]), np.array([1.5, 2.0])
    rc = count_regions_exact(net, lb, ub)
    truth = enumerate_regions(net, lb, ub)
    assert rc.exact and rc.count == len(truth)
    assert {ph.tobytes() for _, ph in rc.cells} == {
        np.concatenate(p).astype(np.int8).tobytes() for p, _ in truth}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tau", [None, 0.7])
def test_exact_1d_matches_breakpoint_sweep(seed, tau):
    net = random_network([1, 8, 6, 1], seed=seed, scale=2.0)
    if tau is not None:
        net = clipped(net, tau)
    rc = count_regions_exact(net, [-3.0], [2.0])
    assert rc.count == sweep_1d(net, -3.0, 2.0)
    assert rc.count > 3  # the test has teeth: several regions


def _unique_rows(P: np.ndarray) -> np.ndarray:
    """``np.unique(P, axis=0)`` for small non-negative integer rows, through one integer key per
    row (the same rows; ``axis=0`` takes seconds on a 490 000-point grid)."""
    base = int(P.max(initial=0)) + 1
    assert P.min(initial=0) >= 0 and base ** P.shape[1] < 2**62
    keys = P.astype(np.int64) @ (base ** np.arange(P.shape[1], dtype=np.int64))
    _, first = np.unique(keys, return_index=True)
    return P[first]


@pytest.mark.slow   # among the slowest tests (pytest --durations); still part of make test
@pytest.mark.parametrize("tau", [None, 0.5])
def test_exact_2d_against_dense_grid(tau):
    net = random_network([2, 12, 10, 1], seed=7)
    if tau is not None:
        net = clipped(net, tau)
    lb, ub = np.array([-1.0, -1.0]), np.array([1.0, 2.0])
    rc = count_regions_exact(net, lb, ub)
    # the cells tile the box
    from reluopt.analysis.regions import _measure

    assert sum(_measure(P) for P, _ in rc.cells) == pytest.approx(6.0, rel=1e-9)
    # every cell's centroid has the cell's pattern
    cents = np.array([P.mean(axis=0) for P, _ in rc.cells])
    phases = np.concatenate(net.phase_pattern(cents), axis=1)
    assert np.array_equal(phases, np.array([ph for _, ph in rc.cells]))
    # a dense grid sees only patterns of the enumeration, and almost all of them
    g = np.linspace(0, 1, 700)
    xx, yy = np.meshgrid(lb[0] + 2.0 * g, lb[1] + 3.0 * g)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    grid = {r.tobytes() for r in _unique_rows(np.concatenate(net.phase_pattern(pts), axis=1).astype(np.int8))}
    exact = {ph.astype(np.int8).tobytes() for _, ph in rc.cells}
    assert grid <= exact
    assert len(grid) >= 0.9 * len(exact)
    assert rc.count > 20


def test_domain_constraints_cut_the_box():
    net = random_network([2, 6, 6, 1], seed=1)
    full = count_regions_exact(net, [-1, -1], [1, 1])
    half = count_regions_exact(net, [-1, -1], [1, 1], A=[[1.0, 1.0]], b=[0.0])
    assert 0 < half.count < full.count
    for P, _ in half.cells:
        assert np.all(P.sum(axis=1) <= 1e-9)


def test_sampled_counts_and_estimators():
    net = random_network([2, 10, 10, 1], seed=2)
    exact = count_regions_exact(net, [-1, -1], [1, 1]).count
    s1 = count_regions_sampled(net, [-1, -1], [1, 1], samples=5000, seed=3)
    s2 = count_regions_sampled(net, [-1, -1], [1, 1], samples=5000, seed=3)
    assert s1.to_dict() == s2.to_dict()
    assert not s1.exact and s1.count <= exact
    assert s1.estimate >= s1.count
    # estimator formulas on a hand-made sample
    counts = np.array([1, 1, 1, 2, 5])
    assert chao1(counts, 10) == pytest.approx(5 + 0.9 * 3 * 2 / (2 * 2))
    a = np.array([b"a", b"b", b"c"])
    b = np.array([b"b", b"c", b"d", b"e"])
    assert chapman(a, b) == pytest.approx(4 * 5 / 3 - 1)


def test_sampled_works_in_higher_dimension_and_auto_mode():
    net = random_network([5, 8, 8, 2], seed=0)
    rc = count_regions(net, -np.ones(5), np.ones(5), samples=3000)
    assert rc.method == "sampled" and rc.count >= 2
    assert len(set(pattern_keys(net, np.zeros((3, 5))).tolist())) == 1
    with pytest.raises(UnsupportedError, match="dimension"):
        count_regions_exact(net, -np.ones(5), np.ones(5))
    small = random_network([2, 4, 1], seed=0)
    assert count_regions(small, [-1, -1], [1, 1]).exact


def test_errors_are_clear():
    net = random_network([2, 30, 30, 1], seed=0)
    with pytest.raises(ProblemError, match="more than 10 linear regions"):
        count_regions_exact(net, [-1, -1], [1, 1], max_regions=10)
    assert count_regions(net, [-1, -1], [1, 1], max_regions=10, samples=500).method == "sampled"
    with pytest.raises(ProblemError, match="2 inputs"):
        count_regions_exact(net, [-1], [1])
    with pytest.raises(ProblemError, match="empty"):
        count_regions_exact(net, [1, -1], [0, 1])
    with pytest.raises(ProblemError, match="bounded"):
        count_regions_sampled(net, [-np.inf, 0], [1, 1])
    with pytest.raises(ProblemError, match="mode"):
        count_regions(net, [-1, -1], [1, 1], mode="guess")


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    net = random_network([2, 8, 8, 1], seed=0)
    path = plot_regions(net, [-1, -1], [1, 1], tmp_path / "r.png")
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert len(np.unique(img.reshape(-1, img.shape[2]), axis=0)) > 10  # many colours


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), k1=st.integers(1, 5), k2=st.integers(1, 4),
       lo=st.floats(-2, 0), width=st.floats(0.2, 3))
def test_exact_matches_lp_enumeration_property(seed, k1, k2, lo, width):
    net = random_network([2, k1, k2, 1], seed=seed, scale=2.0)
    lb, ub = np.array([lo, lo - 0.3]), np.array([lo + width, lo + 0.5 * width])
    assert count_regions_exact(net, lb, ub).count == len(enumerate_regions(net, lb, ub))
