"""The activation interface (``Activation``), the phase and MILP-row records it returns,
and the identity (the affine output layer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

_INF = np.inf


# ----------------------------------------------------------------------------- phases
@dataclass
class Phases:
    """Which linear piece (or which kinks) each neuron of a layer can be in, from [L, U].

    ``inactive`` (below the first kink), ``linear`` (between the kinks) and ``saturated``
    (above the second kink) are stable: one linear piece on the whole interval. ``lower``:
    only the kink at 0 lies inside (binary z1, "g > 0"); ``upper``: only the kink at tau
    (binary z2, "g >= tau"); ``both``: both kinks (two binaries, z2 <= z1).

    Attributes
    ----------
    inactive, linear, saturated, lower, upper, both : np.ndarray
        Boolean masks of the neurons in each phase class (shape of ``L``).
    L, U : np.ndarray
        The pre-activation bounds classified.
    tau : float
        The second kink (``inf``: none).
    """

    inactive: np.ndarray
    linear: np.ndarray
    saturated: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    both: np.ndarray
    L: np.ndarray
    U: np.ndarray
    tau: float = _INF

    @property
    def z1(self) -> np.ndarray:
        return self.lower | self.both

    @property
    def z2(self) -> np.ndarray:
        return self.upper | self.both

    @property
    def stable(self) -> np.ndarray:
        return self.inactive | self.linear | self.saturated


# ----------------------------------------------------------------------------- MILP rows
@dataclass
class Rows:
    """One block of MILP rows, one row per neuron of ``mask``:

    ``h_coef * h - g_coef * g + sum_k coef_k * z_k`` in ``[lo, hi]``,

    with ``g = W h_prev + b`` the neuron's pre-activation (the formulation substitutes it),
    ``z_0`` its "g > 0" binary and ``z_1`` its "g >= tau" binary. Coefficients and sides are
    scalars or per-neuron arrays of the layer.

    Attributes
    ----------
    mask : np.ndarray
        The neurons (boolean) with a row in this block.
    h_coef, g_coef : float or np.ndarray
        Coefficients of the post- and pre-activation.
    z : tuple
        Coefficients of the binaries ``z_0``, ``z_1`` (as many as used).
    lo, hi : float or np.ndarray
        The row's sides.
    """

    mask: np.ndarray
    h_coef: float
    g_coef: Any
    z: tuple = ()
    lo: Any = -_INF
    hi: Any = _INF


@dataclass
class MilpLayer:
    """The big-M formulation of one hidden layer given its bounds.

    ``keep``: neurons with a column ``h`` (the others are identically 0 on the bounds and
    have no column); ``h_lower``/``h_upper``: column bounds (all neurons); ``binaries``: the
    neurons with a binary of each kind (z_0 "g > 0", z_1 "g >= tau"); ``rows``: the blocks.

    Attributes
    ----------
    phases : Phases
        The classification of the layer's neurons by its bounds.
    keep, h_lower, h_upper : np.ndarray
        Neurons with a column, and the column bounds.
    binaries : tuple of np.ndarray
        Masks of the neurons with a ``z_0`` and with a ``z_1`` binary.
    rows : list of Rows
        The row blocks.
    """

    phases: Phases
    keep: np.ndarray
    h_lower: np.ndarray
    h_upper: np.ndarray
    binaries: tuple[np.ndarray, np.ndarray]
    rows: list[Rows] = field(default_factory=list)


# ----------------------------------------------------------------------------- base
class Activation:
    """Base class: an elementwise, monotone, piecewise-linear activation."""

    name: ClassVar[str] = ""
    #: names of the Layer attributes this activation reads (its parameters)
    params: ClassVar[tuple[str, ...]] = ()
    #: allowed in a hidden layer (identity is for the output layer only: hidden affine
    #: layers are folded into the next one)
    hidden: ClassVar[bool] = True
    #: alpha-CROWN optimises the lower slopes of its unstable neurons
    optimisable: ClassVar[bool] = False
    #: rescaling by positive homogeneity needs one factor for the whole layer (a shared cap)
    uniform_scale: ClassVar[bool] = False

    @classmethod
    def check(cls, layer, where: str) -> dict:
        """The layer's parameters, validated and normalised.

        Parameters
        ----------
        layer : Layer
            Any object with the activation's parameters as attributes.
        where : str
            Names the layer in error messages.

        Returns
        -------
        dict
            ``parameter name -> value``.

        Raises
        ------
        ModelError
            A parameter is missing or invalid.
        """
        return {}

    @property
    def kinks(self) -> tuple[float, ...]:
        """Pre-activation values where the slope changes, increasing."""
        return ()

    @property
    def slope_values(self) -> tuple[float, ...]:
        """The slopes of the linear pieces, by phase."""
        return (1.0,)

    def identity_window(self) -> tuple[float, float]:
        """An interval of ``g`` on which the activation is the identity.

        Returns
        -------
        tuple of float
            ``(lo, hi)``.
        """
        return -_INF, _INF

    def scaled(self, s: float) -> dict:
        """Parameters after scaling the pre-activations by ``s > 0`` (``act'(s g) = s act(g)``).

        Parameters
        ----------
        s : float
            The positive scale factor.

        Returns
        -------
        dict
            ``parameter name -> value`` of the scaled activation.
        """
        return {}

    # --------------------------------------------------------------- points
    def forward(self, g: np.ndarray) -> np.ndarray:
        """The activation at points.

        Parameters
        ----------
        g : np.ndarray
            Pre-activations (any shape).

        Returns
        -------
        np.ndarray
            ``act(g)``, elementwise.
        """
        raise NotImplementedError

    def interval(self, L: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image of ``[L, U]`` (monotone activations: the images of the ends).

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds.

        Returns
        -------
        tuple of np.ndarray
            ``(act(L), act(U))``.
        """
        return self.forward(L), self.forward(U)

    def phase(self, g: np.ndarray) -> np.ndarray:
        """Phase (int8) at points: the number of kinks below (0 at a kink at 0; tau counts
        as above the kink at tau).

        Parameters
        ----------
        g : np.ndarray
            Pre-activations.

        Returns
        -------
        np.ndarray
            The phase of each point (int8, shape of ``g``).
        """
        raise NotImplementedError

    def slope(self, g: np.ndarray) -> np.ndarray:
        """The derivative at points (one-sided at a kink: the slope of ``phase(g)``), as an
        array to multiply with; boolean when every slope is 0 or 1.

        Parameters
        ----------
        g : np.ndarray
            Pre-activations.

        Returns
        -------
        np.ndarray
            The slope at each point (shape of ``g``).
        """
        raise NotImplementedError

    def piece(self, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The linear piece of each phase: the activation is ``slope * g + offset`` there.

        Parameters
        ----------
        phase : np.ndarray
            Phases (as from ``phase``).

        Returns
        -------
        tuple of np.ndarray
            ``(slope, offset)``, shape of ``phase``.
        """
        raise NotImplementedError

    def phase_bounds(self, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The closed pre-activation interval of each neuron's phase.

        Parameters
        ----------
        phase : np.ndarray
            Phases (as from ``phase``).

        Returns
        -------
        tuple of np.ndarray
            ``(lo, hi)``, shape of ``phase``.
        """
        raise NotImplementedError

    def slope_bounds(self, L: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on every slope the neuron can take inside ``(L, U)``.

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds.

        Returns
        -------
        tuple of np.ndarray
            Float ``(lo, hi)``, shape of ``L``.
        """
        raise NotImplementedError

    def step_to_kink(self, g: np.ndarray, dg: np.ndarray) -> np.ndarray:
        """Smallest step ``t >= 0`` (``inf``: none) along ``g + t dg`` before a kink is met
        from the current phase (a point on a kink moving out of its phase gets 0).

        Parameters
        ----------
        g, dg : np.ndarray
            Points and directions (broadcast together).

        Returns
        -------
        np.ndarray
            The step length per element.
        """
        ph = self.phase(g)
        t = np.full(np.broadcast_shapes(g.shape, dg.shape), _INF)
        with np.errstate(divide="ignore", invalid="ignore"):
            for j, k in enumerate(self.kinks):
                above = ph > j
                cand = np.where(above & (dg < 0), (g - k) / -dg, _INF)
                cand = np.where(~above & (dg > 0), (k - g) / dg, cand)
                t = np.minimum(t, cand)
        return t

    # --------------------------------------------------------------- bounds
    def classify(self, L: np.ndarray, U: np.ndarray) -> Phases:
        """Which phases each neuron can be in on ``[L, U]``.

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds.

        Returns
        -------
        Phases
            The stable and unstable masks.
        """
        raise NotImplementedError

    def unstable(self, L: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Neurons not provably in one linear piece on ``[L, U]``.

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds (any shape).

        Returns
        -------
        np.ndarray
            Boolean mask, shape of ``L``.
        """
        return ~self.classify(L, U).stable

    def relaxation(self, L: np.ndarray, U: np.ndarray, alpha: np.ndarray | None = None):
        """Lines ``a_lo g + b_lo <= act(g) <= a_up g + b_up`` valid on ``[L, U]``.

        ``alpha`` (shape of L) sets the lower slope of the neurons of ``lower_slope_range``
        (clipped to their admissible range); by default CROWN's adaptive choice is used.

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds.
        alpha : np.ndarray, optional
            Lower slopes for alpha-CROWN.

        Returns
        -------
        tuple of np.ndarray
            ``(a_lo, b_lo, a_up, b_up)``, each of the shape of ``L``.
        """
        raise NotImplementedError

    def lower_slope_range(self, L: np.ndarray, U: np.ndarray):
        """``(mask, lo, hi)``: the neurons whose lower line is ``a g`` with any ``a`` in
        ``[lo, hi]`` (each a valid relaxation), for alpha-CROWN.

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds.

        Returns
        -------
        tuple of np.ndarray
            ``(mask, lo, hi)``, shape of ``L``.
        """
        none = np.zeros(np.shape(L), dtype=bool)
        return none, np.zeros(np.shape(L)), np.zeros(np.shape(L))

    # --------------------------------------------------------------- MILP
    def milp(self, L: np.ndarray, U: np.ndarray) -> MilpLayer:
        """The big-M formulation of a hidden layer with these pre-activation bounds.

        Parameters
        ----------
        L, U : np.ndarray
            Pre-activation bounds of the layer's neurons.

        Returns
        -------
        MilpLayer
            Columns, binaries and row blocks for ``milp.formulation``.
        """
        raise NotImplementedError


# ----------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class Identity(Activation):
    """The affine output layer."""

    name: ClassVar[str] = "identity"
    hidden: ClassVar[bool] = False

    def forward(self, g):
        return g

    def phase(self, g):
        return np.ones(np.shape(g), dtype=np.int8)

    def slope(self, g):
        return np.ones(np.shape(g), dtype=bool)

    def piece(self, phase):
        return np.ones(np.shape(phase)), np.zeros(np.shape(phase))

    def phase_bounds(self, phase):
        return np.full(np.shape(phase), -_INF), np.full(np.shape(phase), _INF)

    def slope_bounds(self, L, U):
        return np.ones(np.shape(L)), np.ones(np.shape(L))

    def classify(self, L, U):
        none = np.zeros(np.shape(L), dtype=bool)
        return Phases(none, ~none, none, none, none, none, L, U)

    def unstable(self, L, U):
        return np.zeros(np.shape(L), dtype=bool)

    def relaxation(self, L, U, alpha=None):
        one, zero = np.ones_like(L), np.zeros_like(L)
        return one, zero, one.copy(), zero.copy()

    def milp(self, L, U):
        ph = self.classify(L, U)
        none = np.zeros_like(ph.linear)
        return MilpLayer(ph, ~none, L, U, (none, none), [Rows(ph.linear, 1.0, 1.0, (), 0.0, 0.0)])
