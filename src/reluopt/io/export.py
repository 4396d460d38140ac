"""ONNX export: a ``Network`` as ``Gemm`` + ``Relu`` / ``Clip`` / ``LeakyRelu`` nodes (opset 13).

The plainest encoding on purpose: every verifier and runtime that reads ONNX reads this, and
``load_onnx`` reads it back exactly. Weights are written as float64 by default so the file
computes the same function reluopt optimised; ``dtype="float32"`` suits tools that need it.
(ONNX stores a ``LeakyRelu``'s alpha as a float32 attribute: the file's alpha is the nearest
float32 to the network's.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..network import Network

OPSET = 13


def to_onnx_model(network: Network, dtype: str = "float64", input_name: str = "input",
                  output_name: str = "output", opset: int = OPSET):
    """The ``onnx.ModelProto`` of ``network`` (input shape ``(batch, d)``), checked.

    Parameters
    ----------
    network : Network
        The network (Gemm nodes with Relu, Clip or LeakyRelu between them).
    dtype : {"float64", "float32"}
        The precision of the weights and tensors.
    input_name, output_name : str
        Names of the graph's input and output.
    opset : int
        The ONNX opset, at least 13.

    Returns
    -------
    onnx.ModelProto
        A model that passes ``onnx.checker``.

    Raises
    ------
    ModelError
        A bad ``dtype`` or ``opset``.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:  # pragma: no cover
        raise UnsupportedError(f"ONNX export needs the 'onnx' package ({exc})") from None
    if dtype not in ("float32", "float64"):
        raise ModelError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if opset < 13:
        raise ModelError(f"opset must be >= 13, got {opset}")
    np_dtype = np.dtype(dtype)
    elem = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    nodes, inits = [], []
    h = input_name
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        W, b = f"W{i}", f"b{i}"
        inits += [numpy_helper.from_array(np.asarray(layer.W, np_dtype), W),
                  numpy_helper.from_array(np.asarray(layer.b, np_dtype), b)]
        g = output_name if i == last else f"gemm{i}"
        nodes.append(helper.make_node("Gemm", [h, W, b], [g], name=f"gemm{i}", transB=1))
        if layer.activation == "relu":
            h = f"relu{i}"
            nodes.append(helper.make_node("Relu", [g], [h], name=h))
        elif layer.activation == "clipped_relu":
            lo, hi = f"clip{i}_min", f"clip{i}_max"
            inits += [numpy_helper.from_array(np.array(0.0, np_dtype), lo),
                      numpy_helper.from_array(np.array(layer.tau, np_dtype), hi)]
            h = f"clip{i}"
            nodes.append(helper.make_node("Clip", [g, lo, hi], [h], name=h))
        elif layer.activation == "leaky_relu" and layer.alpha is not None:
            h = f"leaky_relu{i}"
            nodes.append(helper.make_node("LeakyRelu", [g], [h], name=h, alpha=float(layer.alpha)))
    graph = helper.make_graph(
        nodes, "reluopt_network",
        [helper.make_tensor_value_info(input_name, elem, ["batch", network.input_dim])],
        [helper.make_tensor_value_info(output_name, elem, ["batch", network.output_dim])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="reluopt",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes
    onnx.checker.check_model(model)
    return model


def save_onnx(network: Network, path, dtype: str = "float64", opset: int = OPSET) -> Path:
    """Write ``network`` to ``path`` as ONNX.

    Parameters
    ----------
    network : Network
        The network to write.
    path : str or Path
        The output file.
    dtype, opset
        As for ``to_onnx_model``.

    Returns
    -------
    Path
        The path written.
    """
    import onnx

    path = Path(path)
    model = to_onnx_model(network, dtype=dtype, opset=opset)
    try:
        onnx.save(model, str(path))
    except OSError as exc:
        raise ModelError(f"{path}: cannot write ONNX file ({exc})") from None
    return path
