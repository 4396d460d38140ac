"""PyTorch import/export, checked against torch's own forward pass."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from conftest import random_network  # noqa: E402
from reluopt.errors import ModelError, UnsupportedError  # noqa: E402
from reluopt.io import load_model  # noqa: E402
from reluopt.io.torch import from_torch, load_torch_file, to_torch  # noqa: E402


def torch_forward(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float64)).numpy()


def make_mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 10), nn.ReLU(),
        nn.Sequential(nn.Dropout(0.3), nn.Linear(10, 8), nn.ReLU6()),  # nested: flattened
        nn.Identity(),
        nn.Linear(8, 7), nn.Hardtanh(0.0, 2.5),
        nn.Linear(7, 5, bias=False), nn.ReLU(), nn.ReLU(),  # back-to-back activations
        nn.Linear(5, 3),
    ).double().eval()


def test_sequential_matches_torch_forward():
    mod = make_mlp()
    net = from_torch(mod)
    assert net.describe() == "6-10-8-7-5-5-3"
    assert [layer.activation for layer in net.layers] == [
        "relu", "clipped_relu", "clipped_relu", "relu", "relu", "identity"]
    assert [layer.tau for layer in net.layers[1:3]] == [6.0, 2.5]
    x = 3.0 * np.random.default_rng(0).normal(size=(64, 6))
    np.testing.assert_allclose(net.forward(x), torch_forward(mod, x), rtol=1e-12, atol=1e-12)


def test_image_input_is_flattened_row_major():
    torch.manual_seed(1)
    mod = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    net = from_torch(mod)
    imgs = np.random.default_rng(1).normal(size=(5, 1, 3, 4))
    np.testing.assert_allclose(net.forward(imgs.reshape(5, -1)), torch_forward(mod, imgs), atol=1e-12)


def test_float32_module_and_single_linear():
    torch.manual_seed(2)
    lin = nn.Linear(3, 2)
    net = from_torch(lin)
    assert net.depth == 0
    x = np.random.default_rng(2).normal(size=(4, 3))
    with torch.no_grad():
        ref = lin(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-6)


def test_to_torch_round_trip():
    base = random_network([4, 9, 6, 2], seed=3)
    layers = list(base.layers)
    layers[0] = type(layers[0])(layers[0].W, layers[0].b, "clipped_relu", 0.7)
    net = base.with_layers(layers)
    mod = to_torch(net, dtype=torch.float64)
    assert isinstance(mod, nn.Sequential)
    x = np.random.default_rng(3).normal(size=(50, 4))
    np.testing.assert_allclose(torch_forward(mod, x), net.forward(x), rtol=1e-13, atol=1e-13)
    back = from_torch(mod)
    for a, b in zip(back.layers, net.layers, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        assert (a.activation, a.tau) == (b.activation, b.tau)
    assert to_torch(net)[0].weight.dtype == torch.float32


def test_load_whole_module_file(tmp_path):
    mod = make_mlp(seed=4)
    path = tmp_path / "model.pt"
    torch.save(mod, path)
    # a whole pickled module is read only on request: unpickling can run code from the file
    with pytest.raises(ModelError, match=r"model\.pt: holds pickled Python objects.*trust_pickle=True"):
        load_model(path)
    net = load_model(path, trust_pickle=True)
    x = np.random.default_rng(4).normal(size=(10, 6))
    np.testing.assert_allclose(net.forward(x), torch_forward(mod, x), atol=1e-12)
    assert net.source == str(path)
    with pytest.raises(ModelError, match=r"model\.pt: holds pickled Python objects"):
        load_torch_file(path, trust_pickle=False)
    with pytest.warns(DeprecationWarning, match="allow_pickle is deprecated"):  # the old name still works
        with pytest.raises(ModelError, match=r"model\.pt: holds pickled Python objects"):
            load_torch_file(path, allow_pickle=False)
    with pytest.warns(DeprecationWarning, match="allow_pickle is deprecated"):
        np.testing.assert_array_equal(load_torch_file(path, allow_pickle=True).forward(x), net.forward(x))


def test_state_dict_and_corrupt_files(tmp_path):
    sd = tmp_path / "weights.pth"
    torch.save(make_mlp().state_dict(), sd)
    with pytest.raises(ModelError, match=r"weights\.pth: holds a state_dict \(weights without the architecture\)"
                                         r".*\n.*nn\.Sequential.*\n.*load_state_dict.*\n.*reluopt\.load\(model\)"):
        load_model(sd)
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"\x00not a torch file" * 20)
    with pytest.raises(ModelError, match=r"junk\.pt: not a readable PyTorch file"):
        load_torch_file(bad)
    with pytest.raises(ModelError, match=r"missing\.pt: no such file"):
        load_torch_file(tmp_path / "missing.pt")


@pytest.mark.parametrize("layer, cls", [
    (lambda: nn.Conv2d(1, 2, 3), "Conv2d"),
    (lambda: nn.Tanh(), "Tanh"),
    (lambda: nn.Sigmoid(), "Sigmoid"),
    (lambda: nn.BatchNorm1d(4), "BatchNorm1d"),
])
def test_unsupported_layers_name_path_and_class(layer, cls):
    mod = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), layer()), nn.Linear(4, 1))
    with pytest.raises(UnsupportedError, match=rf"module '1\.1' is a {cls}, which reluopt does not support"):
        from_torch(mod)


def test_hardtanh_with_negative_min_and_custom_modules_are_unsupported():
    with pytest.raises(UnsupportedError, match=r"module '1' \(Hardtanh\) clips to \[-1\.0, 1\.0\]"):
        from_torch(nn.Sequential(nn.Linear(2, 2), nn.Hardtanh(), nn.Linear(2, 1)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return torch.sin(self.fc(x))

    with pytest.raises(UnsupportedError, match=r"module 'Net' is a Net.*custom module"):
        from_torch(Net())
    with pytest.raises(UnsupportedError, match=r"module '0' \(ReLU\) comes before any Linear"):
        from_torch(nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    with pytest.raises(ModelError, match=r"module '1' \(Linear\) expects 3 inputs but the previous layer"):
        from_torch(nn.Sequential(nn.Linear(2, 2), nn.Linear(3, 1)))


def test_nan_weights_raise_model_error():
    lin = nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight[1, 0] = float("nan")
    with pytest.raises(ModelError, match=r"layer 0: weight matrix has a non-finite entry"):
        from_torch(nn.Sequential(lin, nn.ReLU(), nn.Linear(3, 1)))
