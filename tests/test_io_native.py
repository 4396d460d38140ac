"""Native .npz format and ``load_model`` dispatch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import random_network
from reluopt import Network
from reluopt.errors import ModelError, UnsupportedError
from reluopt.io import load_model, load_npz, save_npz
from reluopt.network import Layer


def clipped_net() -> Network:
    base = random_network([3, 6, 5, 2], seed=11)
    layers = list(base.layers)
    layers[1] = Layer(layers[1].W, layers[1].b, "clipped_relu", 1.25)
    return Network(tuple(layers), ("a", "b", "c"), ("u", "v"), meta={"input_shape": [1, 3], "note": "x"})


def test_round_trip_is_exact(tmp_path):
    net = clipped_net()
    path = save_npz(net, tmp_path / "net.npz")
    back = load_model(path)
    assert back.input_names == ("a", "b", "c") and back.output_names == ("u", "v")
    assert back.meta == {"input_shape": [1, 3], "note": "x"}
    assert back.source == str(path)
    for a, b in zip(back.layers, net.layers, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
        assert (a.activation, a.tau) == (b.activation, b.tau)
    x = np.random.default_rng(0).normal(size=(20, 3))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_imported_onnx_meta_survives_npz(tmp_path, shared_data):
    pytest.importorskip("onnx")
    net = load_model(shared_data / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    back = load_npz(save_npz(net, tmp_path / "acas.npz"))
    assert back.meta["input_shape"] == [1, 1, 1, 5]
    x = np.random.default_rng(1).uniform(-1, 1, size=(5, 5))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelError, match=r"nothing\.npz: no such file"):
        load_model(tmp_path / "nothing.npz")
    other = tmp_path / "model.h5"
    other.write_bytes(b"x")
    with pytest.raises(UnsupportedError, match=r"model\.h5: unknown model format '\.h5'"):
        load_model(other)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match=r"bad\.npz: not a readable \.npz file"):
        load_model(bad)
    plain = tmp_path / "plain.npz"
    np.savez(plain, W0=np.eye(2))
    with pytest.raises(ModelError, match=r"plain\.npz: not a reluopt network \(no header"):
        load_model(plain)


def test_missing_array_and_nan_weights_name_the_file(tmp_path):
    net = random_network([2, 3, 1], seed=2)
    path = save_npz(net, tmp_path / "n.npz")
    with np.load(path) as data:
        arrays = dict(data.items())
    broken = dict(arrays)
    del broken["W1"]
    np.savez(tmp_path / "missing.npz", **broken)
    with pytest.raises(ModelError, match=r"missing\.npz: layer 1 is missing its W1 or b1"):
        load_npz(tmp_path / "missing.npz")
    nan = dict(arrays)
    nan["W0"] = arrays["W0"].copy()
    nan["W0"][2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", **nan)
    with pytest.raises(ModelError, match=r"nan\.npz: layer 0: weight matrix has a non-finite entry .* row 2"):
        load_npz(tmp_path / "nan.npz")
    header = json.loads(str(arrays["header"]))
    header["format"] = "something-else"
    np.savez(tmp_path / "fmt.npz", **{**arrays, "header": np.array(json.dumps(header))})
    with pytest.raises(ModelError, match=r"fmt\.npz: not a reluopt network file"):
        load_npz(tmp_path / "fmt.npz")
