"""PyTorch import/export: ``nn.Sequential`` MLPs <-> ``Network``.

Only modules whose forward pass is known from their type are read: a ``Sequential`` (nested
ones are flattened) of ``Linear``, ``ReLU``, ``ReLU6`` / ``Hardtanh(0, tau)`` (clipped ReLU),
``LeakyReLU(negative_slope)`` (0 <= negative_slope < 1), ``Flatten`` (row-major, like the
flattened input reluopt uses), ``Identity`` and ``Dropout`` (a no-op at inference). A custom
``nn.Module`` runs arbitrary Python in ``forward``, so it is refused rather than guessed; pass
its ``Sequential`` part or export it to ONNX instead.

Files: a TorchScript archive (``torch.jit.save``) of such a ``Sequential`` is read without
unpickling Python objects; a ``state_dict`` is refused with the lines of Python that load it;
a whole pickled module (``torch.save(model)``) is unpickled only with ``trust_pickle=True``,
since unpickling can run arbitrary code.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..network import Layer, Network
from .safety import PICKLE_ADVICE, _require_file, _trust

SUPPORTED = "Sequential, Linear, ReLU, ReLU6, Hardtanh(min_val=0), LeakyReLU, Flatten, Identity, Dropout"


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

    Parameters
    ----------
    module : torch.nn.Module
        An ``nn.Sequential`` (nested ones are flattened) of the layers listed in the module
        docstring, a single ``Linear``, or a TorchScript module (``torch.jit.script`` /
        ``torch.jit.trace`` / ``torch.jit.load``) of such a ``Sequential``.
    label : str, optional
        Prefix of error messages and the network's ``source`` (a file name, say).

    Returns
    -------
    Network
        Weights copied to float64.

    Raises
    ------
    UnsupportedError
        Names the module path and class of the first layer reluopt cannot represent.
    ModelError
        Not a module, no ``Linear`` layer, or mismatched widths.
    """
    torch = _torch()
    nn = torch.nn
    where = f"{label}: " if label else ""
    if not isinstance(module, nn.Module):
        raise ModelError(f"{where}expected a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, torch.jit.ScriptModule):
        module = _from_script(module, where)
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
        elif isinstance(mod, (nn.ReLU, nn.Hardtanh, nn.LeakyReLU)):
            act, tau, alpha = "relu", None, None
            if isinstance(mod, nn.LeakyReLU):
                slope = float(mod.negative_slope)
                if not 0.0 <= slope < 1.0:
                    raise UnsupportedError(f"{where}module '{path}' (LeakyReLU) has negative_slope={slope}; only "
                                           "0 <= negative_slope < 1 is a leaky ReLU max(g, slope g)")
                if slope > 0:
                    act, alpha = "leaky_relu", slope
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
                layers[-1] = Layer(last.W, last.b, act, tau, alpha)
            else:  # two activations in a row: an identity layer between them
                layers.append(Layer(np.eye(width), np.zeros(width), act, tau, alpha))
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


def load_torch_file(path, *, trust_pickle: bool = False, allow_pickle: bool | None = None) -> Network:
    """Read a network from a PyTorch file, without running code from it unless trusted.

    A TorchScript archive (``torch.jit.save``) is read with ``torch.jit.load``, which unpickles
    no Python objects, and converted if it is a ``Sequential`` of supported layers. Any other
    file is read with ``torch.load(weights_only=True)``: a ``state_dict`` holds no
    architecture, so it is refused with the three lines of Python that load it. A whole
    pickled ``nn.Module`` (``torch.save(model, path)``) can only be read by unpickling, which
    can run arbitrary code: it is refused unless ``trust_pickle`` is true.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.pt``/``.pth`` file.
    trust_pickle : bool, default False
        Allow ``torch.load(weights_only=False)`` for a file that holds a pickled module. Only
        for files you trust.
    allow_pickle : bool, optional
        Deprecated alias of ``trust_pickle``.

    Returns
    -------
    Network

    Raises
    ------
    ModelError
        Missing or unreadable file, a state_dict, a pickle without ``trust_pickle``, a pickled
        class that cannot be imported here.
    UnsupportedError
        A module or TorchScript archive reluopt cannot convert.
    """
    trust = _trust(trust_pickle, allow_pickle, "load_torch_file")
    torch = _torch()
    path = Path(path)
    _require_file(path)
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; reading it is still fine
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelError(f"{path}: not a readable TorchScript archive ({type(exc).__name__}: "
                             f"{_first_line(exc)})") from None
        return from_torch(module, label=str(path))
    try:
        with warnings.catch_warnings():  # noise about the pickle protocol of a file that may not be torch's
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust:
            raise _refusal(path, exc) from None
        obj = _unsafe_load(torch, path)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: {_first_line(exc)})") from None
    if isinstance(obj, Mapping):
        raise ModelError(_state_dict_message(torch, path, obj))
    if not isinstance(obj, torch.nn.Module):
        raise ModelError(f"{path}: holds a {type(obj).__name__}, not an nn.Module")
    return from_torch(obj, label=str(path))


