"""Importers: each source format becomes a Network. ``load_model`` picks one by extension."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError, UnsupportedError
from ..network import Network
from .native import load_npz, save_npz

__all__ = ["load_model", "load_npz", "save_npz"]


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
