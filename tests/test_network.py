import numpy as np
import pytest

from conftest import random_network
from reluopt import ModelError, Network


def test_forward_matches_manual():
    net = random_network([3, 5, 4, 2], seed=1)
    x = np.random.default_rng(0).normal(size=(7, 3))
    h = x
    for layer in net.layers[:-1]:
        h = np.maximum(h @ layer.W.T + layer.b, 0)
    y = h @ net.layers[-1].W.T + net.layers[-1].b
    np.testing.assert_allclose(net.forward(x), y)
    np.testing.assert_allclose(net.forward(x[0]), y[0])


def test_region_affine_and_gradient_match_finite_differences():
    net = random_network([3, 6, 6, 2], seed=2)
    rng = np.random.default_rng(1)
    c = np.array([1.0, -2.0])
    for x in rng.normal(size=(5, 3)):
        pattern = [p[0] for p in net.phase_pattern(x[None])]
        pre, (T, t) = net.region_affine(pattern)
        np.testing.assert_allclose(T @ x + t, net.forward(x), atol=1e-12)
        for (A, b), g in zip(pre, net.preactivations(x[None]), strict=True):
            np.testing.assert_allclose(A @ x + b, g[0], atol=1e-12)
        grad = net.gradient(x, c)
        np.testing.assert_allclose(grad, c @ T, atol=1e-12)
        eps = 1e-7
        fd = [(c @ net.forward(x + eps * e) - c @ net.forward(x - eps * e)) / (2 * eps)
              for e in np.eye(3)]
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


def test_clipped_relu_forward_and_region():
    net = Network.from_weights(
        [(np.array([[1.0], [-1.0]]), np.zeros(2)), (np.array([[1.0, 1.0]]), np.zeros(1))],
        activations=["clipped_relu", "identity"], taus=[0.5, None])
    xs = np.linspace(-2, 2, 41)[:, None]
    expected = np.clip(xs, 0, 0.5) + np.clip(-xs, 0, 0.5)
    np.testing.assert_allclose(net.forward(xs), expected)
    for x in xs:
        pattern = [p[0] for p in net.phase_pattern(x[None])]
        _, (T, t) = net.region_affine(pattern)
        np.testing.assert_allclose(T @ x + t, net.forward(x), atol=1e-12)


@pytest.mark.parametrize(
    "weights, message",
    [
        ([(np.ones((3, 2)), np.ones(3)), (np.ones((1, 4)), np.ones(1))], "expects 4 inputs"),
        ([(np.ones((3, 2)), np.ones(2)), (np.ones((1, 3)), np.ones(1))], "bias has shape"),
        ([(np.array([[1.0, np.nan]]), np.ones(1)), (np.ones((1, 1)), np.ones(1))], "layer 0"),
        ([(np.ones((1, 2)), np.ones(1)), (np.ones((1, 1)), np.array([np.inf]))], "layer 1"),
    ],
)
def test_invalid_networks_are_named(weights, message):
    with pytest.raises(ModelError, match=message):
        Network.from_weights(weights)


def test_wrong_input_shape_is_reported():
    net = random_network([3, 4, 1])
    with pytest.raises(ModelError, match="expects 3 inputs"):
        net.forward(np.zeros(2))


def test_affine_stack_merges_consecutive_affine_layers():
    rng = np.random.default_rng(0)
    from reluopt import Layer

    a = Layer(rng.normal(size=(4, 3)), rng.normal(size=4), "identity")
    b = Layer(rng.normal(size=(5, 4)), rng.normal(size=5), "relu")
    c = Layer(rng.normal(size=(2, 5)), rng.normal(size=2), "relu")
    net = Network.from_affine_stack([a, b, c])
    x = rng.normal(size=(6, 3))
    h = np.maximum((x @ a.W.T + a.b) @ b.W.T + b.b, 0)
    y = np.maximum(h @ c.W.T + c.b, 0)
    np.testing.assert_allclose(net.forward(x), y, atol=1e-12)
    assert net.depth == 2
