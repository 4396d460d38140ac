"""Training for tractability: penalties do what they claim, checkpoints, export equals torch."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reluopt import Network, ProblemError, UnsupportedError  # noqa: E402
from reluopt.bounds import crown_bounds, interval_bounds  # noqa: E402
from reluopt.train import build_mlp, fit, stability_penalty, train_mlp  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 2))
    Y = np.column_stack([np.sin(3 * X[:, 0]) * X[:, 1] + 0.1 * X[:, 0], X[:, 0] - X[:, 1] ** 2])
    return X, Y


def _forward_torch(model, X):
    xm, xs = model.x_scale
    ym, ys = model.y_scale
    with torch.no_grad():
        out = model.module(torch.tensor((X - xm) / xs, dtype=torch.float32)).double().numpy()
    return out * ys + ym


@pytest.mark.parametrize("activation", ["relu", "clipped_relu"])
def test_exported_network_equals_torch_forward(data, activation):
    X, Y = data
    m = train_mlp(X, Y, hidden=[12, 10], activation=activation, tau=0.8, dropout=0.2, epochs=5,
                  lr=1e-2, seed=1, threads=1)
    assert isinstance(m.network, Network)
    assert m.network.has_clipped == (activation == "clipped_relu")
    Xt = np.random.default_rng(5).uniform(-1.5, 1.5, (200, 2))
    np.testing.assert_allclose(m.network.forward(Xt), _forward_torch(m, Xt), rtol=1e-5, atol=1e-5)


def test_seed_makes_training_repeatable(data):
    X, Y = data
    a = train_mlp(X, Y, hidden=[8], epochs=3, seed=3, threads=1, dropout=0.1)
    b = train_mlp(X, Y, hidden=[8], epochs=3, seed=3, threads=1, dropout=0.1)
    c = train_mlp(X, Y, hidden=[8], epochs=3, seed=4, threads=1, dropout=0.1)
    for la, lb in zip(a.network.layers, b.network.layers, strict=True):
        np.testing.assert_array_equal(la.W, lb.W)
    assert not np.array_equal(a.network.layers[0].W, c.network.layers[0].W)
    assert a.history.column("loss").tolist() == b.history.column("loss").tolist()


def _settings():
    return dict(hidden=[16, 16], epochs=40, lr=1e-2, threads=1)


def test_l1_gives_more_near_zero_weights(data):
    X, Y = data
    for seed in (0, 1):
        plain = train_mlp(X, Y, seed=seed, **_settings()).network
        sparse = train_mlp(X, Y, seed=seed, l1=1e-3, **_settings()).network

        def small(net):
            W = np.concatenate([l.W.ravel() for l in net.layers[1:]])  # unaffected by input scaling
            return np.mean(np.abs(W) < 1e-2)

        assert small(sparse) > small(plain) + 0.2


def test_stability_penalty_gives_more_stable_neurons(data):
    X, Y = data
    lb, ub = X.min(axis=0), X.max(axis=0)
    for seed in (0, 1):
        plain = train_mlp(X, Y, seed=seed, **_settings()).network
        stable = train_mlp(X, Y, seed=seed, stability=1.0, stability_eps=1.0, **_settings()).network
        for bounds in (interval_bounds, crown_bounds):
            assert (bounds(stable, lb, ub).stable_fraction(stable)
                    >= bounds(plain, lb, ub).stable_fraction(plain) + 0.2)


def test_stability_penalty_is_low_for_stable_and_high_for_unstable_neurons():
    lin = torch.nn.Linear(1, 2)
    with torch.no_grad():
        lin.weight[:] = torch.tensor([[1.0], [1.0]])
        lin.bias[:] = torch.tensor([5.0, 0.0])  # neuron 0 stable on [-1, 1], neuron 1 not
    net = torch.nn.Sequential(lin, torch.nn.ReLU(), torch.nn.Linear(2, 1))
    x = torch.zeros(1, 1)
    pen = stability_penalty(net, x, 1.0)
    assert pen.item() == pytest.approx(0.5 * (-np.tanh(1 + 4 * 6) - np.tanh(1 - 1)), abs=1e-6)


def test_checkpoints_written_in_order_and_loadable(data, tmp_path):
    X, Y = data
    seen = []
    m = train_mlp(X, Y, hidden=[8, 8], epochs=7, seed=0, threads=1, checkpoint_every=3,
                  checkpoint_dir=tmp_path / "ck", on_checkpoint=lambda e, n: seen.append(e))
    assert seen == [0, 3, 6, 7] == m.history.checkpoint_epochs
    index = json.loads((tmp_path / "ck" / "index.json").read_text())
    assert index["epochs"] == [0, 3, 6, 7]
    assert index["checkpoints"] == sorted(index["checkpoints"])
    from reluopt.inversion.surfing import load_checkpoints

    loaded = load_checkpoints(tmp_path / "ck")
    assert len(loaded) == len(m.checkpoints) == 4
    for a, b in zip(loaded, m.checkpoints, strict=True):
        np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)
    # the last checkpoint is the final network; the first is the untrained one
    np.testing.assert_array_equal(m.checkpoints[-1].forward(X[:5]), m.network.forward(X[:5]))
    assert not np.allclose(m.checkpoints[0].forward(X[:5]), m.network.forward(X[:5]))


def test_fit_any_module_with_a_decoder_checkpoint(tmp_path):
    """An autoencoder: fit the whole module, checkpoint only its decoder."""
    from reluopt.io.torch import from_torch

    class AE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            self.decoder = build_mlp(2, [8], 6)

        def forward(self, x):
            return self.decoder(self.encoder(x))

    def decoder_net(module):
        return from_torch(module.decoder)

    X = np.random.default_rng(0).normal(size=(64, 6))
    torch.manual_seed(0)
    ae = AE()
    h = fit(ae, X, X, epochs=4, batch_size=16, lr=1e-2, seed=0, checkpoint_every=2,
            checkpoint_dir=tmp_path, checkpoint_network=decoder_net, validation=(X[:8], X[:8]),
            stability=0.1, stability_module=ae.decoder,
            stability_input=lambda mod, x: mod.encoder(x))
    assert h.checkpoint_epochs == [0, 2, 4]
    assert np.all(np.isfinite(h.column("val_loss")))
    from reluopt.io import load_npz

    dec = load_npz(tmp_path / h.checkpoint_files[-1])
    z = np.random.default_rng(1).normal(size=(5, 2))
    with torch.no_grad():
        ref = ae.decoder(torch.tensor(z, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(dec.forward(z), ref, rtol=1e-5, atol=1e-5)


def test_onnx_export_matches_onnxruntime(data, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    X, Y = data
    m = train_mlp(X, Y, hidden=[8], epochs=2, seed=0, threads=1)
    paths = m.save(tmp_path)
    sess = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    dtype = np.float64 if "double" in sess.get_inputs()[0].type else np.float32
    out = sess.run(None, {name: X[:10].astype(dtype)})[0]
    np.testing.assert_allclose(out, m.network.forward(X[:10]), rtol=1e-4, atol=1e-4)
    from reluopt.io import load_npz

    np.testing.assert_array_equal(load_npz(paths["npz"]).forward(X[:3]), m.network.forward(X[:3]))


def test_bad_arguments_are_clear(data):
    X, Y = data
    with pytest.raises(ProblemError, match="activation"):
        train_mlp(X, Y, hidden=[4], activation="tanh", epochs=1)
    with pytest.raises(ProblemError, match="same n"):
        train_mlp(X, Y[:10], hidden=[4], epochs=1)
    with pytest.raises(ProblemError, match="checkpoint_every"):
        train_mlp(X, Y, hidden=[4], epochs=1, checkpoint_every=0)
    with pytest.raises(ProblemError, match="Tanh"):
        fit(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)), X, Y,
            epochs=1, stability=1.0)
    with pytest.raises(ProblemError, match="NaN"):
        train_mlp(np.full_like(X, np.nan), Y, hidden=[4], epochs=1)


def test_missing_torch_names_the_extra(monkeypatch):
    from reluopt import train

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UnsupportedError, match="'torch' extra"):
        train._torch()
