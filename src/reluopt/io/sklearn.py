"""scikit-learn importer: fitted ``MLPRegressor`` / ``MLPClassifier`` (and scaler pipelines).

For a classifier the network's outputs are the *logits*, the values before ``softmax``
(multi-class) or ``logistic`` (binary / multi-label): optimising over them is linear and
``argmax`` of the logits is the predicted class (for binary, logit > 0 means ``classes_[1]``).
A ``Pipeline`` of ``StandardScaler`` / ``MinMaxScaler`` steps before the MLP is folded into
the first layer, so the network takes the *raw* features, as surrogate models are used.

Files: the skops format (``.skops``) is read safely; pickles (``.pkl``, ``.joblib``) only with
``trust_pickle=True``, since unpickling can run arbitrary code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..network import Layer, Network
from .safety import PICKLE_ADVICE, _require_file, _trust

HIDDEN_ACTIVATIONS = ("relu", "identity")
SCALERS = ("StandardScaler", "MinMaxScaler")


def from_sklearn(model, label: str = "") -> Network:
    """Convert a fitted MLP (or ``Pipeline`` of scalers then an MLP); see module docstring.

    Parameters
    ----------
    model : sklearn estimator
        A fitted ``MLPRegressor`` / ``MLPClassifier`` with ``relu`` or ``identity`` hidden
        activations, or a ``Pipeline`` of ``StandardScaler`` / ``MinMaxScaler`` steps then one.
    label : str, optional
        Prefix of error messages and the network's ``source`` (a file name, say).

    Returns
    -------
    Network
        The scalers folded into the first layer; a classifier's outputs are its logits.

    Raises
    ------
    UnsupportedError
        Another estimator, pipeline step or activation.
    ModelError
        An unfitted estimator or malformed weights.
    """
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


#: Types a fitted MLP holds that skops does not trust by default; plain scikit-learn classes
#: whose state skops restores attribute by attribute, without running code from the file.
SKOPS_TRUSTED = (
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


def load_sklearn_file(path, *, trust_pickle: bool = False, allow_pickle: bool | None = None) -> Network:
    """Read a scikit-learn model from a skops file, or (when trusted) a pickle / joblib file.

    A ``.skops`` file (``skops.io.dump``) is read with ``skops.io.load``, which rebuilds only
    the types it trusts: scikit-learn's and numpy's, plus the MLP optimizers in
    ``SKOPS_TRUSTED``. Any other type in the file (``skops.io.get_untrusted_types``) is
    refused unless ``trust_pickle`` is true. ``.pkl``/``.pickle``/``.joblib`` files are
    pickles, and unpickling can run arbitrary code: they are read only with ``trust_pickle``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.skops``, ``.pkl``, ``.pickle`` or ``.joblib`` file.
    trust_pickle : bool, default False
        Allow unpickling a pickle/joblib file, or the untrusted types of a skops file. Only
        for files you trust.
    allow_pickle : bool, optional
        Deprecated alias of ``trust_pickle``.

    Returns
    -------
    Network
        As ``from_sklearn`` converts the estimator.

    Raises
    ------
    ModelError
        Missing or unreadable file, a pickle (or untrusted skops types) without
        ``trust_pickle``, a pickled class that cannot be imported here.
    UnsupportedError
        An estimator reluopt cannot represent, or ``skops`` missing for a ``.skops`` file.
    """
    trust = _trust(trust_pickle, allow_pickle, "load_sklearn_file")
    path = Path(path)
    _require_file(path)
    if path.suffix.lower() == ".skops":
        return from_sklearn(_skops_load(path, trust), label=str(path))
    if not trust:
        raise ModelError(f"{path}: is a pickle (a scikit-learn model saved with pickle or joblib); "
                         f"{PICKLE_ADVICE}")
    try:
        import joblib

        model = joblib.load(path)
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "joblib":  # pragma: no cover
            model = _pickle_load(path)
        else:
            raise _missing_class(path, exc) from None
    except AttributeError as exc:
        raise _missing_class(path, exc) from None
    except Exception as exc:
        raise ModelError(f"{path}: not a readable pickle/joblib file ({type(exc).__name__}: {exc})") from None
    return from_sklearn(model, label=str(path))


def _missing_class(path: Path, exc: BaseException) -> ModelError:
    return ModelError(
        f"{path}: the pickle needs a class that cannot be imported here ({exc}); a class defined in a "
        "script or a module that is not installed cannot be unpickled elsewhere: save the model with "
        "skops or export it to ONNX, or load it in Python where its class is defined and pass the "
        "estimator to reluopt.load"
    )


def _skops_load(path: Path, trust: bool):
    try:
        import skops.io as sio
    except ImportError as exc:
        raise UnsupportedError(f"{path}: reading .skops files needs the 'skops' package ({exc}); "
                               "pip install 'reluopt[sklearn]'") from None
    try:
        untrusted = list(sio.get_untrusted_types(file=path))
    except Exception as exc:
        raise ModelError(f"{path}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    unknown = [t for t in untrusted if t not in SKOPS_TRUSTED]
    if unknown and not trust:
        raise ModelError(
            f"{path}: holds types that skops does not trust ({', '.join(unknown)}); loading them can run "
            "code from the file: save only the fitted estimator (an MLP or a Pipeline of scalers and an MLP), "
            "or, if you trust the file, pass trust_pickle=True (command line: --trust-pickle)"
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable skops file ({type(exc).__name__}: {exc})") from None


def _pickle_load(path: Path):  # pragma: no cover - fallback without joblib
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (AttributeError, ImportError) as exc:
        raise _missing_class(path, exc) from None
    except Exception as exc:
        raise ModelError(f"{path}: not a readable pickle file ({type(exc).__name__}: {exc})") from None


def classifier_note(network: Network) -> str | None:
    """What the outputs of a network imported from an ``MLPClassifier`` mean, or None.

    reluopt optimises the logits (the values before softmax / logistic), which is linear
    and exact; the difference of two logits is the log-ratio of the two class
    probabilities, so a class margin is a logit difference.

    Parameters
    ----------
    network
        Any network; only one imported from an ``MLPClassifier`` gets a note.

    Returns
    -------
    str or None
        One sentence for reports and the README's convention, or None.
    """
    meta = network.meta or {}
    if meta.get("estimator") != "MLPClassifier":
        return None
    classes = meta.get("classes") or []
    if meta.get("out_activation") == "softmax":
        return (f"the outputs are the classifier's logits for classes {classes} (before softmax): "
                "y[i] - y[j] = log(p_i / p_j), so maximise 'y[i] - y[j]' for a class margin")
    if network.output_dim == 1 and len(classes) == 2:
        return (f"y[0] is the classifier's logit of class {classes[1]!r} (before the logistic): "
                f"y[0] = log(p / (1 - p)), and y[0] > 0 means class {classes[1]!r}")
    return "the outputs are the classifier's logits (before the logistic), one per label"
