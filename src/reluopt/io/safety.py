"""What the importers share about reading files safely: the pickle policy (``trust_pickle``, with
its deprecated alias, and the advice that ends every refusal) and the check that a path is a file.

A module of its own, below ``io/__init__`` and the importers, so that they need not import each other.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ModelError

#: Why pickles are refused and how to opt in; the end of every refusal message.
PICKLE_ADVICE = ("loading a pickle can run arbitrary code, so reluopt does not unpickle by default: "
                 "convert the model to ONNX or .npz (or skops for scikit-learn), or, if you trust the file, "
                 "pass trust_pickle=True (command line: --trust-pickle)")


def _trust(trust_pickle: bool, allow_pickle: bool | None, caller: str) -> bool:
    """``trust_pickle``, taking the deprecated ``allow_pickle`` alias into account."""
    if allow_pickle is None:
        return bool(trust_pickle)
    warnings.warn(f"{caller}: allow_pickle is deprecated, use trust_pickle", DeprecationWarning, stacklevel=3)
    if trust_pickle and not allow_pickle:
        raise ValueError(f"{caller}: trust_pickle=True and allow_pickle=False contradict each other")
    return bool(allow_pickle)


def _require_file(path: Path) -> None:
    """Raise a ``ModelError`` unless ``path`` is an existing regular file."""
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not a model file")
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
