"""ONNX importer: a chain of affine ops and ReLUs becomes a ``Network``.

Why symbolic tracing instead of pattern matching (``MatMul`` then ``Add`` then ``Relu``): real
files mix conventions (weights on either side of ``MatMul``, ``Gemm`` with transposes, an input
``Sub``/``Div`` normalisation, ``Flatten``/``Reshape`` of an image input, constants computed by
``Shape``/``Gather``/``Concat``). We carry the tensor flowing from the input as an *affine
expression* of the last activation's output ``h``: an array ``S`` of shape ``(n + 1, *shape)``
where ``S[0]`` is the constant part and ``S[1 + k]`` the coefficient of ``h[k]``. Every linear op
is applied to ``S`` with ordinary numpy broadcasting (constants only touch ``S[0]``), so any
composition of supported ops is folded exactly; each ``Relu``/``LeakyRelu``/``Clip`` closes a layer.
Symbolic dimensions (a batch size ``N``) are taken as 1, and the input tensor is flattened in
row-major order; its original shape is kept in ``network.meta["input_shape"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ModelError, ReluoptError, UnsupportedError
from ..network import Layer, Network

# op types that act on the traced tensor (the "chain")
TRACED_OPS = (
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "LeakyRelu", "Clip", "Flatten", "Reshape",
    "Identity", "Dropout", "Squeeze", "Unsqueeze", "Transpose", "Cast", "Shape",
)
# op types evaluated on constants only (weights, shapes)
CONSTANT_OPS = ("Constant", "Gather", "Concat", "Slice", "ConstantOfShape", "Range")
SUPPORTED = ", ".join(sorted(set(TRACED_OPS + CONSTANT_OPS)))


class _Trace:
    """Per-file state: constants, the traced tensor and the layers closed so far."""

    def __init__(self, label: str, opset: int):
        self.label = label
        self.opset = opset
        self.consts: dict[str, np.ndarray] = {}
        self.current: str | None = None  # name of the traced tensor
        self.S: np.ndarray = np.zeros((1, 0))    # the input's identity stack once tracing starts
        self.eye = False  # S is the identity stack (cheap products, see _eye_matmul)
        self.layers: list[Layer] = []
        self.layer_nodes: list[list[str]] = [[]]

    # ------------------------------------------------------------------ errors
    def unsupported(self, node, why: str | None = None) -> UnsupportedError:
        name = _node_label(node)
        if why is None:
            return UnsupportedError(
                f"{self.label}: node {name} has op type {node.op_type}, which reluopt does not "
                f"support (supported: {SUPPORTED}; the network must be a chain of affine ops "
                "and ReLU / clipped ReLU / leaky ReLU activations)"
            )
        return UnsupportedError(f"{self.label}: node {name} ({node.op_type}): {why}")

    def const(self, node, name: str) -> np.ndarray:
        if name not in self.consts:
            raise self.unsupported(node, f"input '{name}' is neither a constant nor the traced tensor")
        return self.consts[name]

    def finite_const(self, node, name: str) -> np.ndarray:
        arr = np.asarray(self.const(node, name), dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ModelError(
                f"{self.label}: node {_node_label(node)} ({node.op_type}) uses '{name}' with a "
                f"non-finite entry ({arr[bad] if arr.ndim else arr}) at index {bad}"
            )
        return arr

    # ------------------------------------------------------------------ layers
    def close_layer(self, activation: str, tau: float | None, alpha: float | None = None) -> None:
        S = self.S
        n = S.shape[0] - 1
        shape = S.shape[1:]
        W = S[1:].reshape(n, -1).T
        b = S[0].reshape(-1)
        self.layers.append(Layer(np.ascontiguousarray(W), b.copy(), activation, tau, alpha))
        self.layer_nodes.append([])
        self.S = _identity_stack(shape)
        self.eye = True


def _node_label(node) -> str:
    if node.name:
        return f"'{node.name}'"
    out = node.output[0] if node.output else "?"
    return f"(unnamed, output '{out}')"


def _identity_stack(shape: tuple[int, ...]) -> np.ndarray:
    m = int(np.prod(shape, dtype=np.int64))
    S = np.concatenate([np.zeros((1, m)), np.eye(m)], axis=0)
    return S.reshape((m + 1, *shape))


def _align(S: np.ndarray, ndim: int) -> np.ndarray:
    """Insert unit axes after the stack axis so one element has at least ``ndim`` dims."""
    missing = ndim - (S.ndim - 1)
    if missing > 0:
        S = S.reshape((S.shape[0],) + (1,) * missing + S.shape[1:])
    return S


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _tensor_to_array(t) -> np.ndarray:
    from onnx import numpy_helper

    return np.array(numpy_helper.to_array(t))


def _input_shape(value_info) -> list:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


# ---------------------------------------------------------------------- public API
def load_onnx(path) -> Network:
    """Read an ONNX file holding a feed-forward ReLU network (see module docstring)."""
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
    """Convert an in-memory ``onnx.ModelProto``; errors are prefixed with ``label``."""
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    tr = _Trace(label, opset)
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
    tr.S = _identity_stack(concrete)
    tr.eye = True

    for node in _topological(graph.node, label):
        if node.domain not in ("", "ai.onnx"):
            raise tr.unsupported(node)
        traced = [i for i in node.input if i and i == tr.current]
        if traced:
            _apply_traced(tr, node)
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


def _raise_stale(tr: _Trace, node, stale: list[str]) -> None:
    raise UnsupportedError(
        f"{tr.label}: node {_node_label(node)} ({node.op_type}) reads '{stale[0]}', which is "
        f"neither a constant nor the current end of the chain ('{tr.current}'); reluopt needs "
        "a single chain from input to output (no branches, skip connections or unknown inputs)"
    )


# ---------------------------------------------------------------------- traced ops
def _apply_traced(tr: _Trace, node) -> None:
    op = node.op_type
    ins = list(node.input)
    if sum(1 for i in ins if i == tr.current) > 1 or any(
        i and i != tr.current and i not in tr.consts for i in ins
    ):
        others = [i for i in ins if i and i not in tr.consts]
        raise tr.unsupported(
            node, f"combines several non-constant tensors ({', '.join(others)}); reluopt needs "
            "a single chain (no branches or skip connections)"
        )
    if op not in TRACED_OPS:
        raise tr.unsupported(node)
    if op == "Shape":  # a constant: the traced tensor's (concrete) shape
        tr.consts[node.output[0]] = np.array(tr.S.shape[1:], dtype=np.int64)
        return
    at = _attrs(node)
    pos = ins.index(tr.current)
    S = tr.S
    eye, tr.eye = tr.eye, False
    tr.layer_nodes[-1].append(node.name or node.output[0])
    try:
        out = _traced_op(tr, node, op, ins, pos, S, at, eye)
    except (ValueError, IndexError) as exc:     # numpy: shapes that do not broadcast/multiply
        raise _shape_error(tr, node, S, exc) from None
    tr.S = out
    tr.current = node.output[0]


def _shape_error(tr: _Trace, node, S: np.ndarray, exc: Exception) -> ModelError:
    """A one-line error for numpy's complaint about ``node``'s shapes, in the file's terms."""
    op, shape = node.op_type, tuple(S.shape[1:])
    head = f"{tr.label}: node {_node_label(node)} ({op}): "
    consts = [i for i in node.input if i and i != tr.current and i in tr.consts]
    if consts and op == "MatMul":
        w = np.shape(tr.consts[consts[0]])
        if list(node.input).index(tr.current) == 0:       # x @ W
            k_w, k_x = w[-2] if len(w) > 1 else w[0], shape[-1] if shape else 1
        else:                                             # W @ x
            k_w, k_x = w[-1], shape[-2] if len(shape) > 1 else (shape[0] if shape else 1)
        return ModelError(f"{head}weight '{consts[0]}' of shape {w} takes {k_w} inputs, but its input "
                          f"'{tr.current}' has {k_x} (shape {shape})")
    if consts and op in ("Add", "Sub", "Mul", "Div"):
        return ModelError(f"{head}'{consts[0]}' of shape {np.shape(tr.consts[consts[0]])} does not "
                          f"broadcast with its input '{tr.current}' of shape {shape}")
    listed = "".join(f", '{i}' of shape {np.shape(tr.consts[i])}" for i in consts)
    return ModelError(f"{head}shapes do not fit: its input '{tr.current}' has shape {shape}{listed} ({exc})")


