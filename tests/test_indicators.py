"""Tractability indicators: stable fractions and big-M statistics per bound method."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import random_network
from reluopt import Network, ProblemError
from reluopt.analysis.indicators import (
    analyze_network,
    bigm_statistics,
    bound_indicators,
    format_report,
)
from reluopt.bounds import crown_bounds, interval_bounds


def test_bigm_statistics_match_a_manual_count():
    net = random_network([3, 10, 8, 2], seed=4)
    lb, ub = -np.ones(3), np.ones(3)
    b = interval_bounds(net, lb, ub)
    rows = bigm_statistics(net, b)
    for l, row in enumerate(rows):
        L, U = b.lower[l][0], b.upper[l][0]
        unstable = (L < 0) & (U > 0)
        assert row["unstable"] == unstable.sum()
        assert row["stable"] == (~unstable).sum()
        assert row["sum_range"] == pytest.approx(np.sum(U - L))
        assert row["sum_range_unstable"] == pytest.approx(np.sum((U - L)[unstable]))
        M = np.maximum(U, -L)[unstable]
        assert row["max_bigM"] == pytest.approx(M.max())
        assert row["median_bigM"] == pytest.approx(np.median(M))
    ind = bound_indicators(net, lb, ub, "ibp")
    assert ind["stable_fraction"] == pytest.approx(b.stable_fraction(net))


def test_crown_is_at_least_as_stable_and_stable_means_stable():
    rng = np.random.default_rng(0)
    for seed in range(3):
        net = random_network([4, 16, 16, 16, 1], seed=seed)
        lb, ub = -0.5 * np.ones(4), 0.5 * np.ones(4)
        ibp = bound_indicators(net, lb, ub, "ibp")
        crown = bound_indicators(net, lb, ub, "crown")
        assert crown["stable"] >= ibp["stable"]
        assert crown["sum_range"] <= ibp["sum_range"] + 1e-9
        # every neuron called stable keeps its sign on samples of the box
        b = crown_bounds(net, lb, ub)
        pre = net.preactivations(lb + (ub - lb) * rng.random((2000, 4)))
        for l, g in enumerate(pre):
            L, U = b.lower[l][0], b.upper[l][0]
            assert np.all(g[:, U <= 0] <= 0) and np.all(g[:, L >= 0] >= 0)


def test_clipped_network_counts_saturated_neurons():
    net = random_network([2, 12, 1], seed=1, scale=3.0)
    cnet = Network.from_weights([(l.W, l.b) for l in net.layers], ["clipped_relu", "identity"], [0.5, None])
    rows = bigm_statistics(cnet, interval_bounds(cnet, [0.5, 0.5], [0.6, 0.6]))
    assert rows[0]["saturated"] > 0
    assert rows[0]["stable"] == rows[0]["inactive"] + rows[0]["active"] + rows[0]["saturated"]


def test_analyze_network_report_is_json_and_formatted():
    net = random_network([2, 8, 8, 1], seed=2)
    report, rc = analyze_network(net, [-1, -1], [1, 1], bounds=("ibp", "crown", "lp-obbt"))
    json.dumps(report)
    assert report["regions"]["exact"] and report["regions"]["count"] == rc.count
    assert set(report["bounds"]) >= {"ibp", "crown"}
    assert report["bounds"]["lp-obbt"]["stable"] >= report["bounds"]["crown"]["stable"]
    assert report["bounds"]["lp-obbt"]["sum_range"] <= report["bounds"]["crown"]["sum_range"] * (1 + 1e-9)
    text = format_report(report)
    assert "crown" in text and f"{rc.count}" in text
    report5, rc5 = analyze_network(random_network([5, 8, 1]), -np.ones(5), np.ones(5), samples=500)
    assert not rc5.exact and "chao1" in report5["regions"]
    assert "Chao1" in format_report(report5)


def test_bad_requests():
    net = random_network([2, 4, 1])
    with pytest.raises(ProblemError, match="unknown bound method"):
        analyze_network(net, [-1, -1], [1, 1], bounds=("deeppoly",))
    with pytest.raises(ProblemError, match="2 inputs"):
        analyze_network(net, [-1], [1])
    with pytest.raises(ProblemError, match="unknown bound method"):
        bound_indicators(net, [-1, -1], [1, 1], "alpha")
