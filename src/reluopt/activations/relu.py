"""The ReLU family: ReLU, the clipped ReLU ``min(max(0, g), tau)`` and the leaky ReLU
``max(g, alpha g)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ModelError
from .base import Activation, MilpLayer, Phases, Rows

_INF = np.inf


# ----------------------------------------------------------------------------- ReLU
@dataclass(frozen=True)
class ReLU(Activation):
    """``max(0, g)``."""

    name: ClassVar[str] = "relu"
    optimisable: ClassVar[bool] = True

    @property
    def kinks(self):
        return (0.0,)

    @property
    def slope_values(self):
        return (0.0, 1.0)

    def identity_window(self):
        return 0.0, _INF

    def forward(self, g):
        return np.maximum(g, 0.0)

    def phase(self, g):
        return (g > 0).astype(np.int8)

    def slope(self, g):
        return g > 0

    def piece(self, phase):
        return (np.asarray(phase) == 1).astype(np.float64), np.zeros(np.shape(phase))

    def phase_bounds(self, phase):
        phase = np.asarray(phase)
        lo = np.where(phase >= 1, 0.0, -_INF)
        hi = np.where(phase == 0, 0.0, _INF)
        return lo, hi

    def slope_bounds(self, L, U):
        return (L > 0).astype(float), (U > 0).astype(float)

    def classify(self, L, U):
        inactive = U <= 0
        none = np.zeros_like(inactive)
        linear = (L >= 0) & ~inactive
        lower = ~(inactive | linear)
        return Phases(inactive, linear, none, lower, none, none, L, U)

    def unstable(self, L, U):
        return (L < 0) & (U > 0)

    def relaxation(self, L, U, alpha=None):
        # unstable (L < 0 < U): the chord above, a g (a in [0, 1]) below; whole-array
        # expressions (no boolean indexing): this runs once per layer for every batch of nodes
        L = np.asarray(L, dtype=np.float64)
        U = np.asarray(U, dtype=np.float64)
        active = L >= 0
        unstable = (L < 0) & (U > 0)
        width = np.where(unstable, U - L, 1.0)
        slope = np.where(unstable, U, 0.0) / width
        a_up = np.where(active, 1.0, slope)
        b_up = -slope * np.where(unstable, L, 0.0)
        if alpha is None:
            lower = (U > -L).astype(np.float64)
        else:
            lower = np.clip(np.broadcast_to(alpha, L.shape), 0.0, 1.0)
        a_lo = np.where(active, 1.0, np.where(unstable, lower, 0.0))
        return a_lo, np.zeros_like(L), a_up, b_up + 0.0

    def lower_slope_range(self, L, U):
        return (L < 0) & (U > 0), np.zeros(np.shape(L)), np.ones(np.shape(L))

    def milp(self, L, U):
        ph = self.classify(L, U)
        lo, hi = self.interval(L, U)
        none = np.zeros_like(ph.inactive)
        return MilpLayer(ph, ~ph.inactive, lo, hi, (ph.z1, none), _relu_rows(ph, L, U))


def _relu_rows(ph: Phases, L, U) -> list[Rows]:
    """``h = g`` on linear neurons; on ``lower`` ones (L < 0 < U): ``h >= g``,
    ``h <= g - L (1 - z1)``, ``h <= U z1`` (and ``h >= 0`` from the column bound)."""
    return [
        Rows(ph.linear, 1.0, 1.0, (), 0.0, 0.0),
        Rows(ph.lower, 1.0, 1.0, (), 0.0, _INF),
        Rows(ph.lower, 1.0, 1.0, ((0, -L),), -_INF, -L),
        Rows(ph.lower, 1.0, 0.0, ((0, -U),), -_INF, 0.0),
    ]


# ----------------------------------------------------------------------------- clipped ReLU
@dataclass(frozen=True)
class ClippedReLU(Activation):
    """``min(max(0, g), tau)``: kinks at 0 and at the cap ``tau > 0``.

    Parameters
    ----------
    tau : float
        The cap (finite, positive).
    """

    tau: float
    name: ClassVar[str] = "clipped_relu"
    params: ClassVar[tuple[str, ...]] = ("tau",)
    uniform_scale: ClassVar[bool] = True

    @classmethod
    def check(cls, layer, where):
        tau = layer.tau
        if tau is None or not np.isfinite(tau) or tau <= 0:
            raise ModelError(f"{where}: clipped_relu needs a finite cap tau > 0, got {tau}")
        return {"tau": float(tau)}

    @property
    def kinks(self):
        return (0.0, self.tau)

    @property
    def slope_values(self):
        return (0.0, 1.0, 0.0)

    def identity_window(self):
        return 0.0, self.tau

    def scaled(self, s):
        return {"tau": float(self.tau * s)}

    def forward(self, g):
        return np.minimum(np.maximum(g, 0.0), self.tau)

    def phase(self, g):
        ph = (g > 0).astype(np.int8)
        ph[g >= self.tau] = 2
        return ph

    def slope(self, g):
        return (g > 0) & (g < self.tau)

    def piece(self, phase):
        phase = np.asarray(phase)
        return (phase == 1).astype(np.float64), np.where(phase == 2, self.tau, 0.0)

    def phase_bounds(self, phase):
        phase = np.asarray(phase)
        lo = np.where(phase == 2, self.tau, np.where(phase == 1, 0.0, -_INF))
        hi = np.where(phase == 0, 0.0, np.where(phase == 1, self.tau, _INF))
        return lo, hi

    def slope_bounds(self, L, U):
        return ((L > 0) & (U < self.tau)).astype(float), ((U > 0) & (L < self.tau)).astype(float)

    def classify(self, L, U):
        tau = float(self.tau)
        inactive = U <= 0
        saturated = (L >= tau) & ~inactive
        linear = (L >= 0) & (U <= tau) & ~inactive & ~saturated
        rest = ~(inactive | saturated | linear)
        lower = rest & (L < 0) & (U <= tau)
        upper = rest & (L >= 0)
        both = rest & ~lower & ~upper
        return Phases(inactive, linear, saturated, lower, upper, both, L, U, tau)

    def unstable(self, L, U):
        return ((L < 0) & (U > 0)) | ((L < self.tau) & (U > self.tau))

    def relaxation(self, L, U, alpha=None):
        a_up = np.zeros_like(L)
        b_up = np.zeros_like(L)
        a_lo = np.zeros_like(L)
        b_lo = np.zeros_like(L)
        tau = self.tau
        linear = (L >= 0) & (U <= tau)
        saturated = L >= tau
        a_up[linear] = a_lo[linear] = 1.0
        b_up[saturated] = b_lo[saturated] = tau
        # lower kink only (L < 0 < U <= tau): the ReLU triangle
        m = (L < 0) & (U > 0) & (U <= tau)
        s = U[m] / (U[m] - L[m])
        a_up[m], b_up[m] = s, -s * L[m]
        a_lo[m] = (U[m] > -L[m]).astype(np.float64) if alpha is None else np.clip(alpha[m], 0, 1)
        # upper kink only (0 <= L < tau < U): concave; chord below, min(g, tau) lines above
        m = (L >= 0) & (L < tau) & (U > tau)
        s = (tau - L[m]) / (U[m] - L[m])
        a_lo[m], b_lo[m] = s, L[m] - s * L[m]
        pick = (tau - L[m]) > (U[m] - tau)  # slope 1 when most of the range is below tau
        a_up[m] = np.where(pick, 1.0, 0.0)
        b_up[m] = np.where(pick, 0.0, tau)
        # both kinks (L < 0, U > tau): lines through (L, 0)-(tau, tau) above, (0, 0)-(U, tau) below
        m = (L < 0) & (U > tau)
        s = tau / (tau - L[m])
        a_up[m], b_up[m] = s, -s * L[m]
        a_lo[m] = tau / U[m]
        return a_lo, b_lo, a_up, b_up

    def lower_slope_range(self, L, U):
        # the ReLU triangle of the lower-kink-only neurons; alpha-CROWN leaves clipped
        # layers alone (``optimisable`` is False) but CROWN accepts these slopes
        return (L < 0) & (U > 0) & (U <= self.tau), np.zeros(np.shape(L)), np.ones(np.shape(L))

    def milp(self, L, U):
        ph = self.classify(L, U)
        lo, hi = self.interval(L, U)
        tau = ph.tau
        rows = _relu_rows(ph, L, U) + [
            # kink at tau only: h <= g, h >= g - (U - tau) z2, h >= L + (tau - L) z2
            # (h <= tau: the column bound)
            Rows(ph.upper, 1.0, 1.0, (), -_INF, 0.0),
            Rows(ph.upper, 1.0, 1.0, ((1, U - tau),), 0.0, _INF),
            Rows(ph.upper, 1.0, 0.0, ((1, -(tau - L)),), L, _INF),
            # both kinks: h <= tau z1, h >= tau z2, h >= g - (U - tau) z2, h <= g - L (1 - z1)
            Rows(ph.both, 1.0, 0.0, ((0, -tau),), -_INF, 0.0),
            Rows(ph.both, 1.0, 0.0, ((1, -tau),), 0.0, _INF),
            Rows(ph.both, 1.0, 1.0, ((1, U - tau),), 0.0, _INF),
            Rows(ph.both, 1.0, 1.0, ((0, -L),), -_INF, -L),
            # and z2 <= z1
            Rows(ph.both, 0.0, 0.0, ((1, 1.0), (0, -1.0)), -_INF, 0.0),
        ]
        return MilpLayer(ph, ~ph.inactive, lo, hi, (ph.z1, ph.z2), rows)


# ----------------------------------------------------------------------------- leaky ReLU
@dataclass(frozen=True)
class LeakyReLU(Activation):
    """``max(g, alpha g)`` with ``0 < alpha < 1``: slope ``alpha`` below the kink at 0, 1 above.

    Equal to ``alpha g + (1 - alpha) relu(g)``; an unstable neuron (``L < 0 < U``) has the chord
    through ``(L, alpha L)`` and ``(U, U)`` above and ``a g`` with ``a`` in ``[alpha, 1]`` below.
    The MILP keeps a column for every neuron (the inactive piece is ``alpha g``, not 0), and an
    unstable one gets ``h >= g, h >= alpha g, h <= g - (1 - alpha) L (1 - z),
    h <= alpha g + (1 - alpha) U z`` with ``z`` the "g > 0" binary: ``z = 1`` forces ``h = g``
    and ``g >= 0``, ``z = 0`` forces ``h = alpha g`` and ``g <= 0``.

    Parameters
    ----------
    alpha : float
        The negative slope, ``0 < alpha < 1``.
    """

    alpha: float
    name: ClassVar[str] = "leaky_relu"
    params: ClassVar[tuple[str, ...]] = ("alpha",)
    optimisable: ClassVar[bool] = True

    @classmethod
    def check(cls, layer, where):
        alpha = getattr(layer, "alpha", None)
        if alpha is None or isinstance(alpha, bool) or not np.isfinite(alpha) or not 0 < alpha < 1:
            raise ModelError(f"{where}: leaky_relu needs a negative slope 0 < alpha < 1, got {alpha}")
        return {"alpha": float(alpha)}

    @property
    def kinks(self):
        return (0.0,)

    @property
    def slope_values(self):
        return (self.alpha, 1.0)

    def identity_window(self):
        return 0.0, _INF

    def forward(self, g):
        return np.maximum(g, self.alpha * g)

    def phase(self, g):
        return (g > 0).astype(np.int8)

    def slope(self, g):
        return np.where(g > 0, 1.0, self.alpha)

    def piece(self, phase):
        return np.where(np.asarray(phase) == 1, 1.0, self.alpha), np.zeros(np.shape(phase))

    def phase_bounds(self, phase):
        return ReLU().phase_bounds(phase)

    def slope_bounds(self, L, U):
        return np.where(L > 0, 1.0, self.alpha), np.where(U > 0, 1.0, self.alpha)

    def classify(self, L, U):
        return ReLU().classify(L, U)

    def unstable(self, L, U):
        return (L < 0) & (U > 0)

    def relaxation(self, L, U, alpha=None):
        a = self.alpha
        active = L >= 0
        unstable = (L < 0) & (U > 0)
        a_up = np.where(active, 1.0, a)
        b_up = np.zeros_like(L)
        a_lo = a_up.copy()
        b_lo = np.zeros_like(L)
        Lu, Uu = L[unstable], U[unstable]
        s = (Uu - a * Lu) / (Uu - Lu)
        a_up[unstable] = s
        b_up[unstable] = a * Lu - s * Lu          # the chord through (L, alpha L) and (U, U)
        if alpha is None:
            a_lo[unstable] = np.where(Uu > -Lu, 1.0, a)
        else:
            a_lo[unstable] = np.clip(alpha[unstable], a, 1.0)
        return a_lo, b_lo, a_up, b_up

    def lower_slope_range(self, L, U):
        return (L < 0) & (U > 0), np.full(np.shape(L), self.alpha), np.ones(np.shape(L))

    def milp(self, L, U):
        ph = self.classify(L, U)
        lo, hi = self.interval(L, U)
        a = self.alpha
        none = np.zeros_like(ph.inactive)
        rows = [
            Rows(ph.inactive, 1.0, a, (), 0.0, 0.0),                      # h = alpha g
            Rows(ph.linear, 1.0, 1.0, (), 0.0, 0.0),                      # h = g
            Rows(ph.lower, 1.0, 1.0, (), 0.0, _INF),                      # h >= g
            Rows(ph.lower, 1.0, a, (), 0.0, _INF),                        # h >= alpha g
            Rows(ph.lower, 1.0, 1.0, ((0, -(1 - a) * L),), -_INF, -(1 - a) * L),   # h <= g - (1-a) L (1-z)
            Rows(ph.lower, 1.0, a, ((0, -(1 - a) * U),), -_INF, 0.0),     # h <= alpha g + (1-a) U z
        ]
        return MilpLayer(ph, ~none, lo, hi, (ph.z1, none), rows)
