"""The Network type: a feed-forward stack of dense affine layers with ReLU-family activations.

Every other module speaks this type. Weights are float64 and validated once, here, so that
the bounds, formulations and methods can trust shapes and finiteness.

Conventions: layer ``l`` computes ``g_l = W_l h_{l-1} + b_l`` and ``h_l = act_l(g_l)``, with
``h_0 = x``. Hidden layers use an activation of ``reluopt.activations`` (``relu``,
``clipped_relu`` ``min(max(0, g), tau)``, ...), which owns what the name means; the last
layer is ``identity``. Batched functions take ``x`` of shape ``(n, d)`` (or ``(d,)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from . import activations
from .errors import ModelError

ACTIVATIONS = activations.names()


@dataclass(frozen=True)
class Layer:
    """One dense layer ``act(W h + b)``; ``act`` is the activation object
    (``reluopt.activations``) that says what ``activation`` means.

    Parameters
    ----------
    W, b : np.ndarray, shapes (n_out, n_in) and (n_out,)
    activation : str
        An activation name (``reluopt.activations.names()``).
    tau, alpha : float, optional
        The cap of a clipped ReLU, the negative slope of a leaky ReLU.
    """

    W: np.ndarray
    b: np.ndarray
    activation: str = "relu"
    tau: float | None = None
    alpha: float | None = None

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    @cached_property
    def act(self) -> activations.Activation:
        return activations.make(self)

    def activate(self, g: np.ndarray) -> np.ndarray:
        """The layer's activation applied to pre-activations.

        Parameters
        ----------
        g : np.ndarray
            Pre-activations ``W h + b``.

        Returns
        -------
        np.ndarray
        """
        return self.act.forward(g)


def _as_matrix(W, name: str) -> np.ndarray:
    try:
        arr = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name}: weights are not numeric ({exc})") from None
    if arr.ndim != 2:
        raise ModelError(f"{name}: weight matrix must be 2-D, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class Network:
    """A validated feed-forward ReLU network (float64).

    Build with ``Network.from_weights([(W1, b1), (W2, b2), ...])`` for the usual case of
    ReLU hidden layers and an identity output layer.

    Parameters
    ----------
    layers : tuple of Layer
        The layers, the last one ``identity`` (validated, stored read-only).
    input_names, output_names : tuple of str, optional
    source : str
        Where the network came from (a path or a description).
    meta : dict
        Importer notes (not compared).

    Raises
    ------
    ModelError
        Shapes that do not chain, non-finite weights, or activations in the wrong place.
    """

    layers: tuple[Layer, ...]
    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None
    source: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise ModelError("network has no layers")
        checked: list[Layer] = []
        for i, layer in enumerate(layers):
            name = f"layer {i}"
            W = _as_matrix(layer.W, name)
            b = np.asarray(layer.b, dtype=np.float64).reshape(-1)
            if b.shape[0] != W.shape[0]:
                raise ModelError(
                    f"{name}: bias has shape {b.shape} but weight matrix has shape {W.shape} "
                    f"(expected bias of length {W.shape[0]})"
                )
            if W.shape[0] == 0 or W.shape[1] == 0:
                raise ModelError(f"{name}: empty weight matrix of shape {W.shape}")
            if not np.all(np.isfinite(W)):
                bad = np.argwhere(~np.isfinite(W))[0]
                raise ModelError(
                    f"{name}: weight matrix has a non-finite entry ({W[tuple(bad)]}) at "
                    f"row {bad[0]}, column {bad[1]}"
                )
            if not np.all(np.isfinite(b)):
                bad = int(np.argwhere(~np.isfinite(b))[0][0])
                raise ModelError(f"{name}: bias has a non-finite entry ({b[bad]}) at {bad}")
            params = activations.lookup(layer.activation, name).check(layer, name)
            if i > 0 and W.shape[1] != checked[-1].n_out:
                raise ModelError(
                    f"{name}: expects {W.shape[1]} inputs (weight shape {W.shape}) but "
                    f"layer {i - 1} has {checked[-1].n_out} outputs "
                    f"(weight shape {checked[-1].W.shape})"
                )
            W.setflags(write=False)
            b.setflags(write=False)
            checked.append(replace(layer, W=W, b=b, **params))
        if checked[-1].act.hidden:
            raise ModelError(
                f"layer {len(checked) - 1}: the output layer must be affine (identity), got "
                f"{checked[-1].activation!r}; append an identity layer"
            )
        for i, layer in enumerate(checked[:-1]):
            if not layer.act.hidden:
                raise ModelError(
                    f"layer {i}: hidden layers must be {' or '.join(activations.hidden_names())}; fold affine "
                    "hidden layers into the next layer"
                )
        object.__setattr__(self, "layers", tuple(checked))
        if self.input_names is not None and len(self.input_names) != self.input_dim:
            raise ModelError(
                f"{len(self.input_names)} input names for {self.input_dim} inputs"
            )
        if self.output_names is not None and len(self.output_names) != self.output_dim:
            raise ModelError(
                f"{len(self.output_names)} output names for {self.output_dim} outputs"
            )

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_weights(
        cls,
        weights: Sequence[tuple[np.ndarray, np.ndarray]],
        activations: Sequence[str] | None = None,
        taus: Sequence[float | None] | None = None,
        **kwargs,
    ) -> Network:
        """ReLU hidden layers and an identity output unless ``activations`` says otherwise.

        Parameters
        ----------
        weights : sequence of (W, b)
            One pair per layer.
        activations, taus : sequence, optional
            Per layer, the activation name and the clipped-ReLU cap (or None).
        **kwargs
            Passed to ``Network`` (names, source, meta).

        Returns
        -------
        Network
        """
        n = len(weights)
        if activations is None:
            activations = ["relu"] * (n - 1) + ["identity"]
        if taus is None:
            taus = [None] * n
        if len(activations) != n or len(taus) != n:
            raise ModelError(f"{n} layers but {len(activations)} activations / {len(taus)} taus")
        layers = tuple(
            Layer(W, b, a, t) for (W, b), a, t in zip(weights, activations, taus, strict=True)
        )
        return cls(layers, **kwargs)

    @classmethod
    def from_affine_stack(cls, layers: Sequence[Layer], **kwargs) -> Network:
        """Build from layers where some are affine (identity) and possibly the last is ReLU.

        Consecutive affine layers are multiplied together; a trailing activation gets an
        identity output layer appended. Importers use this to normalise what they read.

        Parameters
        ----------
        layers : sequence of Layer
        **kwargs
            Passed to ``Network``.

        Returns
        -------
        Network
        """
        merged: list[Layer] = []
        pending: Layer | None = None  # an affine map waiting to be composed with the next
        for layer in layers:
            W = np.asarray(layer.W, dtype=np.float64)
            b = np.asarray(layer.b, dtype=np.float64).reshape(-1)
            if pending is not None:
                if W.shape[1] != pending.W.shape[0]:
                    raise ModelError(
                        f"cannot compose affine maps of shapes {pending.W.shape} and {W.shape}"
                    )
                b = W @ pending.b + b
                W = W @ pending.W
                pending = None
            current = replace(layer, W=W, b=b)
            kind = activations.REGISTRY.get(current.activation)   # unknown names: Network reports them
            if kind is not None and not kind.hidden:
                pending = current
            else:
                merged.append(current)
        if pending is not None:
            merged.append(pending)
        else:
            n = merged[-1].n_out
            merged.append(Layer(np.eye(n), np.zeros(n), "identity"))
        return cls(tuple(merged), **kwargs)

    # ----------------------------------------------------------------- shape facts
    @property
    def input_dim(self) -> int:
        return self.layers[0].n_in

    @property
    def output_dim(self) -> int:
        return self.layers[-1].n_out

    @property
    def hidden_layers(self) -> tuple[Layer, ...]:
        return self.layers[:-1]

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(layer.n_out for layer in self.layers[:-1])

    @property
    def n_hidden(self) -> int:
        return int(sum(self.hidden_sizes))

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.layers) - 1

    @property
    def has_clipped(self) -> bool:
        return any(isinstance(layer.act, activations.ClippedReLU) for layer in self.layers)

    def describe(self) -> str:
        """The layer sizes, ``'2-16-16-1'``.

        Returns
        -------
        str
        """
        sizes = [self.input_dim, *self.hidden_sizes, self.output_dim]
        return "-".join(str(s) for s in sizes)

    def __repr__(self) -> str:
        return f"Network({self.describe()}{', clipped' if self.has_clipped else ''})"

    # ----------------------------------------------------------------- evaluation
    def _as_batch(self, x) -> tuple[np.ndarray, bool]:
        arr = np.asarray(x, dtype=np.float64)
        single = arr.ndim == 1
        if single:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.input_dim:
            raise ModelError(
                f"input has shape {np.shape(x)} but the network expects {self.input_dim} "
                "inputs (shape (d,) or (n, d))"
            )
        return arr, single

    def forward(self, x) -> np.ndarray:
        """The network's outputs.

        Parameters
        ----------
        x : array_like, shape (d,) or (n, d)

        Returns
        -------
        np.ndarray, shape (m,) or (n, m)
        """
        h, single = self._as_batch(x)
        for layer in self.layers:
            h = layer.activate(h @ layer.W.T + layer.b)
        return h[0] if single else h

    __call__ = forward

    def preactivations(self, x) -> list[np.ndarray]:
        """Pre-activations ``g_l`` of every hidden layer.

        Parameters
        ----------
        x : array_like, shape (d,) or (n, d)

        Returns
        -------
        list of np.ndarray
            One ``(n, n_l)`` array per hidden layer (``n = 1`` for one input).
        """
        h, _ = self._as_batch(x)
        out = []
        for layer in self.layers[:-1]:
            g = h @ layer.W.T + layer.b
            out.append(g)
            h = layer.activate(g)
        return out

    def activation_pattern(self, x) -> list[np.ndarray]:
        """Boolean pattern per hidden layer, shape ``(n, n_l)``: True where ``g > 0``.

        For clipped ReLU the pattern is the *slope* (True where ``0 < g < tau``); use
        ``phase_pattern`` for the three phases.

        Parameters
        ----------
        x : array_like, shape (d,) or (n, d)

        Returns
        -------
        list of np.ndarray
            One ``(n, n_l)`` array per hidden layer.
        """
        return [layer.act.phase(g) == 1
                for layer, g in zip(self.layers[:-1], self.preactivations(x), strict=True)]

    def phase_pattern(self, x) -> list[np.ndarray]:
        """Integer phase per hidden neuron: 0 inactive, 1 linear, 2 saturated (clipped).

        Parameters
        ----------
        x : array_like, shape (d,) or (n, d)

        Returns
        -------
        list of np.ndarray
            One ``(n, n_l)`` array per hidden layer.
        """
        return [layer.act.phase(g) for layer, g in zip(self.layers[:-1], self.preactivations(x), strict=True)]

    def region_affine(self, pattern: Sequence[np.ndarray]):
        """Affine maps of one linear region, given a per-layer phase (or boolean) pattern.

        Parameters
        ----------
        pattern : sequence of np.ndarray
            A 1-D array per hidden layer: booleans mean active/inactive, integers are phases
            (2 = saturated at tau).

        Returns
        -------
        tuple
            ``(pre, (T, t))``: ``pre[l] = (A_l, c_l)`` with ``g_l(x) = A_l x + c_l`` on the
            region, and the output map ``y = T x + t``.
        """
        if len(pattern) != self.depth:
            raise ModelError(f"pattern has {len(pattern)} layers, network has {self.depth}")
        d = self.input_dim
        M = np.eye(d)
        m = np.zeros(d)
        pre = []
        for layer, p in zip(self.layers[:-1], pattern, strict=True):
            p = np.asarray(p).reshape(-1)
            if p.shape[0] != layer.n_out:
                raise ModelError(
                    f"pattern for a layer of {layer.n_out} neurons has {p.shape[0]} entries"
                )
            A = layer.W @ M
            c = layer.W @ m + layer.b
            pre.append((A, c))
            slope, offset = layer.act.piece(p.astype(np.int8))
            M = A * slope[:, None]
            m = c * slope + offset
        last = self.layers[-1]
        return pre, (last.W @ M, last.W @ m + last.b)

    def gradient(self, x, c) -> np.ndarray:
        """Gradient of ``c . y(x)`` w.r.t. ``x`` (batched), using the region's Jacobian.

        ``c`` is one vector (m,) for every row, or one per row (n, m) — a vector-Jacobian
        product, as least-squares objectives need. At a kink the one-sided choice ``g > 0``
        (active) is used, as a subgradient.

        Parameters
        ----------
        x : array_like, shape (d,) or (n, d)
        c : array_like, shape (m,) or (n, m)

        Returns
        -------
        np.ndarray, shape of ``x``
        """
        h, single = self._as_batch(x)
        c = np.asarray(c, dtype=np.float64)
        if c.shape[-1] != self.output_dim or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != h.shape[0]):
            raise ModelError(
                f"c has shape {c.shape}; expected ({self.output_dim},) or ({h.shape[0]}, {self.output_dim})"
            )
        slopes = []
        for layer in self.layers[:-1]:
            g = h @ layer.W.T + layer.b
            slopes.append(layer.act.slope(g).astype(np.float64))
            h = layer.activate(g)
        lam = np.broadcast_to(c @ self.layers[-1].W, (h.shape[0], self.layers[-1].n_in)).copy()
        for layer, s in zip(reversed(self.layers[:-1]), reversed(slopes), strict=True):
            lam = (lam * s) @ layer.W
        return lam[0] if single else lam

    def jacobian(self, x) -> np.ndarray:
        """Jacobian ``dy/dx`` at a single point (of the region ``phase_pattern`` picks there).

        Parameters
        ----------
        x : array_like, shape (d,)

        Returns
        -------
        np.ndarray, shape (m, d)
        """
        pattern = [p[0] for p in self.phase_pattern(np.asarray(x, dtype=np.float64)[None, :])]
        return self.region_affine(pattern)[1][0]

    # ----------------------------------------------------------------- transforms
    def with_layers(self, layers: Sequence[Layer]) -> Network:
        """The same network (names, source, meta) with other layers.

        Parameters
        ----------
        layers : sequence of Layer
            The new layers (validated again).

        Returns
        -------
        Network
        """
        return Network(
            tuple(layers), self.input_names, self.output_names, self.source, dict(self.meta)
        )

    def with_input_affine(self, scale, shift) -> Network:
        """The network of ``x' -> net(scale * x' + shift)``: folds an input normalisation.

        Parameters
        ----------
        scale, shift : array_like
            Per-input (or scalar) factors and offsets.

        Returns
        -------
        Network
        """
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (self.input_dim,))
        shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), (self.input_dim,))
        first = self.layers[0]
        new_first = replace(first, W=first.W * scale[None, :], b=first.W @ shift + first.b)
        return self.with_layers((new_first, *self.layers[1:]))
