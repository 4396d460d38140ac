"""Branch and bound on a Dask LocalCluster (search.distributed): the same answers as the serial
search and the brute force, failed tasks never give a bound, limits hold, bad options are
clear errors. Skipped when the 'dask' extra (distributed) is not installed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("distributed")

import reluopt  # noqa: E402
from bruteforce import brute_force  # noqa: E402
from conftest import random_network  # noqa: E402
from reluopt.errors import ProblemError  # noqa: E402
from reluopt.methods.bab import bab_maximize_min  # noqa: E402
from reluopt.problem import Domain, MaxMin, Objective, OutputConstraints, Problem  # noqa: E402
from reluopt.search import distributed  # noqa: E402
from reluopt.search.cluster import Cluster, active, scope  # noqa: E402
from reluopt.verification import Disjunct, InputBox, Property, verify  # noqa: E402
from test_verify import max_margin  # noqa: E402

LB, UB = -np.ones(2), np.ones(2)
#: No warm-up and short tasks: every search below goes through the cluster, in many tasks.
KNOBS = {"warmup_seconds": 0.0, "task_seconds": 0.05, "task_nodes": 2}


@pytest.fixture(scope="module")
def threads_cluster():
    """Two worker threads of this process (fast to start; monkeypatches reach them)."""
    with Cluster(workers=2, processes=False, **KNOBS) as cluster:
        yield cluster


def maxmin_problem(seed: int, d: int = 2):
    rng = np.random.default_rng(seed)
    net = random_network([d, 8, 8, 3], seed=seed)
    C, e = rng.normal(size=(3, 3)), rng.normal(size=3)
    return net, C, e, Problem(net, Domain(-np.ones(d), np.ones(d)), MaxMin(C, e))


def check_against(res, truth, tol=1e-6):
    assert res.bound >= truth - 1e-7                          # a true bound
    assert res.value <= truth + 1e-7                          # a real point
    assert res.status == "optimal" and res.bound - res.value <= tol


@pytest.mark.parametrize("seed", [0, 1])
def test_bab_on_cluster_matches_serial_and_brute_force(threads_cluster, seed):
    net, C, e, problem = maxmin_problem(seed)
    truth = max_margin(net, LB, UB, -C, e)                 # max_x min_j (C_j y + e_j)
    serial = reluopt.solve(problem, "bab", time_limit=60, abs_gap=1e-6, rel_gap=0.0)
    res = reluopt.solve(problem, "bab", workers=threads_cluster, time_limit=60, abs_gap=1e-6, rel_gap=0.0)
    check_against(serial, truth)
    check_against(res, truth)
    assert res.value == pytest.approx(float(np.min(net.forward(res.x[None]) @ C.T + e)), abs=1e-12)
    assert res.value == pytest.approx(serial.value, abs=2e-6)
    assert res.stats["cluster"]["tasks"] >= 1 and res.stats["cluster"]["failed"] == 0
    assert active() is None                                 # the scope is closed again


def test_constrained_bab_and_bab_relu_on_cluster_match_brute_force(threads_cluster):
    net = random_network([2, 10, 10, 2], seed=7)
    c = np.array([1.0, -0.5])
    cons = OutputConstraints(np.array([[0.0, 1.0]]), np.array([0.2]))
    truth = brute_force(net, LB, UB, c, "max", C=cons.C, e=cons.e)
    problem = Problem(net, Domain(LB, UB), Objective(c, 0.0, "max"), cons)
    res = reluopt.solve(problem, "bab", workers=threads_cluster, time_limit=60)
    assert res.status == "optimal" and res.bound >= truth - 1e-6 and res.value <= truth + 1e-6
    assert res.bound - res.value <= 1e-4 * max(1.0, abs(truth))
    net = random_network([2, 16, 16, 1], seed=0)          # bab-relu needs some 70 nodes here
    truth = brute_force(net, LB, UB, np.ones(1), "max")
    relu = reluopt.solve(Problem(net, Domain(LB, UB), Objective(np.ones(1), 0.0, "max")), "bab-relu",
                         workers=threads_cluster, time_limit=60)
    assert relu.status == "optimal" and relu.bound >= truth - 1e-6 and relu.value <= truth + 1e-6
    assert relu.bound - relu.value <= 1e-4 * max(1.0, abs(truth)) and relu.stats["cluster"]["tasks"] >= 1


@pytest.mark.parametrize("delta", [-2e-3, 2e-3])
def test_verify_on_cluster_agrees_with_brute_force(threads_cluster, delta):
    """One pair (input-split bab) and a box of two disjuncts (the shared tree): unsat exactly
    when every true max margin is < 0, else a counterexample that the serial verify finds too."""
    rng = np.random.default_rng(3)
    net = random_network([2, 6, 5, 3], seed=3)
    djs = []
    for k in range(2):
        C = rng.normal(size=(1 + k, 3))
        m0 = max_margin(net, LB, UB, C, np.zeros(C.shape[0]))
        djs.append(Disjunct(C, np.full(C.shape[0], (delta if k == 0 else -0.05) - m0), np.zeros(C.shape[0], bool)))
    for box in (InputBox(LB, UB, (djs[0],)), InputBox(LB, UB, tuple(djs))):
        prop = Property(2, 3, (box,))
        serial = verify(net, prop, timeout=60, falsify=False, exact="bab")
        got = verify(net, prop, timeout=60, falsify=False, exact="bab", workers=threads_cluster)
        assert got.status == serial.status == ("unsat" if delta < 0 else "sat")
        if got.status == "sat":
            assert any(dj.holds(net.forward(got.x))[0] for dj in box.disjuncts)


def test_failed_tasks_put_their_nodes_back(threads_cluster, monkeypatch):
    """Every other task raises on the worker: the answer is still the true optimum; when every
    task fails the search gives up the cluster and finishes here, still exact."""
    real = distributed.run_subtree
    calls = itertools.count()

    def flaky(spec, task):
        if next(calls) % 2 == 0:
            raise RuntimeError("injected worker failure")
        return real(spec, task)

    net, C, e, problem = maxmin_problem(4)
    truth = max_margin(net, LB, UB, -C, e)
    monkeypatch.setattr(distributed, "run_subtree", flaky)
    res = reluopt.solve(problem, "bab", workers=threads_cluster, time_limit=60, abs_gap=1e-6, rel_gap=0.0)
    check_against(res, truth)
    assert res.stats["cluster"]["failed"] > 0 and "injected" in res.stats["cluster"]["last_error"]

    def broken(spec, task):
        raise RuntimeError("injected worker failure")

    monkeypatch.setattr(distributed, "run_subtree", broken)
    res = reluopt.solve(problem, "bab", workers=threads_cluster, time_limit=60, abs_gap=1e-6, rel_gap=0.0)
    check_against(res, truth)
    assert res.stats["cluster"]["gave_up"] and res.stats["cluster"]["failed"] == threads_cluster.max_failures

    def no_cluster():
        raise OSError("injected: the cluster did not start")

    dead = Cluster(workers=1, processes=False, **KNOBS)
    monkeypatch.setattr(dead, "client", no_cluster)
    res = reluopt.solve(problem, "bab", workers=dead, time_limit=60, abs_gap=1e-6, rel_gap=0.0)
    check_against(res, truth)
    assert res.stats["cluster"]["gave_up"] and "did not start" in res.stats["cluster"]["last_error"]


def test_limits_on_cluster_keep_a_true_bound(threads_cluster):
    """A node limit and a time limit stop the farmed search; the bound still covers the
    optimum (nodes out on workers came back into it)."""
    net, C, e, problem = maxmin_problem(5, d=3)
    truth = reluopt.solve(problem, "bab", time_limit=120, abs_gap=1e-7, rel_gap=0.0)
    assert truth.status == "optimal"
    res = reluopt.solve(problem, "bab", workers=threads_cluster, node_limit=60, abs_gap=1e-9, rel_gap=0.0)
    assert res.status == "node_limit" and res.bound >= truth.value - 1e-9
    # the serial tree at this gap ends with frozen boxes (status feasible) in about 0.2 s: a fast
    # machine finishes it within the limit, a slow one stops at the limit
    exhausted = reluopt.solve(problem, "bab", time_limit=120, abs_gap=1e-12, rel_gap=0.0).status
    res = reluopt.solve(problem, "bab", workers=threads_cluster, time_limit=0.3, abs_gap=1e-12, rel_gap=0.0)
    assert res.status in ("time_limit", exhausted) and res.bound >= truth.value - 1e-9
    polls = itertools.count()                 # Ctrl-C: should_stop turns True while tasks are out
    with scope(threads_cluster):
        out = bab_maximize_min(net, -np.ones(3), np.ones(3), C, e, abs_gap=1e-12, rel_gap=0.0,
                               should_stop=lambda: next(polls) >= 2)
    assert out.status == "interrupted" and out.bound >= truth.value - 1e-9
    assert out.stats["cluster"]["tasks"] >= 1 and out.stats["open_nodes"] > 0


def test_bab_on_process_workers_matches_serial():
    """Two worker processes: the tasks and their answers cross process boundaries (pickled)."""
    net, C, e, problem = maxmin_problem(1)
    serial = reluopt.solve(problem, "bab", time_limit=60, abs_gap=1e-6, rel_gap=0.0)
    with Cluster(workers=2, **KNOBS) as cluster:
        res = reluopt.solve(problem, "bab", workers=cluster, time_limit=120, abs_gap=1e-6, rel_gap=0.0)
    assert res.status == serial.status == "optimal"
    assert res.value == pytest.approx(serial.value, abs=2e-6) and res.bound >= serial.value - 1e-7
    assert res.stats["cluster"]["tasks"] >= 1 and res.stats["cluster"]["failed"] == 0


def test_cluster_options_are_checked():
    net, C, e, problem = maxmin_problem(0)
    with pytest.raises(ProblemError, match="not both"):
        Cluster(workers=2, scheduler="tcp://localhost:8786")
    with pytest.raises(ProblemError, match="positive integer"):
        Cluster(workers=0)
    with pytest.raises(ProblemError, match="worker count"):
        Cluster()
    with pytest.raises(ProblemError, match="scheduler must be"):
        Cluster(scheduler=3.5)
    with pytest.raises(ProblemError, match="task_seconds"):
        Cluster(workers=1, task_seconds=-1)
    with pytest.raises(ProblemError, match="does not run on a Dask cluster"):
        reluopt.solve(problem, "ppga", workers=2, time_limit=1)
    with scope(None, None) as none:          # no options: no cluster, nothing started
        assert none is None


def test_cli_accepts_workers_and_an_easy_instance_never_starts_the_cluster(tmp_path, capsys):
    """``--workers`` on solve and verify; a problem decided within the warm-up needs no cluster."""
    from reluopt.cli import main
    from reluopt.io.native import save_npz

    net = random_network([2, 6, 1], seed=2)
    path = save_npz(net, tmp_path / "net.npz")
    assert main(["solve", str(path), "--box=-1,1", "--maximize", "0", "--method", "bab", "--workers", "2"]) == 0
    prop = tmp_path / "p.vnnlib"
    prop.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(assert (<= X_0 1))\n(assert (>= X_0 -1))\n(assert (<= X_1 1))\n(assert (>= X_1 -1))\n"
                    "(assert (>= Y_0 1000))\n")
    assert main(["verify", str(path), str(prop), "--workers", "2"]) == 0
    assert "unsat" in capsys.readouterr().out
    assert main(["solve", str(path), "--box=-1,1", "--maximize", "0", "--method", "mip", "--workers", "2"]) == 2
