"""PyTorch import/export: ``nn.Sequential`` MLPs <-> ``Network``.

Only modules whose forward pass is known from their type are read: a ``Sequential`` (nested
ones are flattened) of ``Linear``, ``ReLU``, ``ReLU6`` / ``Hardtanh(0, tau)`` (clipped ReLU),
``Flatten`` (row-major, like the flattened input reluopt uses), ``Identity`` and ``Dropout``
(a no-op at inference). A custom ``nn.Module`` runs arbitrary Python in ``forward``, so it is
refused rather than guessed; pass its ``Sequential`` part or export it to ONNX instead.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..network import Layer, Network

SUPPORTED = "Sequential, Linear, ReLU, ReLU6, Hardtanh(min_val=0), Flatten, Identity, Dropout"


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is optional
        raise UnsupportedError(f"the PyTorch importer needs 'torch' ({exc})") from None
    return torch


def _leaves(module, prefix: str):
    """(path, module) of every non-Sequential module, in forward order."""
    nn = _torch().nn
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or type(module).__name__, module


def from_torch(module, label: str = "") -> Network:
    """Convert a ``torch.nn.Sequential`` (or a single ``Linear``) of supported layers.

    Weights are copied to float64. Raises ``UnsupportedError`` naming the module path and class
    of the first layer reluopt cannot represent.
    """
    torch = _torch()
    nn = torch.nn
    where = f"{label}: " if label else ""
    if not isinstance(module, nn.Module):
        raise ModelError(f"{where}expected a torch.nn.Module, got {type(module).__name__}")
    layers: list[Layer] = []
    width: int | None = None  # width of the tensor flowing out of the last module read
    for path, mod in _leaves(module, ""):
        if isinstance(mod, nn.Linear):
            W = mod.weight.detach().cpu().double().numpy().copy()
            b = (mod.bias.detach().cpu().double().numpy().copy() if mod.bias is not None
                 else np.zeros(W.shape[0]))
            if width is not None and W.shape[1] != width:
                raise ModelError(f"{where}module '{path}' (Linear) expects {W.shape[1]} inputs but "
                                 f"the previous layer gives {width}")
            layers.append(Layer(W, b, "identity"))
            width = W.shape[0]
        elif isinstance(mod, (nn.ReLU, nn.Hardtanh)):
            act, tau = "relu", None
            if isinstance(mod, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
                if mod.min_val != 0 or not mod.max_val > 0:
                    raise UnsupportedError(
                        f"{where}module '{path}' ({type(mod).__name__}) clips to "
                        f"[{mod.min_val}, {mod.max_val}]; only Hardtanh(min_val=0, max_val=tau>0) "
                        "is a clipped ReLU"
                    )
                act, tau = "clipped_relu", float(mod.max_val)
            if width is None:
                raise UnsupportedError(f"{where}module '{path}' ({type(mod).__name__}) comes before "
                                       "any Linear layer, so the input width is unknown")
            last = layers[-1]
            if last.activation == "identity":
                layers[-1] = Layer(last.W, last.b, act, tau)
            else:  # two activations in a row: an identity layer between them
                layers.append(Layer(np.eye(width), np.zeros(width), act, tau))
        elif isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise UnsupportedError(
                    f"{where}module '{path}' (Flatten) has start_dim={mod.start_dim}, "
                    f"end_dim={mod.end_dim}; only the default Flatten(1, -1) is supported"
                )
        elif isinstance(mod, (nn.Identity, nn.Dropout)):
            continue
        elif type(mod) is nn.Module or not isinstance(mod, nn.Module):
            raise UnsupportedError(f"{where}module '{path}' of type {type(mod).__name__} is not a layer")
        else:
            custom = (" (a custom module: its forward() cannot be read; use nn.Sequential or "
                      "export to ONNX)") if list(mod.children()) else ""
            raise UnsupportedError(
                f"{where}module '{path}' is a {type(mod).__name__}, which reluopt does not support"
                f"{custom}; supported: {SUPPORTED}"
            )
    if not layers:
        raise ModelError(f"{where}the module has no Linear layer")
    try:
        return Network.from_affine_stack(layers, source=label, meta={"format": "torch"})
    except ModelError as exc:
        raise ModelError(f"{where}{exc}") from None


def load_torch_file(path, *, allow_pickle: bool = True) -> Network:
    """Read a whole module saved by ``torch.save(model, path)``.

    A whole ``nn.Module`` can only be unpickled with ``torch.load(weights_only=False)``, which
    runs code from the file: only load files you trust. The safe loader is tried first; the
    unsafe one is used only when the file holds more than tensors and ``allow_pickle`` is true.
    A bare ``state_dict`` carries no architecture, so it is refused with a hint.
    """
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_pickle:
            raise ModelError(f"{path}: holds pickled Python objects and allow_pickle=False ({exc})") from None
        obj = _unsafe_load(torch, path)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, torch.jit.ScriptModule):
        raise UnsupportedError(f"{path}: TorchScript modules are not supported; save the nn.Module")
    if isinstance(obj, dict):
        raise ModelError(
            f"{path}: holds a dict (a state_dict?), not a module; rebuild the nn.Sequential, call "
            "load_state_dict and pass it to reluopt.io.torch.from_torch"
        )
    net = from_torch(obj, label=str(path))
    return net


def _unsafe_load(torch, path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: {exc})") from None


def to_torch(network: Network, dtype=None):
    """An ``nn.Sequential`` computing ``network`` (float32 unless ``dtype`` says otherwise).

    Clipped ReLUs become ``Hardtanh(0, tau)``. Useful to train further or benchmark on torch.
    """
    torch = _torch()
    nn = torch.nn
    dtype = dtype or torch.float32
    mods = []
    for layer in network.layers:
        lin = nn.Linear(layer.n_in, layer.n_out, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.array(layer.W), dtype=dtype))
            lin.bias.copy_(torch.tensor(np.array(layer.b), dtype=dtype))
        mods.append(lin)
        if layer.activation == "relu":
            mods.append(nn.ReLU())
        elif layer.activation == "clipped_relu":
            mods.append(nn.Hardtanh(0.0, layer.tau))
    return nn.Sequential(*mods)
