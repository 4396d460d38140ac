"""ONNX op translation: each node of a chain of affine ops and ReLUs updates an affine stack.

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

This module holds the per-file state (`Trace`) and the translation of one node on the traced
tensor (`apply_traced`); `reluopt.io.onnx` reads and validates the file, walks the graph in
dependency order and folds the constant nodes (weights, shapes).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..network import Layer

# op types that act on the traced tensor (the "chain")
TRACED_OPS = (
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "LeakyRelu", "Clip", "Flatten", "Reshape",
    "Identity", "Dropout", "Squeeze", "Unsqueeze", "Transpose", "Cast", "Shape",
)
# op types evaluated on constants only (weights, shapes)
CONSTANT_OPS = ("Constant", "Gather", "Concat", "Slice", "ConstantOfShape", "Range")
SUPPORTED = ", ".join(sorted(set(TRACED_OPS + CONSTANT_OPS)))


class Trace:
    """Per-file state: constants, the traced tensor and the layers closed so far.

    One `Trace` lives for one import; every node translation reads and updates it, so the
    translation functions stay free of hidden state. Its attributes are described where
    ``__init__`` sets them.

    Parameters
    ----------
    label : str
        Prefix of every error message (the file name).
    opset : int
        The model's default-domain opset, used when constant nodes are folded.
    """

    def __init__(self, label: str, opset: int):
        self.label = label
        self.opset = opset
        self.consts: dict[str, np.ndarray] = {}  # constant tensors (initialisers, folded nodes)
        self.current: str | None = None  # name of the traced tensor
        self.S: np.ndarray = np.zeros((1, 0))    # the input's identity stack once tracing starts
        self.eye = False  # S is the identity stack (cheap products, see _eye_matmul)
        self.layers: list[Layer] = []
        self.layer_nodes: list[list[str]] = [[]]  # ONNX nodes folded into each layer (for errors)

    # ------------------------------------------------------------------ errors
    def unsupported(self, node, why: str | None = None) -> UnsupportedError:
        """The error for a node reluopt cannot translate, naming the node and what is supported.

        Parameters
        ----------
        node : onnx.NodeProto
            The offending node.
        why : str, optional
            What is wrong with it; without it the op type itself is unsupported.

        Returns
        -------
        UnsupportedError
            The error to raise (not raised here, so callers can ``raise`` it in place).
        """
        name = node_label(node)
        if why is None:
            return UnsupportedError(
                f"{self.label}: node {name} has op type {node.op_type}, which reluopt does not "
                f"support (supported: {SUPPORTED}; the network must be a chain of affine ops "
                "and ReLU / clipped ReLU / leaky ReLU activations)"
            )
        return UnsupportedError(f"{self.label}: node {name} ({node.op_type}): {why}")

    def const(self, node, name: str) -> np.ndarray:
        """The value of constant input ``name`` of ``node``, or an error if it is not constant.

        Parameters
        ----------
        node : onnx.NodeProto
            The node reading the input (for the error message).
        name : str
            The input tensor's name.

        Returns
        -------
        numpy.ndarray
            The constant's value as stored.
        """
        if name not in self.consts:
            raise self.unsupported(node, f"input '{name}' is neither a constant nor the traced tensor")
        return self.consts[name]

    def finite_const(self, node, name: str) -> np.ndarray:
        """Like `const`, as float64, rejecting NaN/inf so no weight can poison a bound.

        Parameters
        ----------
        node : onnx.NodeProto
            The node reading the input (for the error message).
        name : str
            The input tensor's name.

        Returns
        -------
        numpy.ndarray
            The constant's value as a float64 array with finite entries.
        """
        arr = np.asarray(self.const(node, name), dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ModelError(
                f"{self.label}: node {node_label(node)} ({node.op_type}) uses '{name}' with a "
                f"non-finite entry ({arr[bad] if arr.ndim else arr}) at index {bad}"
            )
        return arr

    # ------------------------------------------------------------------ layers
    def close_layer(self, activation: str, tau: float | None, alpha: float | None = None) -> None:
        """End the current layer at an activation and restart tracing from its output.

        Parameters
        ----------
        activation : str
            The layer's activation name (``"relu"``, ``"clipped_relu"``, ``"leaky_relu"``,
            ``"identity"`` for the output layer).
        tau : float or None
            The clip level of a clipped ReLU.
        alpha : float, optional
            The negative slope of a leaky ReLU.
        """
        S = self.S
        n = S.shape[0] - 1
        shape = S.shape[1:]
        W = S[1:].reshape(n, -1).T
        b = S[0].reshape(-1)
        self.layers.append(Layer(np.ascontiguousarray(W), b.copy(), activation, tau, alpha))
        self.layer_nodes.append([])
        self.S = identity_stack(shape)
        self.eye = True


def node_label(node) -> str:
    """How error messages name a node: its name, or its first output when it has none.

    Parameters
    ----------
    node : onnx.NodeProto
        The node to name.

    Returns
    -------
    str
        A quoted name, e.g. ``'fc1'`` or ``(unnamed, output 'y')``.
    """
    if node.name:
        return f"'{node.name}'"
    out = node.output[0] if node.output else "?"
    return f"(unnamed, output '{out}')"


def identity_stack(shape: tuple[int, ...]) -> np.ndarray:
    """The affine stack of a fresh tensor of ``shape``: zero constant, identity coefficients.

    Parameters
    ----------
    shape : tuple of int
        Shape of one element of the traced tensor.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(m + 1, *shape)`` with ``m = prod(shape)``.
    """
    m = int(np.prod(shape, dtype=np.int64))
    S = np.concatenate([np.zeros((1, m)), np.eye(m)], axis=0)
    return S.reshape((m + 1, *shape))


def _align(S: np.ndarray, ndim: int) -> np.ndarray:
    """Insert unit axes after the stack axis so one element has at least ``ndim`` dims."""
    missing = ndim - (S.ndim - 1)
    if missing > 0:
        S = S.reshape((S.shape[0],) + (1,) * missing + S.shape[1:])
    return S


def attributes(node) -> dict:
    """A node's attributes as plain Python values (ints, floats, lists, tensors).

    Parameters
    ----------
    node : onnx.NodeProto
        The node.

    Returns
    -------
    dict
        Attribute name to value.
    """
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# ---------------------------------------------------------------------- traced ops
def apply_traced(tr: Trace, node) -> None:
    """Fold a node that reads the traced tensor into ``tr`` (affine op, reshape or activation).

    Parameters
    ----------
    tr : Trace
        The import's state; ``tr.S`` and ``tr.current`` move past ``node``.
    node : onnx.NodeProto
        A node with the traced tensor among its inputs and constants for the rest.

    Raises
    ------
    UnsupportedError
        The op is not supported or not affine in the traced tensor (e.g. two traced inputs).
    ModelError
        The shapes do not fit or a constant is not finite.
    """
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
    at = attributes(node)
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


def _shape_error(tr: Trace, node, S: np.ndarray, exc: Exception) -> ModelError:
    """A one-line error for numpy's complaint about ``node``'s shapes, in the file's terms."""
    op, shape = node.op_type, tuple(S.shape[1:])
    head = f"{tr.label}: node {node_label(node)} ({op}): "
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


