"""Importers: each source format becomes a Network. ``load_model`` picks one by extension."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError, UnsupportedError
from ..network import Network
from .native import load_npz, save_npz

__all__ = ["load_model", "load_npz", "save_npz", "load_onnx", "save_onnx", "from_torch", "to_torch",
           "load_torch_file", "from_sklearn", "load_sklearn_file"]

# the framework importers are loaded on first use: onnx/torch/sklearn are slow to import
_LAZY = {"load_onnx": "onnx", "save_onnx": "export", "from_torch": "torch", "to_torch": "torch",
         "load_torch_file": "torch", "from_sklearn": "sklearn", "load_sklearn_file": "sklearn"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_model(path, **kwargs) -> Network:
    """Load a network by file extension: ``.onnx``, ``.npz`` (native), ``.pt``/``.pth``
    (a pickled torch ``nn.Sequential``), ``.pkl``/``.joblib`` (a scikit-learn MLP)."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from .onnx import load_onnx

        return load_onnx(p, **kwargs)
    if suffix == ".npz":
        return load_npz(p)
    if suffix in (".pt", ".pth"):
        from .torch import load_torch_file

        return load_torch_file(p, **kwargs)
    if suffix in (".pkl", ".pickle", ".joblib"):
        from .sklearn import load_sklearn_file

        return load_sklearn_file(p, **kwargs)
    raise UnsupportedError(
        f"{p}: unknown model format {suffix!r}; expected .onnx, .npz, .pt/.pth or .pkl/.joblib"
    )
