"""The portfolio ("auto"): heuristic phase, warm-started exact phase, merged history."""

from __future__ import annotations

import numpy as np
import pytest

import reluopt.methods as methods
from conftest import ROOT, random_network
from reluopt import Problem, ProblemError
from reluopt.methods import solve
from reluopt.methods.portfolio import choose_exact
from reluopt.result import FEASIBLE, OPTIMAL, Result
from test_region import brute_optimum


def _fake_exact(calls):
    """An 'exact' method that records its warm start and proves the brute-force bound."""

    def fake(problem, *, time_limit=None, seed=0, progress=None, incumbent=None, **_):
        calls.append({"incumbent": None if incumbent is None else np.array(incumbent),
                      "time_limit": time_limit})
        if incumbent is None:   # auto's bab probe, before any heuristic: no point, no proof
            return Result("node_limit", "bab", problem.sense)
        truth = brute_optimum(problem)
        x = np.array(incumbent)
        v = float(problem.objective_values(x)[0])
        return Result(OPTIMAL if abs(v - truth) < 1e-6 else "time_limit", "mip", problem.sense,
                      x, v, truth, [(0.0, v, None, "mip-start"), (0.01, v, truth, "mip")])

    return fake


def test_auto_warm_starts_the_exact_phase_and_merges_histories(tiny_net, monkeypatch):
    calls = []
    real = methods.get_method
    monkeypatch.setattr(methods, "get_method",
                        lambda name: _fake_exact(calls) if name in ("mip", "bab") else real(name))
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    r = solve(p, "auto", time_limit=2.0, seed=0)
    # first bab's probe (it does not close the problem), then the heuristics, then the exact phase
    assert len(calls) == 2 and calls[0]["incumbent"] is None
    # the exact phase received the heuristic's best point and the rest of the budget
    assert calls[1]["incumbent"] is not None
    # (heuristics that finish early, e.g. after their polish walk, leave their time to it)
    spent = sum(ph["seconds"] for ph in r.stats["phases"][:-1])
    assert 0 < calls[1]["time_limit"] <= 2.0 - spent + 1e-6
    assert spent <= 2.0 * 0.25 + 0.3
    assert r.status == OPTIMAL
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-6)
    assert r.bound == pytest.approx(r.value, abs=1e-6)
    assert r.stats["exact"] == "bab"            # 2 inputs, bounded box
    sources = [src for *_, src in r.history]
    assert sources[0].startswith("ppga-lr")
    assert sources[-1].startswith("bab")        # the bound came from the exact phase
    times = [t for t, *_ in r.history]
    assert times == sorted(times)
    values = [v for _, v, _, _ in r.history if v is not None]
    assert values == sorted(values)


def test_auto_without_an_exact_method_is_a_heuristic(tiny_net, monkeypatch):
    real = methods.get_method

    def missing(name):
        if name in ("mip", "bab"):
            raise ProblemError(f"method {name!r} is not available in this version")
        return real(name)

    monkeypatch.setattr(methods, "get_method", missing)
    p = Problem.build(tiny_net, -1, 1, minimize=0)
    r = solve(p, "auto", time_limit=1.0)
    assert r.status == FEASIBLE
    assert r.bound is None
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-5)


def test_auto_with_the_real_mip(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0, constraints=["y[0] <= 0.1"])
    reports = []
    r = solve(p, "auto", time_limit=10.0, exact="mip", progress=reports.append)
    assert r.status == OPTIMAL
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-5)
    assert {s.split(":")[0] for *_, s in r.history} & {"ppga-lr", "sampling"}
    assert r.stats["phases"][-1]["method"] == "mip"
    # progress reports are tagged with their phase and use the portfolio's clock
    phases = [rep["phase"] for rep in reports]
    assert phases[0] == "ppga-lr" and phases[-1] == "mip"
    mip_times = [rep["elapsed"] for rep in reports if rep["phase"] == "mip"]
    assert min(mip_times) >= r.stats["phases"][0]["seconds"] - 1e-6


def test_choose_exact():
    small = Problem.build(random_network([3, 4, 1]), 0, 1, maximize=0)
    eight = Problem.build(random_network([8, 4, 1]), 0, 1, maximize=0)
    # above BAB_MAX_DIM a problem ReLU splitting does not take (here a leaky ReLU)
    from test_splitting_rule import _leaky

    big = Problem.build(_leaky(random_network([9, 4, 1])), 0, 1, maximize=0)
    unbounded = Problem.build(random_network([3, 4, 1]), 0, np.inf, maximize=0)
    assert choose_exact(small) == choose_exact(eight) == "bab"
    assert choose_exact(big) == choose_exact(unbounded) == "mip"
    # a plain problem: input splitting up to SPLIT_MAX_DIM (16) inputs, then ReLU splitting;
    # output constraints do not change that (benchmarks/results/relu_constraints.md)
    nine = Problem.build(random_network([9, 4, 1]), 0, 1, maximize=0)
    wide = Problem.build(random_network([17, 4, 1]), 0, 1, maximize=0)
    assert (choose_exact(nine), choose_exact(wide)) == ("bab", "bab-relu")
    nine_c = Problem.build(random_network([9, 4, 1]), 0, 1, maximize=0, constraints=["y[0] <= 1"])
    wide_c = Problem.build(random_network([17, 4, 1]), 0, 1, maximize=0, constraints=["y[0] <= 1"])
    assert (choose_exact(nine_c), choose_exact(wide_c)) == ("bab", "bab-relu")


