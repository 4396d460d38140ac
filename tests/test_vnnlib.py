"""VNN-LIB parser: every shared property parses; the supported constructs mean what they say;
malformed files raise an error naming the line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import SHARED_DATA, random_network
from reluopt.errors import ParseError, ProblemError, UnsupportedError
from reluopt.verification import format_counterexample, load_vnnlib, parse_vnnlib

HEAD2 = """; two inputs, two outputs
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
"""
BOX2 = """(assert (>= X_0 -1))
(assert (<= X_0 1))
(assert (>= X_1 -0.5))
(assert (<= X_1 0.5))
"""


def _files():
    return sorted(SHARED_DATA.glob("*/*.vnnlib")) if SHARED_DATA.is_dir() else []


@pytest.mark.data
@pytest.mark.parametrize("path", _files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shared_properties_parse(path):
    prop = load_vnnlib(path)
    assert prop.n_pairs >= 1
    for box in prop.boxes:
        assert box.lb.shape == (prop.n_inputs,) and np.all(box.lb <= box.ub)
        for dj in box.disjuncts:
            assert dj.C.shape == (dj.e.shape[0], prop.n_outputs)


def test_shared_data_present(shared_data):
    assert len(_files()) >= 40


def test_acasxu_structure(shared_data):
    p1 = load_vnnlib(shared_data / "acasxu" / "prop_1.vnnlib")
    assert len(p1.boxes) == 1 and p1.n_pairs == 1
    np.testing.assert_allclose(p1.boxes[0].lb, [0.6, -0.5, -0.5, 0.45, -0.5])
    np.testing.assert_allclose(p1.boxes[0].ub, [0.679857769, 0.5, 0.5, 0.5, -0.45])
    dj = p1.boxes[0].disjuncts[0]      # unsafe: Y_0 >= 3.99...  <=>  -Y_0 <= -3.99...
    np.testing.assert_allclose(dj.C, [[-1, 0, 0, 0, 0]])
    np.testing.assert_allclose(dj.e, [-3.991125645861615])
    # property 6: a disjunction over two input boxes times four output disjuncts
    p6 = load_vnnlib(shared_data / "acasxu" / "prop_6.vnnlib")
    assert len(p6.boxes) == 2 and p6.n_pairs == 8
    assert p6.boxes[0].ub[1] == pytest.approx(0.499999896)
    assert p6.boxes[1].ub[1] == pytest.approx(-0.11140846)
    # property 2: one conjunction of four atoms Y_i <= Y_0
    p2 = load_vnnlib(shared_data / "acasxu" / "prop_2.vnnlib")
    dj = p2.boxes[0].disjuncts[0]
    assert dj.C.shape == (4, 5)
    y = np.array([[5.0, 1, 2, 3, 4], [1.0, 5, 2, 3, 4]])
    assert dj.holds(y).tolist() == [True, False]


def test_mnist_structure(shared_data):
    p = load_vnnlib(shared_data / "mnistfc" / "prop_0_0.03.vnnlib")
    assert p.n_inputs == 784 and p.n_outputs == 10 and p.n_pairs == 9
    # unsafe if some Y_i >= Y_8 (label 8)
    y = np.zeros((1, 10))
    y[0, 8] = 1.0
    assert not any(dj.holds(y)[0] for dj in p.boxes[0].disjuncts)
    y[0, 3] = 1.0
    assert any(dj.holds(y)[0] for dj in p.boxes[0].disjuncts)


def test_linear_terms_constant_first_and_strict():
    text = HEAD2 + """(assert (<= -1 X_0)) (assert (>= 1 X_0))