def _traced_op(tr: _Trace, node, op: str, ins: list, pos: int, S: np.ndarray, at: dict, eye: bool) -> np.ndarray:
    """The affine stack after ``node`` (``tr.eye`` is set when the result is the identity)."""
    if op in ("Identity", "Cast", "Dropout"):
        if op == "Cast":
            from onnx import TensorProto

            if at.get("to") not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16,
                                    TensorProto.BFLOAT16):
                raise tr.unsupported(node, "casts the traced tensor to a non-float type")
        if op == "Dropout" and len(node.output) > 1 and node.output[1]:
            raise tr.unsupported(node, "the dropout mask output is used")
        out = S
        tr.eye = eye
    elif op in ("Relu", "LeakyRelu", "Clip"):
        _activation(tr, node, at)
        out = tr.S
    elif op == "Neg":
        out = -S
    elif op in ("Add", "Sub"):
        c = tr.finite_const(node, ins[1 - pos])
        S = _align(S, c.ndim)
        if op == "Sub" and pos == 1:
            S = -S  # c - x
        out = np.array(np.broadcast_to(S, np.broadcast_shapes(S.shape, (1, *c.shape))))
        out[0] = out[0] + c if (op == "Add" or pos == 1) else out[0] - c
    elif op in ("Mul", "Div"):
        c = tr.finite_const(node, ins[1 - pos])
        if op == "Div":
            if pos == 1:
                raise tr.unsupported(node, "divides by the traced tensor (not affine)")
            if np.any(c == 0):
                raise ModelError(f"{tr.label}: node {_node_label(node)} (Div) divides by zero")
            c = 1.0 / c
        out = _align(S, c.ndim) * c
    elif op == "MatMul":
        W = tr.finite_const(node, ins[1 - pos])
        cheap = _eye_matmul(S, W, pos == 0) if eye else None
        out = _matmul(tr, node, S, W, traced_left=pos == 0) if cheap is None else cheap
    elif op == "Gemm":
        out = _gemm(tr, node, S, pos, at, eye)
    else:
        out = _reshape_like(tr, node, S, at)
        tr.eye = eye and op != "Transpose"  # a row-major reshape of the identity stays one
    return out