def _refusal(path: Path, exc: pickle.UnpicklingError) -> ModelError:
    """Why ``torch.load(weights_only=True)`` refused ``path``, and how to opt in."""
    text = str(exc)
    blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if blocked:  # a pickle of Python objects: a whole module, or a payload
        return ModelError(f"{path}: holds pickled Python objects, not just weights (a whole module saved with "
                          f"torch.save(model)? it references {blocked.group(1)}); {PICKLE_ADVICE}")
    detail = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0] if text.strip() else ""
    with open(path, "rb") as fh:
        is_pickle = fh.read(1) == b"\x80"  # the PROTO opcode that starts every pickle of protocol 2+
    if is_pickle:  # a plain pickle.dump, or objects the weights-only unpickler cannot read
        return ModelError(f"{path}: holds pickled Python objects that torch.load(weights_only=True) cannot read "
                          f"({detail}); {PICKLE_ADVICE}")
    return ModelError(f"{path}: not a readable PyTorch file ({detail}); if it is a pickle you trust, pass "
                      "trust_pickle=True (command line: --trust-pickle)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _is_torchscript(path: Path) -> bool:
    """A ``torch.jit.save`` archive: a zip with a ``constants.pkl`` record (what torch checks)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.rsplit("/", 1)[-1] == "constants.pkl" for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _unsafe_load(torch, path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ImportError) as exc:  # ModuleNotFoundError is an ImportError
        raise ModelError(
            f"{path}: the pickle needs a class that cannot be imported here ({_first_line(exc)}); a model "
            "class defined in a script or a module that is not installed cannot be unpickled elsewhere: "
            "export the model to ONNX (torch.onnx.export), or load it in Python where its class is "
            "defined and pass the module to reluopt.load"
        ) from None
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: {_first_line(exc)})") from None


def _state_dict_message(torch, path: Path, obj: Mapping) -> str:
    key = next((k for k in ("state_dict", "model_state_dict", "model") if isinstance(obj.get(k), Mapping)), None)
    weights = obj[key] if key else obj
    if not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return f"{path}: holds a dict (keys {', '.join(map(repr, list(obj)[:5]))}), not a model"
    index = f"[{key!r}]" if key else ""
    what = f"a checkpoint whose {key!r} entry is a state_dict" if key else "a state_dict"
    return (f"{path}: holds {what} (weights without the architecture), not a model; rebuild the model "
            "in Python and pass it to reluopt:\n"
            "    model = torch.nn.Sequential(...)  # the layers the weights were saved from\n"
            f"    model.load_state_dict(torch.load({str(path)!r}){index})\n"
            "    net = reluopt.load(model)  # or reluopt.io.from_torch(model)")


# ------------------------------------------------------------------------------ TorchScript
#: TorchScript class names (``__torch__.`` + the eager class path) of the layers read.
_SCRIPT_LAYERS = {
    f"__torch__.torch.nn.modules.{name}": name.rsplit(".", 1)[1]
    for name in ("container.Sequential", "linear.Linear", "linear.Identity", "activation.ReLU",
                 "activation.ReLU6", "activation.Hardtanh", "activation.LeakyReLU", "flatten.Flatten",
                 "dropout.Dropout")
}


def _script_class(module) -> str:
    """The eager-equivalent class name of a TorchScript module, or its qualified name."""
    try:
        qualified = module._c._type().qualified_name()
    except Exception:  # pragma: no cover - torch internals
        return getattr(module, "original_name", type(module).__name__)
    qualified = re.sub(r"\.___torch_mangle_\d+", "", qualified)
    if qualified in _SCRIPT_LAYERS:
        return _SCRIPT_LAYERS[qualified]
    qualified = qualified.removeprefix("__torch__.")
    return qualified.rsplit(".", 1)[-1] if qualified.startswith("torch.nn.modules.") else qualified


def _script_constant(module, attr: str, op: str, index: int, where: str, path: str):
    """An attribute of a scripted module, or the constant argument of ``op`` in a traced one."""
    try:
        return getattr(module, attr)
    except Exception:
        pass
    try:
        for node in module.graph.nodes():
            if node.kind() == op:
                arg = list(node.inputs())[index]
                if arg.node().kind() == "prim::Constant":
                    return arg.toIValue()
    except Exception:  # pragma: no cover - torch internals
        pass
    raise UnsupportedError(f"{where}TorchScript module '{path}' ({_script_class(module)}): cannot read its "
                           f"{attr}; export the model to ONNX (torch.onnx.export) instead")


def _from_script(module, where: str, path: str = ""):
    """The eager ``nn.Sequential`` equivalent of a TorchScript module, built from its class
    names and parameters (its TorchScript code is never run)."""
    nn = _torch().nn
    kind = _script_class(module)
    params = dict(module.named_parameters(recurse=False))
    if kind == "Sequential":
        children = [(name, _from_script(child, where, f"{path}.{name}" if path else name))
                    for name, child in module.named_children()]
        return nn.Sequential(OrderedDict(children))
    if kind == "Linear" and "weight" in params:
        W, b = params["weight"].detach(), params.get("bias")
        lin = nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=W.dtype)
        with _torch().no_grad():
            lin.weight.copy_(W)
            if b is not None:
                lin.bias.copy_(b.detach())
        return lin
    if kind in ("ReLU", "Identity", "Dropout"):
        return {"ReLU": nn.ReLU, "Identity": nn.Identity, "Dropout": nn.Dropout}[kind]()
    if kind in ("ReLU6", "Hardtanh"):
        lo = _script_constant(module, "min_val", "aten::hardtanh", 1, where, path or kind)
        hi = _script_constant(module, "max_val", "aten::hardtanh", 2, where, path or kind)
        return nn.Hardtanh(float(lo), float(hi))
    if kind == "LeakyReLU":
        slope = _script_constant(module, "negative_slope", "aten::leaky_relu", 1, where, path or kind)
        return nn.LeakyReLU(float(slope))
    if kind == "Flatten":
        start = _script_constant(module, "start_dim", "aten::flatten", 1, where, path or kind)
        end = _script_constant(module, "end_dim", "aten::flatten", 2, where, path or kind)
        return nn.Flatten(int(start), int(end))
    at = f"module '{path}'" if path else "the model"
    raise UnsupportedError(
        f"{where}TorchScript: {at} is of class {kind}, which reluopt cannot read from TorchScript (it reads "
        f"Sequentials of {SUPPORTED}); export the model to ONNX instead (torch.onnx.export) and load that"
    )


def to_torch(network: Network, dtype=None):
    """An ``nn.Sequential`` computing ``network`` (float32 unless ``dtype`` says otherwise).

    Clipped ReLUs become ``Hardtanh(0, tau)``, leaky ReLUs ``LeakyReLU(alpha)``. Useful to train
    further or benchmark on torch.

    Parameters
    ----------
    network : Network
        The network to convert.
    dtype : torch.dtype, optional
        The parameters' dtype (``torch.float32`` by default).

    Returns
    -------
    torch.nn.Sequential
        ``Linear`` modules with the activations between them.
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
        elif layer.activation == "leaky_relu":
            mods.append(nn.LeakyReLU(layer.alpha))
    return nn.Sequential(*mods)