(assert (>= X_1 (* -0.5 1))) (assert (>= (- X_1) -0.5))
(assert (<= (* 2.0 Y_0) (+ Y_1 3)))   ; 2 y0 - y1 <= 3
(assert (> (- Y_0 Y_1) 0.25))         ; strict: y1 - y0 < -0.25
"""
    p = parse_vnnlib(text)
    box = p.boxes[0]
    np.testing.assert_allclose(box.lb, [-1, -0.5])
    np.testing.assert_allclose(box.ub, [1, 0.5])
    dj = box.disjuncts[0]
    np.testing.assert_allclose(dj.C, [[2, -1], [-1, 1]])
    np.testing.assert_allclose(dj.e, [3, -0.25])
    assert dj.strict.tolist() == [False, True]
    # y = (1, 0.75): margins (3 - 1.25, -0.25 + 0.25) = (1.75, 0): strict atom fails at 0
    assert not dj.holds(np.array([[1.0, 0.75]]))[0]
    assert dj.holds(np.array([[1.0, 0.7]]))[0]
    assert dj.margins(np.array([[1.0, 0.75]]))[0] == pytest.approx(0.0)


def test_disjunction_over_input_boxes_and_mixed_terms():
    text = HEAD2 + """(assert (or
  (and (>= X_0 -1) (<= X_0 0) (>= X_1 0) (<= X_1 1) (>= Y_0 2))
  (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_1 Y_0))
  (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_1 -3))
))"""
    p = parse_vnnlib(text)
    assert len(p.boxes) == 2 and p.n_pairs == 3
    assert [len(b.disjuncts) for b in p.boxes] == [1, 2]
    net = random_network([2, 4, 2], seed=1)
    x = np.array([0.5, 0.5])
    y = net.forward(x)
    expect = y[1] <= y[0] or y[1] <= -3
    assert p.check(net).is_counterexample(x, y) == expect
    assert not p.is_counterexample(np.array([2.0, 0.5]), y)   # outside every box


def test_equality_and_comments_and_equal_sign():
    text = HEAD2 + BOX2 + "(assert (= Y_0 Y_1)) ; two atoms\n"
    dj = parse_vnnlib(text).boxes[0].disjuncts[0]
    np.testing.assert_allclose(dj.C, [[1, -1], [-1, 1]])


def test_check_pads_outputs_and_names_inputs():
    text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n" \
           "(assert (>= X_0 0))\n(assert (>= Y_0 1))\n"
    p = parse_vnnlib(text)
    net = random_network([1, 3, 2], seed=0)
    q = p.check(net)
    assert q.boxes[0].disjuncts[0].C.shape == (1, 2)
    with pytest.raises(ProblemError, match="X_1 has no bounds"):
        p.check(random_network([2, 3, 1], seed=0))


def _error(text, exc=ParseError):
    with pytest.raises(exc) as info:
        p = parse_vnnlib(text, source="bad.vnnlib")
        p.check(random_network([2, 4, 2], seed=0))
    msg = str(info.value)
    assert "bad.vnnlib" in msg
    return msg


def test_unbalanced_parenthesis_never_closed():
    msg = _error(HEAD2 + BOX2 + "(assert (<= Y_0 Y_1)\n")
    assert "line 10" in msg and "never closed" in msg


def test_unbalanced_parenthesis_extra_close():
    msg = _error(HEAD2 + BOX2 + "(assert (<= Y_0 Y_1)))\n")
    assert "line 10, column 22" in msg and "no matching" in msg


def test_unknown_variable():
    msg = _error(HEAD2 + BOX2 + "\n(assert (<= Y_0 Y_7))\n")
    assert "line 11" in msg and "unknown variable Y_7" in msg
    msg = _error(HEAD2 + BOX2 + "(assert (<= Z 1))\n")
    assert "line 10" in msg and "'Z'" in msg


def test_non_linear_term():
    msg = _error(HEAD2 + BOX2 + "(assert (<= (* Y_0 Y_1) 1))\n")
    assert "line 10" in msg and "non-linear" in msg and "(* Y_0 Y_1)" in msg


def test_input_index_beyond_network():
    text = HEAD2.replace("(declare-const Y_0", "(declare-const X_2 Real)\n(declare-const Y_0") + \
        BOX2 + "(assert (>= X_2 0))\n(assert (<= X_2 1))\n(assert (<= Y_0 0))\n"
    msg = _error(text, ProblemError)
    assert "line 4" in msg and "X_2" in msg and "2 inputs" in msg


def test_empty_box():
    msg = _error(HEAD2 + BOX2 + "(assert (>= X_1 0.7))\n(assert (<= Y_0 0))\n")
    assert "empty box" in msg and "X_1" in msg and "line 10" in msg and "line 9" in msg


def test_missing_bound():
    msg = _error(HEAD2 + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (<= X_1 1))\n"
                 "(assert (<= Y_0 0))\n")
    assert "X_1 has no lower bound" in msg and "line 3" in msg


def test_unsupported_constructs_name_the_line():
    msg = _error(HEAD2 + BOX2 + "(assert (<= X_0 Y_0))\n", UnsupportedError)
    assert "line 10" in msg and "mixes" in msg
    msg = _error(HEAD2 + BOX2 + "(assert (<= (+ X_0 X_1) 1))\n", UnsupportedError)
    assert "line 10" in msg and "several" in msg
    msg = _error(HEAD2 + BOX2 + "(assert (not (<= Y_0 1)))\n")
    assert "line 10" in msg and "'not'" in msg
    msg = _error(HEAD2.replace("Y_1 Real", "Y_1 Int") + BOX2 + "(assert (<= Y_0 1))\n")
    assert "line 5" in msg and "Int" in msg


def test_missing_file(tmp_path):
    with pytest.raises(ParseError, match="no such file"):
        load_vnnlib(tmp_path / "none.vnnlib")


def test_counterexample_format():
    text = format_counterexample(np.array([0.1, -2.0]), np.array([3.5]))
    assert text == "sat\n((X_0 0.1)\n (X_1 -2.0)\n (Y_0 3.5))\n"
    pairs = re.findall(r"\((X|Y)_(\d+) ([^)]+)\)", text)
    assert [float(v) for _, _, v in pairs] == [0.1, -2.0, 3.5]
