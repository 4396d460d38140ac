"""An MLPClassifier is optimised on its logits: the CLI and the README say so."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

import reluopt
from reluopt.cli import main
from reluopt.io import save_npz
from reluopt.io.sklearn import classifier_note


def _fit(n_classes: int) -> MLPClassifier:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] > 0).astype(int) + (n_classes > 2) * (X[:, 1] > 0).astype(int)
    return MLPClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=0).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_logit_difference_is_the_log_probability_ratio():
    clf = _fit(3)
    net = reluopt.load(clf)
    assert "log(p_i / p_j)" in classifier_note(net)
    x = np.array([[0.3, -0.2]])
    y = net.forward(x)[0]
    p = clf.predict_proba(x)[0]
    assert y[2] - y[0] == pytest.approx(np.log(p[2] / p[0]), abs=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_binary_note_and_cli_line(tmp_path, capsys):
    clf = _fit(2)
    net = reluopt.load(clf)
    note = classifier_note(net)
    assert "log(p / (1 - p))" in note
    x = np.array([[0.3, -0.2]])
    p1 = clf.predict_proba(x)[0, 1]
    assert net.forward(x)[0, 0] == pytest.approx(np.log(p1 / (1 - p1)), abs=1e-6)
    save_npz(net, tmp_path / "clf.npz")
    if classifier_note(reluopt.load(tmp_path / "clf.npz")) is None:
        pytest.skip("the native format does not keep the estimator's metadata")
    assert main(["solve", str(tmp_path / "clf.npz"), "--box=-1,1", "--maximize", "0", "--method", "bab", "-q"]) == 0
    assert "note: y[0] is the classifier's logit" in capsys.readouterr().out


def test_no_note_for_other_networks():
    net = reluopt.Network.from_weights([(np.ones((2, 2)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
    assert classifier_note(net) is None
