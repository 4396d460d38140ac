"""One MILP of a general model: every network's formulation (``embed.core.formulate``) in one sparse model.

Networks are formulated in order. A network's input box comes from the bounds of the columns
feeding it through its affine feed (interval arithmetic, rounded outward; on request also LPs
over the model's linear constraints), so a chained network's box comes from the output bounds
of the networks before it. Each formulation (reluopt's bounds, big-M without stable neurons) is
then substituted into the model: its input columns are replaced by the feed ``F v + f`` and its
output columns are the model's output columns. The columns of the result are the model's
columns first, then each network's internal ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..bounds import LayerBounds, check_method
from ..bounds.core import outward
from ..embed.core import Embedding, formulate
from ..errors import ProblemError
from ..milp.backends import ERROR, get_backend
from ..milp.backends.base import widen
from ..milp.formulation import MilpModel

if TYPE_CHECKING:
    from .core import Feed, Model


@dataclass
class NetPart:
    """One network inside the model's MILP.

    Attributes
    ----------
    feed : Feed
    embedding : Embedding
    colmap : numpy.ndarray
        The global column of each column of the embedding's model (-1: an input, substituted).
    lb, ub : numpy.ndarray
        The input box its bounds were computed over.
    """

    feed: Feed
    embedding: Embedding
    colmap: np.ndarray
    lb: np.ndarray
    ub: np.ndarray


@dataclass
class ModelMilp:
    """The model's MILP in max form (``sign`` times the user's objective).

    Attributes
    ----------
    milp : MilpModel
        Columns: the model's columns, then each network's internal ones.
    parts : list of NetPart
    n_model : int
        The model's column count.
    sign : float
        1 for max, -1 for min.
    stats : dict
        binaries, stable and hidden neurons, largest big-M, rows, columns, bound method, and a
        ``scaling_issue`` (None, or why the solver's answer may not be exact).
    """

    milp: MilpModel
    parts: list[NetPart]
    n_model: int
    sign: float
    stats: dict

    def start(self, model: Model, u) -> np.ndarray:
        """The full column vector at decision ``u`` (a MIP start), by forward passes.

        Parameters
        ----------
        model : Model
        u : array_like, shape (n_vars,)

        Returns
        -------
        numpy.ndarray
        """
        v = model.columns_of(u)[0]
        out = np.zeros(self.milp.n_cols)
        out[: self.n_model] = v
        for part in self.parts:
            x = part.feed.rows(self.n_model) @ v + part.feed.f
            values = part.embedding.model.point_to_columns(x)
            keep = part.colmap >= 0
            out[part.colmap[keep]] = values[keep]
        return out


def column_labels(model: Model) -> list[str]:
    """Each model column's name in expressions (``x[1]``, ``units``, ``y1[0]``).

    Parameters
    ----------
    model : Model

    Returns
    -------
    list of str
    """
    labels: list[str] = []
    for b in model.blocks:
        labels += b.entries()
    return labels


def feed_box(model: Model, k: int, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The input box of network ``k`` from column bounds ``[lo, hi]`` (interval arithmetic, outward).

    Parameters
    ----------
    model : Model
    k : int
        The network's index.
    lo, hi : numpy.ndarray
        Bounds of every model column.

    Returns
    -------
    lb, ub : numpy.ndarray

    Raises
    ------
    ProblemError
        When a column with an infinite bound enters the network (each is named).
    """
    feed = model.feeds[k]
    F = feed.rows(model.n_cols)
    used = np.any(F != 0, axis=0)
    bad = np.nonzero(used & ~(np.isfinite(lo) & np.isfinite(hi)))[0]
    if bad.size:
        labels = column_labels(model)
        listed = ", ".join(f"{labels[j]} [{lo[j]:g}, {hi[j]:g}]" for j in bad[:5])
        raise ProblemError(f"network {feed.out.name!r} needs bounded inputs, but these variables feed it without "
                           f"finite bounds: {listed}; give them lower and upper bounds")
    with np.errstate(invalid="ignore"):
        Fp, Fn = np.maximum(F, 0.0), np.minimum(F, 0.0)
        lo0, hi0 = np.where(used, lo, 0.0), np.where(used, hi, 0.0)
        low = Fp @ lo0 + Fn @ hi0 + feed.f
        high = Fp @ hi0 + Fn @ lo0 + feed.f
        mag = np.abs(F) @ np.maximum(np.abs(lo0), np.abs(hi0)) + np.abs(feed.f)
    # a constant feature, or one fed by fixed columns only, is one point: no rounding margin, so
    # that the box is not a sliver the solver's tolerances cannot resolve
    exact = (high == low) | ~np.any(F != 0, axis=1)
    wl, wh = outward(low, high, mag)
    return np.where(exact, low, wl), np.where(exact, low, wh)


def plain_milp(cost, col_lower, col_upper, integrality, A, row_lower, row_upper, network, bounds,
               offset: float = 0.0, stats: dict | None = None) -> MilpModel:
    """A ``MilpModel`` that is not one network's model (index arrays empty), for the back-ends.

    Parameters
    ----------
    cost, col_lower, col_upper, integrality, A, row_lower, row_upper
        The model's arrays.
    network, bounds
        Any network of the model and its bounds (the back-ends do not read them).
    offset : float, optional
    stats : dict, optional

    Returns
    -------
    MilpModel
    """
    none = np.zeros(0, dtype=np.int64)
    return MilpModel(cost=np.asarray(cost, np.float64), offset=float(offset), col_lower=col_lower,
                     col_upper=col_upper, integrality=np.asarray(integrality, np.int8), A=sp.csr_matrix(A),
                     row_lower=row_lower, row_upper=row_upper, x_cols=none, h_cols=[], z_cols=[], y_cols=none,
                     network=network, bounds=bounds, stats=dict(stats or {}))


def lp_box(model: Model, k: int, lo: np.ndarray, hi: np.ndarray, lb: np.ndarray, ub: np.ndarray,
           network, bounds: LayerBounds | None) -> tuple[np.ndarray, np.ndarray]:
    """Network ``k``'s input box tightened by LPs over the model's linear constraints.

    Each input's min and max over ``{lo <= v <= hi, A v <= e}``; a bound counts only after an
    optimal, status-checked LP and is widened (``widen``); anything else keeps ``[lb, ub]``.

    Parameters
    ----------
    model : Model
    k : int
    lo, hi : numpy.ndarray
        Column bounds.
    lb, ub : numpy.ndarray
        The interval box (kept where an LP fails).
    network, bounds
        Passed through to the LP model (unused by the back-ends).

    Returns
    -------
    lb, ub : numpy.ndarray
    """
    A, e = model.constraint_rows()
    if A.shape[0] == 0:
        return lb, ub
    feed = model.feeds[k]
    F = feed.rows(model.n_cols)
    backend = get_backend("highs")
    lb, ub = lb.copy(), ub.copy()
    for i in np.nonzero(np.any(F != 0, axis=1))[0]:
        for s in (1.0, -1.0):    # max F_i v, then max -F_i v
            lp = plain_milp(s * F[i], lo, hi, np.zeros(model.n_cols), A, np.full(A.shape[0], -np.inf), e,
                            network, bounds)
            out = backend.solve(lp, relax=True, time_limit=10.0)
            if out.status == ERROR:
                continue
            if out.status == "infeasible":
                raise ProblemError("the model's linear constraints and variable bounds have no solution "
                                   "(an LP over them is infeasible)")
            if out.status != "optimal" or out.objective is None:
                continue
            top = widen(out.objective) + abs(feed.f[i]) * 1e-12
            if s > 0:
                ub[i] = min(ub[i], top + feed.f[i])
            else:
                lb[i] = max(lb[i], -top + feed.f[i])
    return lb, np.maximum(ub, lb)


def formulate_model(model: Model, *, bounds: str = "crown", col_lb=None, col_ub=None,
                    bound_options: dict | None = None) -> ModelMilp:
    """The model as one MILP (max form) with reluopt's bounds for every network.

    Parameters
    ----------
    model : Model
    bounds : str, optional
        A bound method of ``reluopt.bounds.BOUND_METHODS``; 'lp-obbt' and 'mip-obbt' also
        tighten each input box by LPs over the model's linear constraints first.
    col_lb, col_ub : array_like, optional
        Bounds of the model's columns in place of the variables' own (e.g. a branch-and-bound
        node's box); outputs get their network's bounds either way.
    bound_options : dict, optional
        Options of ``compute_bounds`` (``time_limit``, ...).

    Returns
    -------
    ModelMilp
    """
    check_method(bounds)
    if not model.feeds:
        raise ProblemError("the model has no network: add one with add_network(...)")
    c, d = model.objective_vector()
    sign = 1.0 if model.sense == "max" else -1.0
    lo, hi = model.bounds()
    if col_lb is not None:
        lo, hi = np.array(col_lb, dtype=np.float64), np.array(col_ub, dtype=np.float64)
    n = model.n_cols
    use_lp = bounds in ("lp-obbt", "mip-obbt")
    parts: list[NetPart] = []
    next_col = n
    extra_lo: list[np.ndarray] = []
    extra_hi: list[np.ndarray] = []
    extra_int: list[np.ndarray] = []
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
    row_lo: list[np.ndarray] = []
    row_hi: list[np.ndarray] = []
    issues: list[str] = []
    for k, feed in enumerate(model.feeds):
        lb, ub = feed_box(model, k, lo, hi)
        if use_lp:
            lb, ub = lp_box(model, k, lo, hi, lb, ub, feed.network, parts[0].embedding.bounds if parts else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # the scaling issue is reported in stats (and refused by mip)
            emb = formulate(feed.network, lb, ub, bounds=bounds, bound_options=bound_options)
        em = emb.model
        out_cols = feed.out.columns
        lo[out_cols] = np.maximum(lo[out_cols], em.col_lower[em.y_cols])
        hi[out_cols] = np.minimum(hi[out_cols], em.col_upper[em.y_cols])
        colmap = np.full(em.n_cols, -1, dtype=np.int64)
        colmap[em.y_cols] = out_cols
        inner = np.ones(em.n_cols, dtype=bool)
        inner[em.x_cols] = False
        inner[em.y_cols] = False
        idx = np.nonzero(inner)[0]
        colmap[idx] = next_col + np.arange(idx.size)
        next_col += idx.size
        extra_lo.append(em.col_lower[idx])
        extra_hi.append(em.col_upper[idx])
        extra_int.append(em.integrality[idx])
        Ae = em.A.tocsc()
        rest = np.nonzero(colmap >= 0)[0]
        A_rest = Ae[:, rest].tocoo()
        A_x = Ae[:, em.x_cols]
        A_in = sp.coo_matrix(A_x @ sp.csr_matrix(feed.rows(n)))    # the inputs' terms, substituted
        blocks.append((np.concatenate([A_rest.data, A_in.data]), np.concatenate([A_rest.row, A_in.row]),
                       np.concatenate([colmap[rest][A_rest.col], A_in.col]), em.n_rows))
        shift = A_x @ feed.f
        row_lo.append(em.row_lower - shift)
        row_hi.append(em.row_upper - shift)
        if emb.stats["scaling_issue"]:
            issues.append(f"network {feed.out.name!r}: {emb.stats['scaling_issue']}")
        parts.append(NetPart(feed, emb, colmap, lb, ub))
    n_total = next_col
    mats = [sp.csr_matrix((data, (r, col)), shape=(rows, n_total)) for data, r, col, rows in blocks]
    A_user, e_user = model.constraint_rows()
    if A_user.shape[0]:
        mats.append(sp.csr_matrix(np.hstack([A_user, np.zeros((A_user.shape[0], n_total - n))])))
        row_lo.append(np.full(A_user.shape[0], -np.inf))
        row_hi.append(e_user)
    integrality = np.concatenate([model.integer_mask().astype(np.int8), *extra_int])
    cost = np.concatenate([sign * c, np.zeros(n_total - n)])
    stats = _stats(parts, bounds)
    stats["scaling_issue"] = "; ".join(issues) or None
    first = parts[0].embedding
    milp = plain_milp(cost, np.concatenate([lo, *extra_lo]), np.concatenate([hi, *extra_hi]), integrality,
                      sp.vstack(mats, format="csr"), np.concatenate(row_lo), np.concatenate(row_hi),
                      first.network, first.bounds, offset=sign * d, stats=stats)
    stats.update(rows=milp.n_rows, columns=milp.n_cols, nonzeros=int(milp.A.nnz),
                 binaries=int(milp.integrality[n:].sum()))
    return ModelMilp(milp, parts, n, sign, stats)


def _stats(parts: list[NetPart], bounds: str) -> dict:
    s = [p.embedding.stats for p in parts]
    return {
        "bounds": bounds,
        "networks": len(parts),
        "hidden_neurons": sum(x["hidden_neurons"] for x in s),
        "stable_neurons": sum(x["stable_neurons"] for x in s),
        "largest_big_m": max(x["largest_big_m"] for x in s),
        "per_network": {p.feed.out.name: {k: x[k] for k in ("binaries", "stable_neurons", "hidden_neurons",
                                                            "largest_big_m")} for p, x in zip(parts, s, strict=True)},
    }


def objective_box_bound(model: Model, mm: ModelMilp) -> float:
    """A bound of the objective (max form) from the columns' bounds alone (``inf`` if unbounded).

    Parameters
    ----------
    model : Model
    mm : ModelMilp

    Returns
    -------
    float
    """
    c = mm.milp.cost[: mm.n_model]
    lo, hi = mm.milp.col_lower[: mm.n_model], mm.milp.col_upper[: mm.n_model]
    with np.errstate(invalid="ignore"):
        terms = np.where(c > 0, c * hi, np.where(c < 0, c * lo, 0.0))
    total = float(np.sum(terms) + mm.milp.offset)
    if not np.isfinite(total):
        return np.inf
    return total + 1e-9 * (1.0 + float(np.sum(np.abs(terms))))
