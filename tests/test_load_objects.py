"""``reluopt.load`` of objects already in memory, checked against each framework's own forward
pass; and ONNX files written by torch's default exporter."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import reluopt
from conftest import random_network
from reluopt.errors import ModelError, UnsupportedError

RNG = np.random.default_rng(0)
X = RNG.uniform(-2, 2, size=(100, 3))


def fit(model, x, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def test_network_is_returned_as_is():
    net = random_network([3, 5, 2], seed=1)
    assert reluopt.load(net) is net


def test_sklearn_estimators_and_pipelines():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    reg = fit(MLPRegressor(hidden_layer_sizes=(10, 6), max_iter=40, random_state=0), X, np.sin(X) @ [1.0, 2.0, -1.0])
    np.testing.assert_allclose(reluopt.load(reg).forward(X)[:, 0], reg.predict(X), rtol=1e-10, atol=1e-10)

    pipe = fit(make_pipeline(StandardScaler(), MinMaxScaler(), MLPRegressor(hidden_layer_sizes=(8,), max_iter=40,
                                                                            random_state=1)), X, X[:, :2] ** 2)
    x = RNG.uniform(-4, 4, size=(30, 3))
    np.testing.assert_allclose(reluopt.load(pipe).forward(x), pipe.predict(x), rtol=1e-9, atol=1e-9)

    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    clf = fit(MLPClassifier(hidden_layer_sizes=(7,), max_iter=60, random_state=2), X, labels)
    z = reluopt.load(clf).forward(X)
    np.testing.assert_array_equal(clf.classes_[z.argmax(axis=1)], clf.predict(X))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), clf.predict_proba(X), rtol=1e-9, atol=1e-12)

    with pytest.raises(UnsupportedError, match=r"LinearRegression is not supported"):
        reluopt.load(LinearRegression().fit(X, X[:, 0]))
    with pytest.raises(ModelError, match=r"not fitted"):
        reluopt.load(MLPRegressor())


def test_torch_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    mod = nn.Sequential(nn.Linear(3, 12), nn.ReLU(), nn.Sequential(nn.Linear(12, 6), nn.ReLU6()),
                        nn.Dropout(0.5), nn.Linear(6, 2)).double().eval()
    with torch.no_grad():
        ref = mod(torch.as_tensor(X)).numpy()
    net = reluopt.load(mod)
    np.testing.assert_allclose(net.forward(X), ref, rtol=1e-12, atol=1e-12)
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(mod)
    np.testing.assert_allclose(reluopt.load(scripted).forward(X), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(UnsupportedError, match=r"module '1' is a Tanh"):
        reluopt.load(nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1)))


def onnxruntime_forward(model, x: np.ndarray) -> np.ndarray:
    """onnxruntime's forward pass, one row at a time (the graphs have a batch of 1)."""
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.vstack([sess.run(None, {name: row[None, :].astype(np.float32)})[0] for row in x])


def test_onnx_model_proto():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(3, 7)).astype(np.float32), rng.normal(size=7).astype(np.float32)
    W2, b2 = rng.normal(size=(7, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("Gemm", ["r", "W2", "b2"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(a, n) for a, n in ((W1, "W1"), (b1, "b1"), (W2, "W2"), (b2, "b2"))],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(proto)
    net = reluopt.load(proto)
    x = X[:20]
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(proto.SerializeToString(), x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelError, match=r"not an ONNX model"):
        reluopt.load(onnx.ModelProto())


@pytest.mark.parametrize("thing, name", [
    (42, "int"), ("model.h5", None), (np.eye(3), "numpy.ndarray"), ({"W": [1.0]}, "dict"), (None, "NoneType"),
])
def test_anything_else_is_refused_with_its_type_and_the_accepted_ones(thing, name):
    if name is None:  # a string is a path
        with pytest.raises(ModelError, match=r"model\.h5: no such file"):
            reluopt.load(thing)
        return
    with pytest.raises(UnsupportedError, match=rf"cannot load an object of type {name}; reluopt loads a file "
                                               r"path \(\.onnx.*\) or a reluopt Network, a fitted scikit-learn "
                                               r".*torch nn\.Module.*onnx\.ModelProto"):
        reluopt.load(thing)


def test_torch_default_onnx_export_loads(tmp_path):
    """torch 2.13's default ``torch.onnx.export`` (the dynamo exporter, which needs onnxscript)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    nn = torch.nn
    torch.manual_seed(4)
    mod = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    path = tmp_path / "exported.onnx"
    torch.onnx.export(mod, (torch.zeros(1, 3),), str(path))  # the default way: no dynamo=False
    # the weights go to a sidecar exported.onnx.data, which onnx.load reads from beside the model
    assert (tmp_path / "exported.onnx.data").is_file()
    net = reluopt.load(path)
    assert net.describe() == "3-16-8-2"
    x = X[:25]
    with torch.no_grad():
        ref = mod(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.forward(x), onnxruntime_forward(str(path), x), rtol=1e-5, atol=1e-5)
