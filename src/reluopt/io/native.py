"""Native format: a numpy ``.npz`` holding ``W0, b0, W1, b1, ...``, activations and caps."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..network import Layer, Network

FORMAT_VERSION = 1


def save_npz(network: Network, path) -> Path:
    """Write ``network`` to ``path`` (``.npz``)."""
    path = Path(path)
    arrays = {}
    for i, layer in enumerate(network.layers):
        arrays[f"W{i}"] = layer.W
        arrays[f"b{i}"] = layer.b
    header = {
        "format": "reluopt-network",
        "version": FORMAT_VERSION,
        "activations": [layer.activation for layer in network.layers],
        "taus": [layer.tau for layer in network.layers],
        "input_names": list(network.input_names) if network.input_names else None,
        "output_names": list(network.output_names) if network.output_names else None,
        "meta": network.meta,
    }
    arrays["header"] = np.array(json.dumps(header, default=str))
    np.savez_compressed(path, **arrays)
    return path


def load_npz(path) -> Network:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            files = dict(data.items())
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: not a readable .npz file ({exc})") from None
    if "header" not in files:
        raise ModelError(f"{path}: not a reluopt network (no header entry)")
    try:
        header = json.loads(str(files["header"]))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: corrupt header ({exc})") from None
    if header.get("format") != "reluopt-network":
        raise ModelError(f"{path}: not a reluopt network file")
    acts = header["activations"]
    taus = header.get("taus") or [None] * len(acts)
    layers = []
    for i, (act, tau) in enumerate(zip(acts, taus, strict=True)):
        if f"W{i}" not in files or f"b{i}" not in files:
            raise ModelError(f"{path}: layer {i} is missing its W{i} or b{i} array")
        layers.append(Layer(files[f"W{i}"], files[f"b{i}"], act, tau))
    try:
        net = Network(tuple(layers),
                      tuple(header["input_names"]) if header.get("input_names") else None,
                      tuple(header["output_names"]) if header.get("output_names") else None,
                      source=str(path), meta=header.get("meta") or {})
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    return net
