"""LayerBounds: pre-activation bounds of every hidden layer, for one or many boxes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ProblemError
from ..network import Network

#: Relative and absolute outward margin applied to every computed bound, so that floating
#: point round-off in the matrix products can never make a bound cut off a true value.
REL_MARGIN = 1e-9
ABS_MARGIN = 1e-12


def outward(lower: np.ndarray, upper: np.ndarray, magnitude: np.ndarray):
    """Widen ``[lower, upper]`` by a margin proportional to the magnitude of the terms summed.

    Every computed bound goes through here, so that floating-point round-off in the matrix
    products can never make a bound cut off a true value.

    Parameters
    ----------
    lower, upper : np.ndarray
        The bounds as computed.
    magnitude : np.ndarray
        The sum of the absolute values of the terms behind each bound (same shape).

    Returns
    -------
    lower, upper : np.ndarray
        Widened by ``REL_MARGIN * magnitude + ABS_MARGIN``.
    """
    pad = REL_MARGIN * magnitude + ABS_MARGIN
    return lower - pad, upper + pad


def as_boxes(network: Network, lb, ub) -> tuple[np.ndarray, np.ndarray, bool]:
    """Normalise box bounds to shape (B, d), checking them once for every bound method.

    Parameters
    ----------
    network : Network
        Gives the input dimension d.
    lb, ub : array_like, shape (d,) or (B, d)
        One box or a batch.

    Returns
    -------
    lb, ub : np.ndarray, shape (B, d)
    single : bool
        Whether one box (a 1-D ``lb``) was given.

    Raises
    ------
    ProblemError
        On mismatched shapes, an infinite or NaN bound, or an empty box.
    """
    lb = np.asarray(lb, dtype=np.float64)
    ub = np.asarray(ub, dtype=np.float64)
    single = lb.ndim == 1
    lb, ub = np.atleast_2d(lb), np.atleast_2d(ub)
    d = network.input_dim
    if lb.shape != ub.shape or lb.shape[1] != d:
        raise ProblemError(
            f"box bounds have shapes {lb.shape} and {ub.shape}; the network has {d} inputs"
        )
    if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
        raise ProblemError("neuron bounds need a bounded box: an input bound is infinite or NaN")
    if np.any(lb > ub):
        raise ProblemError("box is empty: some lb > ub")
    return lb, ub, single


@dataclass
class LayerBounds:
    """Neuron bounds of a network over one or many input boxes: the one bounds container.

    Every bound method (``reluopt.bounds.compute_bounds``) and the node bounding of branch and
    bound (``reluopt.bounds.node``) return it. Box ``i`` of a batch is row ``i`` of every array.

    Parameters
    ----------
    lower, upper : list of np.ndarray
        Pre-activation bounds of hidden layer ``l``, each of shape (B, n_l).
    out_lower, out_upper : np.ndarray
        Bounds of the outputs, shape (B, m).
    method : str
        How they were computed ('ibp', 'crown', 'alpha-crown', 'lp-obbt', 'mip-obbt', 'node', ...).
    stats : dict
        Method statistics (times, solver counts).
    box_lower, box_upper : np.ndarray or None
        The input boxes (B, d) the bounds hold on, when the producer records them.
    lines : list of tuple
        Per hidden layer, the relaxation lines ``(a_lo, b_lo, a_up, b_up)`` (each (B, n_l)) that
        CROWN used; empty when not recorded (``relaxation_lines`` recomputes them). Recorded
        lines must belong to ``lower``/``upper``: tighten a copy without lines, not in place.
    """

    lower: list[np.ndarray]
    upper: list[np.ndarray]
    out_lower: np.ndarray
    out_upper: np.ndarray
    method: str
    stats: dict = field(default_factory=dict)
    box_lower: np.ndarray | None = None
    box_upper: np.ndarray | None = None
    lines: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def batch(self) -> int:
        """Number of boxes."""
        return self.out_lower.shape[0]

    @property
    def lo(self) -> np.ndarray:
        """Lower corners of the boxes (B, d); a ProblemError when the bounds carry no boxes."""
        if self.box_lower is None:
            raise ProblemError(f"these {self.method} bounds do not record their input boxes")
        return self.box_lower

    @property
    def hi(self) -> np.ndarray:
        """Upper corners of the boxes (B, d); a ProblemError when the bounds carry no boxes."""
        if self.box_upper is None:
            raise ProblemError(f"these {self.method} bounds do not record their input boxes")
        return self.box_upper

    def layer(self, l: int, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of hidden layer ``l`` for box ``i`` as 1-D arrays.

        Parameters
        ----------
        l : int
            Hidden layer index.
        i : int
            Box index.

        Returns
        -------
        tuple of np.ndarray
            ``(lower, upper)`` of shape (n_l,).
        """
        return self.lower[l][i], self.upper[l][i]

    def select(self, idx) -> LayerBounds:
        """Bounds of a subset of the boxes (their boxes and lines too, when recorded).

        Parameters
        ----------
        idx : index or array
            Box indices or a boolean mask, as for numpy indexing of the first axis.

        Returns
        -------
        LayerBounds
            A new container with the selected rows.
        """
        return LayerBounds(
            [a[idx] for a in self.lower], [a[idx] for a in self.upper],
            self.out_lower[idx], self.out_upper[idx], self.method, dict(self.stats),
            None if self.box_lower is None else self.box_lower[idx],
            None if self.box_upper is None else self.box_upper[idx],
            [(a[idx], b[idx], c[idx], d[idx]) for a, b, c, d in self.lines],
        )

    def relaxation_lines(self, network: Network, alphas=None) -> list:
        """The linear relaxation of every hidden layer on these bounds (``Activation.relaxation``).

        Parameters
        ----------
        network : Network
            The network the bounds belong to.
        alphas : list of np.ndarray or None
            Lower slopes per hidden layer (alpha-CROWN); None for the adaptive CROWN choice,
            which reuses the recorded ``lines`` when there are any.

        Returns
        -------
        list of tuple
            Per hidden layer ``(a_lo, b_lo, a_up, b_up)``, each (B, n_l).
        """
        if alphas is None and self.lines:
            return self.lines
        return [layer.act.relaxation(L, U, None if alphas is None else alphas[j])
                for j, (layer, L, U) in enumerate(zip(network.hidden_layers, self.lower, self.upper,
                                                      strict=True))]

    def unstable(self, network: Network) -> np.ndarray:
        """Number of unstable neurons per box.

        Parameters
        ----------
        network : Network
            The network the bounds belong to.

        Returns
        -------
        np.ndarray
            Integer counts of shape (B,).
        """
        total = np.zeros(self.batch, dtype=np.int64)
        for layer, L, U in zip(network.hidden_layers, self.lower, self.upper, strict=True):
            total += layer.act.unstable(L, U).sum(axis=1)
        return total

    def stability(self, network: Network, i: int = 0) -> list[dict]:
        """Per hidden layer, how the neurons split into stable and unstable, for reports and MIP sizing.

        Parameters
        ----------
        network : Network
            The network the bounds are of.
        i : int
            Which box of the batch.

        Returns
        -------
        list of dict
            Per layer: ``layer``, ``neurons``, counts of stably ``inactive``, stably ``active``,
            ``saturated`` and ``unstable`` neurons, ``sum_range`` and ``max_bigM`` (the largest
            ``max(U, -L)`` of an unstable neuron).
        """
        out = []
        for l, layer in enumerate(network.hidden_layers):
            L, U = self.lower[l][i], self.upper[l][i]
            ph = layer.act.classify(L, U)
            inactive, active, saturated = ph.inactive, ph.linear, ph.saturated
            unstable = ~ph.stable
            out.append({
                "layer": l,
                "neurons": int(L.shape[0]),
                "inactive": int(inactive.sum()),
                "active": int(active.sum()),
                "saturated": int(saturated.sum()),
                "unstable": int(unstable.sum()),
                "sum_range": float(np.sum(U - L)),
                "max_bigM": float(np.max(np.maximum(U, -L)[unstable])) if unstable.any() else 0.0,
            })
        return out

    def n_unstable(self, network: Network, i: int = 0) -> int:
        """The number of unstable neurons in box ``i``: the binaries a MIP needs.

        Parameters
        ----------
        network : Network
            The network the bounds are of.
        i : int
            Which box of the batch.

        Returns
        -------
        int
        """
        return sum(s["unstable"] for s in self.stability(network, i))

    def stable_fraction(self, network: Network, i: int = 0) -> float:
        """The fraction of hidden neurons that the bounds prove stable in box ``i``.

        Parameters
        ----------
        network : Network
            The network the bounds are of.
        i : int
            Which box of the batch.

        Returns
        -------
        float
            In ``[0, 1]`` (1 without hidden neurons).
        """
        st = self.stability(network, i)
        total = sum(s["neurons"] for s in st)
        return 1.0 - sum(s["unstable"] for s in st) / max(total, 1)