def test_bad_inputs(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    with pytest.raises(ProblemError, match="time limit must be positive"):
        solve(p, "auto", time_limit=0)
    with pytest.raises(ProblemError, match="unknown exact method"):
        solve(p, "auto", time_limit=1, exact="simplex")
    bad = Problem.build(tiny_net, -1, 1, maximize=0, A=np.array([[1.0, 0], [-1.0, 0]]),
                        b=np.array([-0.5, -0.5]))
    # an empty input set is an answer, not bad input: infeasible, as from every other method
    res = solve(bad, "auto", time_limit=1)
    assert res.status == "infeasible" and "no point in the box" in res.stats["reason"]


def test_compare_cli_writes_table_json_and_plot(tmp_path, capsys):
    import json

    from reluopt.cli import main
    from reluopt.io import save_npz

    model = tmp_path / "net.npz"
    save_npz(random_network([3, 10, 10, 2], seed=1), model)
    png, out = tmp_path / "race.png", tmp_path / "race.json"
    rc = main(["compare", str(model), "--box=-1,1", "--maximize", "1", "--methods", "ppga-lr,sampling",
               "--time-limit", "0.3", "--plot", str(png), "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| ppga-lr | feasible |" in text and "| sampling | feasible |" in text
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"ppga-lr", "sampling"}
    assert doc["results"]["sampling"]["history"]
    # an unknown method is a usage error before anything runs
    assert main(["compare", str(model), "--box=-1,1", "--maximize", "0", "--methods", "nope"]) == 2
    assert main(["compare", str(model), "--box=-1,1", "--maximize", "0", "--time-limit", "0"]) == 2


def test_auto_with_the_real_bab(tiny_net):
    p = Problem.build(tiny_net, -1, 1, minimize=0)
    r = solve(p, "auto", time_limit=10.0)
    assert r.stats["exact"] == "bab"
    assert r.status == OPTIMAL
    assert r.value == pytest.approx(brute_optimum(p), abs=1e-4)
    assert r.bound is not None and r.bound <= r.value + 1e-9
    assert r.value == pytest.approx(p.objective_values(r.x)[0], abs=1e-12)
    assert [s.split(":")[0] for *_, s in r.history][-1] == "bab"


@pytest.mark.parametrize("exact", ["mip", "bab"])
def test_auto_never_returns_an_infeasible_user_incumbent(tiny_net, exact):
    # the constraint holds nowhere: no method can find a point, and the user's start is infeasible
    p = Problem.build(tiny_net, -1, 1, maximize=0, constraints=["y[0] <= -1000"])
    r = solve(p, "auto", time_limit=2.0, incumbent=[0.0, 0.0], exact=exact)
    assert r.x is None and r.value is None
    assert r.status == "infeasible"      # proven by the exact phase


def test_auto_keeps_a_feasible_user_incumbent(tiny_net):
    p = Problem.build(tiny_net, -1, 1, maximize=0)
    x_opt = solve(p, "mip", time_limit=20).x
    r = solve(p, "auto", time_limit=2.0, incumbent=x_opt, heuristics="ppga")
    assert r.value >= float(p.objective_values(x_opt)[0]) - 1e-12
    assert r.history[0][3] == "incumbent"


def test_compare_cli_with_an_expression_and_a_polytope(tmp_path, capsys):
    import json

    from reluopt.cli import main
    from reluopt.io import save_npz

    model = tmp_path / "net.npz"
    save_npz(random_network([3, 10, 10, 2], seed=1), model)
    poly = tmp_path / "poly.json"
    poly.write_text(json.dumps({"A": [[1.0, 1.0, 1.0]], "b": [0.5]}))
    out = tmp_path / "race.json"
    rc = main(["compare", str(model), "--box=-1,1", "--minimize", "y[0] - y[1]", "--polytope", str(poly),
               "--constraint", "y[0] <= 0.5", "--methods", "ppga,walk", "--time-limit", "0.3",
               "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    for res in doc["results"].values():
        x = np.array(res["x"])
        assert x.sum() <= 0.5 + 1e-6
        assert res["sense"] == "min"
    assert main(["compare", str(model), "--box=-1,1", "--maximize", "0", "--polytope",
                 str(tmp_path / "missing.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_auto_skips_heuristics_when_bab_closes_at_once():
    """The demo problem: bab closes it within its first 1000 nodes, so auto runs bab alone (its work is
    bab's work, hence its time is bab's) and reports bab's counters."""
    from reluopt import load

    net = load(ROOT / "examples" / "peaks" / "models" / "peaks_2-64-64-1.npz")
    p = Problem.build(net, -3, 3, minimize=0)
    res = solve(p, "auto", time_limit=60)
    assert res.status == "optimal"
    assert [ph["method"] for ph in res.stats["phases"]] == ["bab"]
    assert res.stats["nodes"] > 0 and "nodes_per_s" in res.stats
    assert res.value == pytest.approx(-6.47704, abs=1e-4)