def _activation(tr: _Trace, node, at: dict) -> None:
    if node.op_type in ("Relu", "LeakyRelu"):   # LeakyRelu: alpha g below 0 (default alpha 0.01)
        alpha = float(at.get("alpha", 0.01)) if node.op_type == "LeakyRelu" else 0.0
        if not 0.0 <= alpha < 1.0:
            raise tr.unsupported(node, f"LeakyRelu with alpha={alpha}; only 0 <= alpha < 1 is max(g, alpha g)")
        tr.close_layer("leaky_relu" if alpha else "relu", None, alpha or None)
        return
    lo, hi = at.get("min"), at.get("max")  # opset < 11: attributes; later: optional inputs
    for k, which in ((1, "min"), (2, "max")):
        if len(node.input) > k and node.input[k]:
            value = np.asarray(tr.const(node, node.input[k]))
            if value.size != 1:
                raise tr.unsupported(node, f"Clip {which} '{node.input[k]}' has shape {value.shape}; it must be scalar")
            bound = float(value.reshape(()))
            lo, hi = (bound, hi) if which == "min" else (lo, bound)
    if lo is None or lo != 0.0:
        raise tr.unsupported(node, f"Clip with min={lo}; only Clip(min=0[, max=tau]) is a (clipped) ReLU")
    if hi is None or not np.isfinite(hi) or hi >= 3.0e38:
        tr.close_layer("relu", None)
    elif hi > 0:
        tr.close_layer("clipped_relu", float(hi))
    else:
        raise tr.unsupported(node, f"Clip with max={hi} <= 0 is constant")


