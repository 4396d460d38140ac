"""scikit-learn import, checked against the estimator's own predict / predict_proba."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
import joblib  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler  # noqa: E402

from reluopt.errors import ModelError, UnsupportedError  # noqa: E402
from reluopt.io import load_model  # noqa: E402
from reluopt.io.sklearn import from_sklearn, load_sklearn_file  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.uniform(-3, 5, size=(120, 3)) * np.array([1.0, 10.0, 0.1])
Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1] / 10, X[:, 2] ** 2])
LABELS = (X[:, 0] + X[:, 1] / 10 > 1).astype(int) + (X[:, 2] > 0.2).astype(int)


def fit(model, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_regressor_matches_predict():
    reg = fit(MLPRegressor(hidden_layer_sizes=(12, 8), max_iter=50, random_state=0), X, Y)
    net = from_sklearn(reg)
    assert net.describe() == "3-12-8-2"
    np.testing.assert_allclose(net.forward(X), reg.predict(X), rtol=1e-10, atol=1e-10)


def test_single_output_regressor_and_identity_activation():
    reg = fit(MLPRegressor(hidden_layer_sizes=(5, 4), activation="identity", max_iter=30, random_state=1),
              X, Y[:, 0])
    net = from_sklearn(reg)
    assert net.depth == 0  # an affine net collapses to one layer
    np.testing.assert_allclose(net.forward(X), reg.predict(X)[:, None], rtol=1e-10, atol=1e-10)


def test_multiclass_classifier_outputs_logits():
    clf = fit(MLPClassifier(hidden_layer_sizes=(10,), max_iter=60, random_state=2), X, LABELS)
    net = from_sklearn(clf)
    z = net.forward(X)
    assert z.shape == (len(X), 3) and net.meta["classes"] == [0, 1, 2]
    np.testing.assert_allclose(softmax(z), clf.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[z.argmax(axis=1)], clf.predict(X))


def test_binary_classifier_single_logit():
    y = LABELS > 0
    clf = fit(MLPClassifier(hidden_layer_sizes=(6,), max_iter=60, random_state=3), X, y)
    net = from_sklearn(clf)
    z = net.forward(X)[:, 0]
    np.testing.assert_allclose(1 / (1 + np.exp(-z)), clf.predict_proba(X)[:, 1], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[(z > 0).astype(int)], clf.predict(X))


@pytest.mark.parametrize("scalers", [
    (StandardScaler(),),
    (MinMaxScaler(feature_range=(-1, 2)),),
    (StandardScaler(with_mean=False), MinMaxScaler()),
])
def test_pipeline_scalers_are_folded(scalers):
    mlp = MLPRegressor(hidden_layer_sizes=(9,), max_iter=40, random_state=4)
    pipe = fit(make_pipeline(*scalers, mlp), X, Y)
    net = from_sklearn(pipe)
    assert net.input_dim == 3
    x = RNG.uniform(-5, 8, size=(30, 3))
    np.testing.assert_allclose(net.forward(x), pipe.predict(x), rtol=1e-9, atol=1e-9)


def test_feature_names_become_input_names():
    pipe = fit(make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(4,), max_iter=10,
                                                            random_state=5)), X, Y)
    # what fitting on a pandas DataFrame records (pandas is not a test dependency)
    pipe.steps[0][1].feature_names_in_ = np.array(["bypass", "ratio", "temp"], dtype=object)
    assert from_sklearn(pipe).input_names == ("bypass", "ratio", "temp")
    assert from_sklearn(pipe.steps[-1][1]).input_names is None


def test_files_via_joblib_and_pickle(tmp_path):
    reg = fit(MLPRegressor(hidden_layer_sizes=(7,), max_iter=20, random_state=6), X, Y)
    joblib.dump(reg, tmp_path / "reg.joblib")
    with open(tmp_path / "reg.pkl", "wb") as fh:
        pickle.dump(reg, fh)
    for name in ("reg.joblib", "reg.pkl"):
        # pickles are read only on request: unpickling can run code from the file
        with pytest.raises(ModelError, match=rf"{name.replace('.', '[.]')}: is a pickle.*trust_pickle=True"):
            load_model(tmp_path / name)
        net = load_model(tmp_path / name, trust_pickle=True)
        np.testing.assert_allclose(net.forward(X[:10]), reg.predict(X[:10]), rtol=1e-10, atol=1e-10)
        assert net.source == str(tmp_path / name)
    with pytest.warns(DeprecationWarning, match="allow_pickle is deprecated"):  # the old name still works
        with pytest.raises(ModelError, match=r"reg\.pkl: is a pickle"):
            load_sklearn_file(tmp_path / "reg.pkl", allow_pickle=False)
    (tmp_path / "bad.pkl").write_bytes(b"garbage, not a pickle")
    with pytest.raises(ModelError, match=r"bad\.pkl: not a readable pickle/joblib file"):
        load_model(tmp_path / "bad.pkl", trust_pickle=True)


@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_smooth_activation_is_unsupported(activation):
    reg = fit(MLPRegressor(hidden_layer_sizes=(4,), activation=activation, max_iter=5, random_state=7), X, Y)
    with pytest.raises(UnsupportedError, match=rf"MLPRegressor has activation='{activation}'"):
        from_sklearn(reg)


def test_other_estimators_and_steps_are_unsupported(tmp_path):
    lin = LinearRegression().fit(X, Y)
    with pytest.raises(UnsupportedError, match=r"LinearRegression is not supported"):
        from_sklearn(lin)
    joblib.dump(lin, tmp_path / "lin.joblib")
    with pytest.raises(UnsupportedError, match=r"lin\.joblib: LinearRegression is not supported"):
        load_model(tmp_path / "lin.joblib", trust_pickle=True)
    pipe = fit(make_pipeline(PolynomialFeatures(), MLPRegressor(hidden_layer_sizes=(3,), max_iter=5)), X, Y)
    with pytest.raises(UnsupportedError, match=r"step 'polynomialfeatures' is a PolynomialFeatures"):
        from_sklearn(pipe)
    with pytest.raises(ModelError, match=r"not fitted"):
        from_sklearn(MLPRegressor())


def test_nan_weights_raise_model_error():
    reg = fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=8), X, Y)
    reg.coefs_[1][2, 0] = np.nan
    with pytest.raises(ModelError, match=r"layer 1: weight matrix has a non-finite entry"):
        from_sklearn(reg)