def _traced_op(tr: Trace, node, op: str, ins: list, pos: int, S: np.ndarray, at: dict, eye: bool) -> np.ndarray:
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
                raise ModelError(f"{tr.label}: node {node_label(node)} (Div) divides by zero")
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


def _activation(tr: Trace, node, at: dict) -> None:
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


def _matmul(tr: Trace, node, S: np.ndarray, W: np.ndarray, traced_left: bool) -> np.ndarray:
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


def _gemm(tr: Trace, node, S: np.ndarray, pos: int, at: dict, eye: bool = False) -> np.ndarray:
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
            f"{tr.label}: node {node_label(node)} (Gemm): weight '{ins[1 - pos]}' of shape {other.shape} "
            f"({flag}) takes {w_shape[0] if pos == 0 else w_shape[1]} inputs, but its input '{tr.current}' "
            f"has {x_shape[1] if pos == 0 else x_shape[0]} (shape {tuple(S.shape[1:])})"
        )
    mn = (a_shape[0], b_shape[1])
    if len(ins) > 2 and ins[2]:
        C = tr.finite_const(node, ins[2])
        if C.ndim > 2 or any(c not in (1, d) for c, d in zip(C.shape[::-1], mn[::-1], strict=False)):
            raise ModelError(
                f"{tr.label}: node {node_label(node)} (Gemm): bias '{ins[2]}' has shape {C.shape}, which "
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


def _reshape_like(tr: Trace, node, S: np.ndarray, at: dict) -> np.ndarray:
    op = node.op_type
    shape = S.shape[1:]
    ins = list(node.input)
    if op == "Flatten":
        axis = int(at.get("axis", 1))
        if not -len(shape) <= axis <= len(shape):
            raise ModelError(f"{tr.label}: node {node_label(node)} (Flatten): axis {axis} is out of range "
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
        raise ModelError(f"{tr.label}: node {node_label(node)} (Unsqueeze): axes {list(axes)} are out of range "
                         f"for an output of rank {rank}")
    for a in sorted(a + rank if a < 0 else a for a in axes):
        new.insert(a, 1)
    return S.reshape((S.shape[0], *new))
