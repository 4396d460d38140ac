"""scikit-learn importer: fitted ``MLPRegressor`` / ``MLPClassifier`` (and scaler pipelines).

For a classifier the network's outputs are the *logits*, the values before ``softmax``
(multi-class) or ``logistic`` (binary / multi-label): optimising over them is linear and
``argmax`` of the logits is the predicted class (for binary, logit > 0 means ``classes_[1]``).
A ``Pipeline`` of ``StandardScaler`` / ``MinMaxScaler`` steps before the MLP is folded into
the first layer, so the network takes the *raw* features, as surrogate models are used.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..network import Layer, Network

HIDDEN_ACTIVATIONS = ("relu", "identity")
SCALERS = ("StandardScaler", "MinMaxScaler")


def from_sklearn(model, label: str = "") -> Network:
    """Convert a fitted MLP (or ``Pipeline`` of scalers then an MLP); see module docstring."""
    where = f"{label}: " if label else ""
    steps = _pipeline_steps(model, where)
    *scalers, mlp = steps
    name = type(mlp).__name__
    if name not in ("MLPRegressor", "MLPClassifier"):
        raise UnsupportedError(
            f"{where}{name} is not supported; reluopt reads MLPRegressor and MLPClassifier "
            "(optionally after StandardScaler/MinMaxScaler in a Pipeline)"
        )
    if not hasattr(mlp, "coefs_"):
        raise ModelError(f"{where}the {name} is not fitted (no coefs_)")
    if mlp.activation not in HIDDEN_ACTIVATIONS:
        raise UnsupportedError(
            f"{where}{name} has activation={mlp.activation!r}; reluopt supports "
            f"{' and '.join(repr(a) for a in HIDDEN_ACTIVATIONS)} (piecewise linear) only"
        )
    n = len(mlp.coefs_)
    layers = [
        Layer(np.asarray(W, dtype=np.float64).T, np.asarray(b, dtype=np.float64),
              mlp.activation if i < n - 1 else "identity")
        for i, (W, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True))
    ]
    meta = {"format": "sklearn", "estimator": name,
            "out_activation": getattr(mlp, "out_activation_", None)}
    if hasattr(mlp, "classes_"):
        meta["classes"] = [c.item() if hasattr(c, "item") else c for c in mlp.classes_]
    try:
        net = Network.from_affine_stack(layers, source=label, meta=meta)
        for step_name, scaler in reversed(scalers):
            net = net.with_input_affine(*_scaler_affine(scaler, step_name, where))
    except ModelError as exc:
        raise ModelError(f"{where}{exc}") from None
    names = getattr(steps[0][1] if scalers else mlp, "feature_names_in_", None)
    if names is not None and len(names) == net.input_dim:
        net = Network(net.layers, tuple(str(s) for s in names), None, net.source, net.meta)
    return net


def _pipeline_steps(model, where: str) -> list:
    """``[(name, scaler), ..., mlp]`` for a Pipeline; ``[model]`` otherwise."""
    if type(model).__name__ != "Pipeline":
        return [model]
    steps = [(n, s) for n, s in model.steps if s is not None and s != "passthrough"]
    if not steps:
        raise ModelError(f"{where}the Pipeline is empty")
    for step_name, step in steps[:-1]:
        if type(step).__name__ not in SCALERS:
            raise UnsupportedError(
                f"{where}Pipeline step '{step_name}' is a {type(step).__name__}; only "
                f"{' / '.join(SCALERS)} steps may come before the MLP"
            )
    return [*steps[:-1], steps[-1][1]]


def _scaler_affine(scaler, step_name: str, where: str):
    """(scale, shift) with ``scaler.transform(x) == scale * x + shift``."""
    kind = type(scaler).__name__
    if kind == "StandardScaler":
        if not hasattr(scaler, "n_features_in_"):
            raise ModelError(f"{where}Pipeline step '{step_name}' (StandardScaler) is not fitted")
        d = scaler.n_features_in_
        mean, sd = getattr(scaler, "mean_", None), getattr(scaler, "scale_", None)
        mean = mean if mean is not None and scaler.with_mean else np.zeros(d)
        sd = sd if sd is not None and scaler.with_std else np.ones(d)
        return 1.0 / np.asarray(sd, float), -np.asarray(mean, float) / np.asarray(sd, float)
    if not hasattr(scaler, "scale_"):
        raise ModelError(f"{where}Pipeline step '{step_name}' (MinMaxScaler) is not fitted")
    if getattr(scaler, "clip", False):
        raise UnsupportedError(f"{where}Pipeline step '{step_name}' is a MinMaxScaler with clip=True")
    return np.asarray(scaler.scale_, float), np.asarray(scaler.min_, float)


def load_sklearn_file(path, *, allow_pickle: bool = True) -> Network:
    """Read a model saved with ``joblib.dump`` or ``pickle.dump``.

    Unpickling runs code from the file: only load files you trust (``allow_pickle=False``
    refuses, for callers that must not).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    if not allow_pickle:
        raise ModelError(f"{path}: scikit-learn models are pickles and allow_pickle=False")
    try:
        import joblib

        model = joblib.load(path)
    except ImportError:  # pragma: no cover - joblib ships with scikit-learn
        model = _pickle_load(path)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable pickle/joblib file ({type(exc).__name__}: {exc})") from None
    return from_sklearn(model, label=str(path))


def _pickle_load(path: Path):  # pragma: no cover - fallback without joblib
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable pickle file ({type(exc).__name__}: {exc})") from None
