"""ONNX importer: a chain of affine ops and ReLUs becomes a ``Network``.

This module reads and validates the file (one input, one output, a static input shape), walks
the graph in dependency order, evaluates the constant nodes (weights, shapes) and hands each node
on the traced tensor to `reluopt.io.onnx_trace`, which folds the chain into affine layers by
symbolic tracing (the method is described there). Symbolic dimensions
(a batch size ``N``) are taken as 1, and the input tensor is flattened in row-major order; its
original shape is kept in ``network.meta["input_shape"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ModelError, ReluoptError, UnsupportedError
from ..network import Network
from .onnx_trace import (
    CONSTANT_OPS,
    SUPPORTED,
    TRACED_OPS,
    Trace,
    apply_traced,
    attributes,
    identity_stack,
    node_label,
)

__all__ = ["CONSTANT_OPS", "SUPPORTED", "TRACED_OPS", "from_onnx_model", "load_onnx"]


def _input_shape(value_info) -> list:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


# ---------------------------------------------------------------------- public API
def load_onnx(path) -> Network:
    """Read an ONNX file holding a feed-forward ReLU network (see module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file.

    Returns
    -------
    Network
        The network, with ``meta`` holding the input/output names and shapes.

    Raises
    ------
    ModelError
        The file is missing, unreadable or its weights/shapes are inconsistent.
    UnsupportedError
        The graph is not a single chain of supported ops (`SUPPORTED`).
    """
    path = Path(path)
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a core dependency here
        raise UnsupportedError(f"{path}: reading ONNX needs the 'onnx' package ({exc})") from None
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning, ... on garbage
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph or an empty graph)")
    return from_onnx_model(model, label=str(path.name), source=str(path))


def from_onnx_model(model, label: str = "<onnx model>", source: str = "") -> Network:
    """Convert an in-memory ``onnx.ModelProto``; errors are prefixed with ``label``.

    Parameters
    ----------
    model : onnx.ModelProto
        The model; its graph needs exactly one non-constant input and one output.
    label : str, optional
        Prefix of every error message (the file name when read by `load_onnx`).
    source : str, optional
        Recorded as the network's source.

    Returns
    -------
    Network
        The network, with ``meta`` holding the input/output names and shapes.

    Raises
    ------
    ModelError
        Weights or shapes are inconsistent, or the graph has a cycle.
    UnsupportedError
        The graph is not a single chain of supported ops (`SUPPORTED`).
    """
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    tr = Trace(label, opset)
    for init in graph.initializer:
        tr.consts[init.name] = _tensor_to_array(init)
    inputs = [i for i in graph.input if i.name not in tr.consts]
    if len(inputs) != 1:
        raise UnsupportedError(
            f"{label}: the graph has {len(inputs)} non-constant inputs "
            f"({', '.join(i.name for i in inputs) or 'none'}); reluopt needs exactly one"
        )
    if len(graph.output) != 1:
        raise UnsupportedError(
            f"{label}: the graph has {len(graph.output)} outputs "
            f"({', '.join(o.name for o in graph.output)}); reluopt needs exactly one"
        )
    inp = inputs[0]
    in_shape = _input_shape(inp)
    if not in_shape and not inp.type.tensor_type.HasField("shape"):
        raise UnsupportedError(f"{label}: input '{inp.name}' has no static shape")
    concrete = tuple(1 if d is None or d <= 0 else int(d) for d in in_shape)
    tr.current = inp.name
    tr.S = identity_stack(concrete)
    tr.eye = True

    for node in _topological(graph.node, label):
        if node.domain not in ("", "ai.onnx"):
            raise tr.unsupported(node)
        traced = [i for i in node.input if i and i == tr.current]
        if traced:
            apply_traced(tr, node)
        else:
            stale = [i for i in node.input if i and i not in tr.consts]
            if stale and node.op_type != "Constant":
                _raise_stale(tr, node, stale)
            _apply_constant(tr, node)

    out_name = graph.output[0].name
    if out_name != tr.current:
        raise UnsupportedError(
            f"{label}: the graph output '{out_name}' is not the end of the chain from input "
            f"'{inp.name}' (last traced tensor: '{tr.current}')"
        )
    out_shape = tuple(tr.S.shape[1:])
    tr.close_layer("identity", None)
    meta = {
        "format": "onnx",
        "input_name": inp.name,
        "input_shape": in_shape,
        "output_name": out_name,
        "output_shape": list(out_shape),
    }
    try:
        return Network.from_affine_stack(tr.layers, source=source, meta=meta)
    except ModelError as exc:
        msg = str(exc)
        hit = re.match(r"layer (\d+):", msg)
        if hit and int(hit.group(1)) < len(tr.layer_nodes):
            msg += f" (ONNX nodes: {', '.join(tr.layer_nodes[int(hit.group(1))]) or 'none'})"
        raise ModelError(f"{label}: {msg}") from None


def _topological(nodes, label: str) -> list:
    """Nodes in dependency order (files should already be sorted, but not all are)."""
    produced = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    order: list = []
    state = [0] * len(nodes)  # 0 new, 1 visiting, 2 done

    def visit(i: int) -> None:
        stack = [(i, iter(nodes[i].input))]
        state[i] = 1
        while stack:
            j, it = stack[-1]
            for name in it:
                k = produced.get(name)
                if k is None or state[k] == 2:
                    continue
                if state[k] == 1:
                    raise ModelError(f"{label}: the graph has a cycle through tensor '{name}'")
                state[k] = 1
                stack.append((k, iter(nodes[k].input)))
                break
            else:
                stack.pop()
                state[j] = 2
                order.append(nodes[j])

    for i in range(len(nodes)):
        if state[i] == 0:
            visit(i)
    return order


def _raise_stale(tr: Trace, node, stale: list[str]) -> None:
    raise UnsupportedError(
        f"{tr.label}: node {node_label(node)} ({node.op_type}) reads '{stale[0]}', which is "
        f"neither a constant nor the current end of the chain ('{tr.current}'); reluopt needs "
        "a single chain from input to output (no branches, skip connections or unknown inputs)"
    )


def _tensor_to_array(t) -> np.ndarray:
    """Copy an ONNX tensor (initialiser or ``Constant`` value) into a numpy array.

    Parameters
    ----------
    t : onnx.TensorProto
        The tensor.

    Returns
    -------
    numpy.ndarray
        Its value (a writable copy).
    """
    from onnx import numpy_helper

    return np.array(numpy_helper.to_array(t))


# ---------------------------------------------------------------------- constant ops
def _apply_constant(tr: Trace, node) -> None:
    """Evaluate a node whose inputs are all constants (weights, shapes) into ``tr.consts``.

    Parameters
    ----------
    tr : Trace
        The import's state; the node's outputs are added to ``tr.consts``.
    node : onnx.NodeProto
        A node none of whose inputs is the traced tensor.

    Raises
    ------
    UnsupportedError
        The node cannot be evaluated on its constant inputs.
    """
    op = node.op_type
    at = attributes(node)
    vals = [tr.consts[i] if i else None for i in node.input]
    if op == "Constant":
        if "value" in at:
            out = _tensor_to_array(at["value"])
        else:
            keys = ("value_float", "value_floats", "value_int", "value_ints")
            key = next((k for k in keys if k in at), None)
            if key is None:
                raise tr.unsupported(node, f"Constant with attributes {sorted(at)}")
            out = np.array(at[key], dtype=np.float32 if "float" in key else np.int64)
        tr.consts[node.output[0]] = out
        return
    try:
        outs = _eval_constant(tr, node, vals)
    except ReluoptError:
        raise
    except Exception as exc:
        raise tr.unsupported(node, f"cannot evaluate it on constant inputs ({exc})") from None
    for name, val in zip(node.output, outs, strict=False):
        if name:
            tr.consts[name] = np.asarray(val)


def _eval_constant(tr: Trace, node, vals: list) -> list:
    """Constant folding through the ONNX reference evaluator (any standard op works)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if v is not None else "" for i, v in enumerate(vals)]
    clone = helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))],
                             domain=node.domain)
    clone.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [clone], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for n, v in zip(names, vals, strict=True) if n],
        [helper.make_tensor_value_info(o, 0, None) for o in clone.output],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", tr.opset)])
    feeds = {n: v for n, v in zip(names, vals, strict=True) if n}
    return list(ReferenceEvaluator(model).run(None, feeds))    # all outputs (names None): a list
