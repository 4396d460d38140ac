"""reluopt.Model: one clear ProblemError for each kind of bad input, naming what is wrong."""

from __future__ import annotations

import pytest

import reluopt
from conftest import random_network
from reluopt import ProblemError


def small(lb=-1.0, ub=1.0):
    m = reluopt.Model()
    m.add_var("x", lb, ub, shape=2)
    return m


def test_input_count_differs_from_the_feeds():
    m = small()
    with pytest.raises(ProblemError, match=r"network 'net' has 3 inputs but 2 input expression"):
        m.add_network(random_network([3, 4, 1]), "x", name="net")


def test_unbounded_variable_feeding_a_network_is_named():
    m = small()
    m.add_var("free", 0.0)               # no upper bound
    m.add_network(random_network([2, 4, 1]), ["x[0]", "x[1] + 2*free"], name="y")
    m.maximize("y[0]")
    for method in ("mip", "bab"):
        with pytest.raises(ProblemError, match=r"free \[0, inf\]"):
            m.solve(method)


def test_bab_refuses_too_many_continuous_network_inputs():
    m = reluopt.Model()
    m.add_var("x", -1.0, 1.0, shape=9)
    m.add_network(random_network([9, 3, 1]), "x", name="y")
    m.maximize("y[0]")
    with pytest.raises(ProblemError, match=r"'bab'.* 9 \(at most 8\)"):
        m.solve("bab")


def test_unknown_names_in_expressions_say_which_and_where():
    m = small()
    m.add_network(random_network([2, 4, 1]), "x", name="y")
    with pytest.raises(ProblemError, match=r"'units \+ y\[0\] <= 3' at column 1 .*unknown variable 'units'"):
        m.add_constraint("units + y[0] <= 3")
    with pytest.raises(ProblemError, match=r"the objective: .*unknown variable 'z'"):
        m.maximize("y[0] - z")
    with pytest.raises(ProblemError, match=r"input 1 of network 'y2'.*unknown variable 'q'"):
        m.add_network(random_network([2, 4, 1]), ["x[0]", "2*q"], name="y2")
    with pytest.raises(ProblemError, match=r"x\[2\] does not exist"):
        m.add_constraint("x[2] <= 1")
    with pytest.raises(ProblemError, match=r"x is a vector of 2 entries"):
        m.add_constraint("x <= 1")


def test_other_bad_input():
    m = small()
    with pytest.raises(ProblemError, match="already has"):
        m.add_var("x", 0, 1)
    with pytest.raises(ProblemError, match="empty or invalid range"):
        m.add_var("w", 2.0, 1.0)
    with pytest.raises(ProblemError, match="no integer value"):
        m.add_var("n", 0.2, 0.8, integer=True)
    m.add_network(random_network([2, 4, 1]), "x", name="y")
    with pytest.raises(ProblemError, match="no objective"):
        m.solve("mip")
    m.maximize("y[0]")
    with pytest.raises(ProblemError, match="unknown method 'walk'"):
        m.solve("walk")
    with pytest.raises(reluopt.ParseError, match="not linear"):
        m.add_constraint("x[0]*x[1] <= 1")
    with pytest.raises(ProblemError, match="no network"):
        empty = small()
        empty.maximize("x[0]")
        empty.solve("mip")


def test_a_misspelled_option_is_named():
    m = small()
    m.add_network(random_network([2, 4, 1]), "x", name="y")
    m.maximize("y[0]")
    with pytest.raises(ProblemError, match="did you mean 'abs_gap'"):
        m.solve("mip", abs_gap_=1e-3)
    with pytest.raises(ProblemError, match="no option 'threads'"):
        m.solve("bab", threads=2)


def test_an_unbounded_objective_is_an_error():
    m = small()
    m.add_var("slack", 0.0)                       # free above, and rewarded
    m.add_network(random_network([2, 4, 1]), "x", name="y")
    m.maximize("y[0] + slack")
    for method in ("mip", "bab"):
        with pytest.raises(ProblemError, match="unbounded"):
            m.solve(method)