def _eye_matmul(S: np.ndarray, W: np.ndarray, traced_left: bool) -> np.ndarray | None:
    """``x @ W`` (or ``W @ x``) when ``S`` is the identity stack of a row vector ``x``.

    The general product costs O(m^2 k) on the (m+1, m) identity after a ReLU of width m; the
    answer is just ``W`` rearranged, O(m k). ``None`` when the shapes are not the simple case.
    """
    shape = S.shape[1:]
    m = S.shape[0] - 1
    if W.ndim != 2 or not shape or int(np.prod(shape[:-1], dtype=np.int64)) != 1:
        return None
    if traced_left and W.shape[0] == m:
        out_shape, coef = (*shape[:-1], W.shape[1]), W
    elif not traced_left and len(shape) == 1 and W.shape[1] == m:
        out_shape, coef = (W.shape[0],), W.T
    else:
        return None
    out = np.zeros((m + 1, *out_shape))
    out[1:] = coef.reshape((m, *out_shape))
    return out


def _matmul(tr: _Trace, node, S: np.ndarray, W: np.ndarray, traced_left: bool) -> np.ndarray:
    elem_ndim = S.ndim - 1
    if elem_ndim == 0 or W.ndim == 0:
        raise tr.unsupported(node, "MatMul with a scalar operand")
    if traced_left:
        if elem_ndim == 1:  # (d,) @ W: S is (n+1, d), a matrix, which is what we want
            return np.matmul(S, W) if W.ndim <= 2 else np.matmul(_align(S[:, None, :], W.ndim), W)[..., 0, :]
        return np.matmul(_align(S, W.ndim), W)
    if elem_ndim == 1:  # W @ (d,): treat x as a column
        col = _align(S[..., None], W.ndim)
        return np.matmul(W, col)[..., 0]
    return np.matmul(W, _align(S, W.ndim))


def _gemm(tr: _Trace, node, S: np.ndarray, pos: int, at: dict, eye: bool = False) -> np.ndarray:
    ins = list(node.input)
    if pos == 2:
        raise tr.unsupported(node, "the traced tensor is Gemm's bias input C")
    if S.ndim != 3:
        raise tr.unsupported(node, f"Gemm on a tensor of shape {S.shape[1:]} (must be 2-D)")
    alpha = float(at.get("alpha", 1.0))
    beta = float(at.get("beta", 1.0))
    ta, tb = int(at.get("transA", 0)), int(at.get("transB", 0))
    other = tr.finite_const(node, ins[1 - pos])
    if other.ndim != 2:
        raise tr.unsupported(node, f"Gemm operand of shape {other.shape} (must be 2-D)")
    x_shape = S.shape[1:][::-1] if (ta if pos == 0 else tb) else S.shape[1:]
    w_shape = other.shape[::-1] if (tb if pos == 0 else ta) else other.shape
    a_shape, b_shape = (x_shape, w_shape) if pos == 0 else (w_shape, x_shape)
    if a_shape[1] != b_shape[0]:
        flag = f"transB={tb}" if pos == 0 else f"transA={ta}"
        raise ModelError(
            f"{tr.label}: node {_node_label(node)} (Gemm): weight '{ins[1 - pos]}' of shape {other.shape} "
            f"({flag}) takes {w_shape[0] if pos == 0 else w_shape[1]} inputs, but its input '{tr.current}' "
            f"has {x_shape[1] if pos == 0 else x_shape[0]} (shape {tuple(S.shape[1:])})"
        )
    mn = (a_shape[0], b_shape[1])
    if len(ins) > 2 and ins[2]:
        C = tr.finite_const(node, ins[2])
        if C.ndim > 2 or any(c not in (1, d) for c, d in zip(C.shape[::-1], mn[::-1], strict=False)):
            raise ModelError(
                f"{tr.label}: node {_node_label(node)} (Gemm): bias '{ins[2]}' has shape {C.shape}, which "
                f"does not broadcast to the output shape {mn} (expected {mn[1]} values)"
            )
    fast = _eye_matmul(S, other.T if tb else other, True) if eye and pos == 0 and not ta else None
    if fast is not None:
        out = alpha * fast
    elif pos == 0:
        A = np.swapaxes(S, 1, 2) if ta else S
        B = other.T if tb else other
        out = alpha * np.matmul(A, B)
    else:
        A = other.T if ta else other
        B = np.swapaxes(S, 1, 2) if tb else S
        out = alpha * np.matmul(A, B)
    if len(ins) > 2 and ins[2]:
        out[0] = out[0] + beta * tr.finite_const(node, ins[2])
    return out


