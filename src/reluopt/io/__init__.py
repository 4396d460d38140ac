"""Importers: each source format becomes a Network. ``load_model`` picks one by extension,
or by type for an object already in memory.

Loading never runs code from a file unless asked to: pickles (``.pkl``, ``.pickle``,
``.joblib``, a whole ``nn.Module`` in ``.pt``/``.pth``) can run arbitrary code when they are
read, so they are refused unless the caller passes ``trust_pickle=True`` (``--trust-pickle``
on the command line). ONNX, ``.npz``, skops files and torch weights/TorchScript are read
without unpickling Python objects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelError, UnsupportedError
from ..network import Network
from .native import load_npz, save_npz
from .safety import PICKLE_ADVICE as PICKLE_ADVICE  # re-exported: the end of every refusal message
from .safety import _require_file, _trust

__all__ = ["load_model", "load_npz", "save_npz", "load_onnx", "save_onnx", "from_torch", "to_torch",
           "load_torch_file", "from_sklearn", "load_sklearn_file"]

# the framework importers are loaded on first use: onnx/torch/sklearn are slow to import
_LAZY = {"load_onnx": "onnx", "save_onnx": "export", "from_torch": "torch", "to_torch": "torch",
         "load_torch_file": "torch", "from_sklearn": "sklearn", "load_sklearn_file": "sklearn"}

#: File extensions ``load_model`` reads, for messages.
FORMATS = ".onnx, .npz, .skops, .pt/.pth or .pkl/.pickle/.joblib"

#: What ``load_model`` accepts besides a file path, for messages.
OBJECTS = ("a reluopt Network, a fitted scikit-learn MLPRegressor/MLPClassifier (or a Pipeline of "
           "scalers then one), a torch nn.Module (nn.Sequential of supported layers) or an onnx.ModelProto")

def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_model(source, *, trust_pickle: bool = False, allow_pickle: bool | None = None) -> Network:
    """Load a network from a file (chosen by its extension) or convert an object in memory.

    Parameters
    ----------
    source : str, os.PathLike, Network, estimator, nn.Module or onnx.ModelProto
        A file path: ``.onnx``, ``.npz`` (reluopt native), ``.skops`` (scikit-learn, safe
        format), ``.pt``/``.pth`` (TorchScript, or a pickled torch ``nn.Module``) or
        ``.pkl``/``.pickle``/``.joblib`` (a pickled scikit-learn model). Or an object: a
        ``Network`` (returned as is), a fitted scikit-learn MLP or ``Pipeline``, a torch
        ``nn.Module`` or an ``onnx.ModelProto``.
    trust_pickle : bool, default False
        Allow unpickling, which runs code from the file: needed for ``.pkl``/``.joblib``,
        a whole pickled ``nn.Module`` and skops files holding types skops does not trust.
        Only for files you trust. Ignored for the formats that need no unpickling.
    allow_pickle : bool, optional
        Deprecated alias of ``trust_pickle``.

    Returns
    -------
    Network

    Raises
    ------
    ModelError
        Missing file, a directory, an unreadable file, a pickle without ``trust_pickle``.
    UnsupportedError
        An unknown extension or object type, or a model reluopt cannot represent.
    """
    trust = _trust(trust_pickle, allow_pickle, "load_model")
    if not isinstance(source, (str, os.PathLike)):
        return _from_object(source)
    p = Path(source)
    _require_file(p)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from .onnx import load_onnx

        return load_onnx(p)
    if suffix == ".npz":
        return load_npz(p)
    if suffix in (".pt", ".pth"):
        from .torch import load_torch_file

        return load_torch_file(p, trust_pickle=trust)
    if suffix in (".pkl", ".pickle", ".joblib", ".skops"):
        from .sklearn import load_sklearn_file

        return load_sklearn_file(p, trust_pickle=trust)
    raise UnsupportedError(f"{p}: unknown model format {suffix!r}; expected {FORMATS}")


def _instance_of(obj, module: str, attr: str) -> bool:
    """``isinstance(obj, module.attr)`` if ``module`` is already imported (no import otherwise:
    an object of that type cannot exist before its module is imported)."""
    import sys

    mod = sys.modules.get(module)
    if mod is None:
        return False
    cls: Any = mod
    for part in attr.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            return False
    return isinstance(obj, cls)


def _from_object(obj) -> Network:
    """Convert an in-memory model; see ``load_model``."""
    if isinstance(obj, Network):
        return obj
    if _instance_of(obj, "torch", "nn.Module"):
        from .torch import from_torch

        return from_torch(obj)
    if _instance_of(obj, "sklearn.base", "BaseEstimator"):
        from .sklearn import from_sklearn

        return from_sklearn(obj)
    if _instance_of(obj, "onnx", "ModelProto"):
        from .onnx import from_onnx_model

        if not obj.HasField("graph") or not obj.graph.node:
            raise ModelError("<onnx.ModelProto>: not an ONNX model (no graph or an empty graph)")
        return from_onnx_model(obj)
    kind = type(obj)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    raise UnsupportedError(f"cannot load an object of type {name}; reluopt loads a file path ({FORMATS}) "
                           f"or {OBJECTS}")
