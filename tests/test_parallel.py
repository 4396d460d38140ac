"""Executors: spec parsing, chunking, and OBBT through processes and a local Dask cluster
giving bit-identical bounds to the serial run."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_network
from reluopt.bounds.obbt import obbt_bounds
from reluopt.errors import ProblemError
from reluopt.parallel import (
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    chunk,
    get_executor,
)


def _square(x):
    return x * x


def _arrays(b):
    return [*b.lower, *b.upper, b.out_lower, b.out_upper]


def _identical(a, b):
    return all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b), strict=True))


@pytest.fixture(scope="module")
def problem():
    net = random_network([3, 16, 16, 16, 2], seed=12, scale=1.3)
    lb, ub = -np.ones(3), np.ones(3)
    return net, lb, ub, obbt_bounds(net, lb, ub)


def test_specs():
    assert isinstance(get_executor(None), SerialExecutor)
    assert isinstance(get_executor("serial"), SerialExecutor)
    assert isinstance(get_executor(1), SerialExecutor)
    ex = get_executor(3)
    assert isinstance(ex, ProcessExecutor) and ex.workers == 3
    assert isinstance(get_executor("processes"), ProcessExecutor)
    mine = SerialExecutor()
    assert get_executor(mine) is mine
    for bad in ("gpu", 0, -2, True, object()):
        with pytest.raises(ProblemError):
            get_executor(bad)


def test_chunk_covers_in_order():
    items = list(range(11))
    parts = chunk(items, 4)
    assert len(parts) == 4 and sum(parts, []) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert chunk(items, 50) == [[i] for i in items]
    assert chunk([], 3) == []


def test_process_executor_maps_in_order():
    with get_executor(2) as ex:
        assert ex.map(_square, [3, 1, 2]) == [9, 1, 4]


def test_obbt_through_processes_is_identical(problem):
    net, lb, ub, serial = problem
    par = obbt_bounds(net, lb, ub, executor=2)
    assert par.stats["executor"] == "processes(2)"
    assert _identical(serial, par)
    # the same LPs from the same bases: the simplex work is identical, only spread out
    assert par.stats["iterations"] == serial.stats["iterations"]
    assert par.stats["solves"] == serial.stats["solves"]


def test_obbt_through_a_local_dask_cluster_is_identical(problem):
    distributed = pytest.importorskip("distributed")
    net, lb, ub, serial = problem
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        ex = get_executor(client)
        assert isinstance(ex, DaskExecutor) and ex.workers == 2
        out = obbt_bounds(net, lb, ub, executor=client)
        assert out.stats["executor"] == "dask(2)"
        assert _identical(serial, out)
        # the caller's client is left open and usable
        assert client.submit(_square, 4).result() == 16
