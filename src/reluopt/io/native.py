"""Native format: a numpy ``.npz`` holding ``W0, b0, W1, b1, ...``, activations and their
parameters (clipped-ReLU caps ``taus``, leaky-ReLU negative slopes ``alphas``)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..network import Layer, Network

FORMAT_VERSION = 1


def save_npz(network: Network, path) -> Path:
    """Write ``network`` to ``path`` (``.npz``: the weights and a JSON header).

    Parameters
    ----------
    network : Network
        The network to write (activations, names and meta included).
    path : str or Path
        The output file.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    arrays: dict[str, Any] = {}      # keyword arrays of np.savez_compressed
    for i, layer in enumerate(network.layers):
        arrays[f"W{i}"] = layer.W
        arrays[f"b{i}"] = layer.b
    header = {
        "format": "reluopt-network",
        "version": FORMAT_VERSION,
        "activations": [layer.activation for layer in network.layers],
        "taus": [layer.tau for layer in network.layers],
        "alphas": [layer.alpha for layer in network.layers],
        "input_names": list(network.input_names) if network.input_names else None,
        "output_names": list(network.output_names) if network.output_names else None,
        "meta": network.meta,
    }
    arrays["header"] = np.array(json.dumps(header, default=str))
    np.savez_compressed(path, **arrays)
    return path


def load_npz(path) -> Network:
    """Read a network written by ``save_npz``.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.

    Returns
    -------
    Network
        The network, with its names and meta.

    Raises
    ------
    ModelError
        A malformed file (empty, not a zip, no header, a header that does not match the
        arrays), naming the file and the entry at fault.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a .npz file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(6)
        if not magic:
            raise ModelError(f"{path}: not a readable .npz file (the file is empty: 0 bytes)")
        if magic.startswith(b"\x93NUMPY"):
            raise ModelError(f"{path}: not a readable .npz file (it holds a single numpy array in .npy format, "
                             "not an archive of W0, b0, ..., header)")
        if not magic.startswith(b"PK"):
            raise ModelError(f"{path}: not a readable .npz file (it does not start with a zip header)")
        with np.load(path, allow_pickle=False) as data:
            files = dict(data.items())
    except ModelError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError) as exc:
        raise ModelError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if not files:
        raise ModelError(f"{path}: the .npz archive holds no arrays (expected W0, b0, ..., header)")
    if "header" not in files:
        raise ModelError(f"{path}: not a reluopt network (no header entry; arrays: {_names(files)})")
    header = _read_header(path, files["header"])
    acts = header.get("activations")
    if acts is None:
        raise ModelError(f"{path}: the header has no 'activations' list (one activation name per layer)")
    if not isinstance(acts, list) or not all(isinstance(a, str) for a in acts):
        raise ModelError(f"{path}: header entry 'activations' must be a list of activation names, got "
                         f"{_short(acts)}")
    n_layers = _count_layers(path, files)
    if len(acts) != n_layers:
        few = "too few" if len(acts) < n_layers else "too many"
        raise ModelError(f"{path}: the header lists {len(acts)} activations for {n_layers} layers "
                         f"(arrays W0..W{n_layers - 1}): {few} activations")
    params = {}
    for key, what, one in (("taus", "caps", "cap tau"), ("alphas", "negative slopes", "negative slope alpha")):
        values = header.get(key)
        if values is None:
            values = [None] * n_layers
        if not isinstance(values, list) or len(values) != n_layers:
            raise ModelError(f"{path}: header entry '{key}' must be a list of {n_layers} {what} (null for none), "
                             f"got {_short(values)}")
        for i, v in enumerate(values):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ModelError(f"{path}: layer {i}: {one} must be a number or null, got {v!r}")
        params[key] = values
    names = {}
    for key in ("input_names", "output_names"):
        value = header.get(key)
        if value and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise ModelError(f"{path}: header entry {key!r} must be a list of strings, got {_short(value)}")
        names[key] = tuple(value) if value else None
    meta = header.get("meta") or {}
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: header entry 'meta' must be an object, got {_short(meta)}")
    layers = [Layer(files[f"W{i}"], files[f"b{i}"], act, tau, alpha)
              for i, (act, tau, alpha) in enumerate(zip(acts, params["taus"], params["alphas"], strict=True))]
    try:
        net = Network(tuple(layers), names["input_names"], names["output_names"], source=str(path), meta=meta)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    return net


def _names(files: dict) -> str:
    keys = sorted(files)
    return ", ".join(keys[:8]) + (f", ... ({len(keys)} arrays)" if len(keys) > 8 else "")


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_header(path: Path, entry: np.ndarray) -> dict:
    if entry.ndim != 0 or entry.dtype.kind not in "US":
        raise ModelError(f"{path}: corrupt header (a {entry.dtype} array of shape {entry.shape}, "
                         "expected a JSON string)")
    try:
        header = json.loads(str(entry))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: corrupt header ({exc})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: corrupt header (a JSON {type(header).__name__}, expected an object)")
    if header.get("format") != "reluopt-network":
        raise ModelError(f"{path}: not a reluopt network file (header format {header.get('format')!r})")
    version = header.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelError(f"{path}: header version {version!r}; this reluopt reads version {FORMAT_VERSION} "
                         "(written by a newer reluopt?)")
    return header


def _count_layers(path: Path, files: dict) -> int:
    """The number of layers: W0, b0, W1, b1, ... with no gap and nothing unexpected."""
    n = 0
    while f"W{n}" in files or f"b{n}" in files:
        for key in (f"W{n}", f"b{n}"):
            if key not in files:
                raise ModelError(f"{path}: layer {n} is missing its W{n} or b{n} array (no {key})")
        n += 1
    if n == 0:
        raise ModelError(f"{path}: no layers (no W0/b0 arrays; arrays: {_names(files)})")
    stray = sorted(k for k in files if re.fullmatch(r"[Wb]\d+", k) and int(k[1:]) >= n)
    if stray:
        raise ModelError(f"{path}: array {stray[0]!r} does not follow the layers W0, b0, ..., W{n - 1}, "
                         f"b{n - 1} (a layer in between is missing)")
    return n