def _reshape_like(tr: _Trace, node, S: np.ndarray, at: dict) -> np.ndarray:
    op = node.op_type
    shape = S.shape[1:]
    ins = list(node.input)
    if op == "Flatten":
        axis = int(at.get("axis", 1))
        if not -len(shape) <= axis <= len(shape):
            raise ModelError(f"{tr.label}: node {_node_label(node)} (Flatten): axis {axis} is out of range "
                             f"for its input of shape {shape}")
        axis = axis + len(shape) if axis < 0 else axis
        flat = (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
        return S.reshape((S.shape[0], *flat))
    if op == "Reshape":
        target = [int(v) for v in np.asarray(tr.const(node, ins[1])).reshape(-1)]
        if not at.get("allowzero", 0):
            target = [shape[i] if v == 0 and i < len(shape) else v for i, v in enumerate(target)]
        try:
            return S.reshape((S.shape[0], *target))
        except ValueError:
            raise tr.unsupported(node, f"cannot reshape a tensor of shape {shape} to {target}") from None
    if op == "Transpose":
        perm = at.get("perm") or list(range(len(shape)))[::-1]
        return np.transpose(S, [0, *(int(p) + 1 for p in perm)])
    axes = at.get("axes")
    if axes is None and len(ins) > 1 and ins[1]:
        axes = [int(v) for v in np.asarray(tr.const(node, ins[1])).reshape(-1)]
    if op == "Squeeze":
        if axes is None:
            return S.reshape((S.shape[0], *(d for d in shape if d != 1)))
        axes = sorted(a + len(shape) if a < 0 else a for a in axes)
        if any(shape[a] != 1 for a in axes):
            raise tr.unsupported(node, f"squeezes axes {axes} of a tensor of shape {shape}")
        return S.reshape((S.shape[0], *(d for i, d in enumerate(shape) if i not in axes)))
    # Unsqueeze
    if axes is None:
        raise tr.unsupported(node, "Unsqueeze without axes")
    new = list(shape)
    rank = len(shape) + len(axes)
    if any(not -rank <= a < rank for a in axes):
        raise ModelError(f"{tr.label}: node {_node_label(node)} (Unsqueeze): axes {list(axes)} are out of range "
                         f"for an output of rank {rank}")
    for a in sorted(a + rank if a < 0 else a for a in axes):
        new.insert(a, 1)
    return S.reshape((S.shape[0], *new))


# ---------------------------------------------------------------------- constant ops
def _apply_constant(tr: _Trace, node) -> None:
    """Evaluate a node whose inputs are all constants (weights, shapes)."""
    op = node.op_type
    at = _attrs(node)
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


def _eval_constant(tr: _Trace, node, vals: list) -> list:
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
