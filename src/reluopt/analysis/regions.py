"""Linear regions of a ReLU network over a box: exact for 1-D and 2-D inputs, sampled otherwise.

A linear region is the set of inputs sharing one activation pattern (for clipped ReLU, one
phase per neuron: inactive, linear, saturated). Each such set is a convex polyhedron, so
counting regions is counting the full-dimensional cells of the partition of the box by the
networks' (bent) hyperplanes.

Exact (``d <= 2``): the box is a convex polygon (a segment in 1-D). Layer by layer, every
cell carries the affine map ``h_{l-1} = M x + m`` valid on it, so the next layer's
pre-activations are affine on the cell; a cell is split by each neuron's line
``g_i(x) = 0`` (and ``g_i(x) = tau``) that crosses its interior, by exact convex clipping of
its vertex list. Vertices within a relative tolerance of a line count as on it, and pieces
whose area (length) is below ``area_tol`` times the box's are dropped as degenerate; so
"exact" means exact up to regions thinner than that, which floating point cannot resolve
anyway. Work is proportional to (number of regions) x (neurons crossing them).

Sampled (any ``d``): draw ``N`` uniform points in the box, count the distinct patterns
(a lower bound on the number of regions), and estimate the total with the bias-corrected
Chao1 richness estimator ``S_obs + (N-1)/N * f1 (f1 - 1) / (2 (f2 + 1))``, where ``f1``
and ``f2`` are the numbers of patterns seen exactly once and exactly twice. Chao1 treats
regions as species and samples as captures; it is itself a lower-bound estimator (it
assumes the unseen regions are about as likely as the rarest seen ones), so on networks with
many tiny regions it still under-counts. The Chapman capture-recapture estimate from two
independent halves of the sample is reported as a second opinion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ProblemError, UnsupportedError
from ..methods.region import pattern_keys as phase_keys
from ..network import Network

#: Relative tolerance for "a vertex lies on a line".
ON_LINE_TOL = 1e-9
#: Pieces smaller than this fraction of the box's area (length) are treated as degenerate.
AREA_TOL = 1e-12
#: Default cap on the number of cells an exact enumeration may create.
MAX_REGIONS = 200_000


@dataclass
class RegionCount:
    """The result of counting linear regions.

    Attributes
    ----------
    count : int
        Exact number of regions when ``exact`` is True; otherwise the number of distinct
        patterns observed.
    exact : bool
        Whether ``count`` is exact.
    method : str
        ``"exact-1d"``, ``"exact-2d"`` or ``"sampled"``.
    estimate : float or None
        The Chao1 estimate of a sampled count.
    stats : dict
        Method details (samples, singletons, Chapman estimate, ...).
    cells : list of (numpy.ndarray, numpy.ndarray)
        For exact counts in 2-D, the polygons (vertex arrays) and their phase patterns
        (concatenated over layers).
    """

    count: int
    exact: bool
    method: str
    estimate: float | None = None
    stats: dict = field(default_factory=dict)
    cells: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        """The count as a JSON-able dict, for reports.

        Returns
        -------
        dict
            ``count``, ``exact``, ``method``, ``estimate`` if any, and the entries of ``stats``.
        """
        out = {"count": self.count, "exact": self.exact, "method": self.method}
        if self.estimate is not None:
            out["estimate"] = self.estimate
        out.update(self.stats)
        return out


# ----------------------------------------------------------------------------- geometry
def _measure(P: np.ndarray) -> float:
    """Area of a convex polygon (vertices in order), or length of a segment."""
    if P.shape[0] == 0:
        return 0.0
    if P.shape[1] == 1:
        return float(P[:, 0].max() - P[:, 0].min())
    if P.shape[0] < 3:
        return 0.0
    x, y = P[:, 0], P[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip(P: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The part of convex polygon ``P`` where the affine function with vertex values ``s`` is
    >= 0 (Sutherland-Hodgman against one half-plane). Values already snapped: 0 = on line."""
    sn = np.roll(s, -1)
    Q = np.roll(P, -1, axis=0)
    keep = s >= 0
    cross = ((s > 0) & (sn < 0)) | ((s < 0) & (sn > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(cross, s / (s - sn), 0.0)
    inter = P + t[:, None] * (Q - P)
    cand = np.stack([P, inter], axis=1).reshape(-1, P.shape[1])
    mask = np.stack([keep, cross], axis=1).reshape(-1)
    out = cand[mask]
    if P.shape[1] == 1 and out.shape[0] > 2:  # a segment: keep its two end points
        out = np.array([[out[:, 0].min()], [out[:, 0].max()]])
    return out


def _box_polygon(lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    if lb.shape[0] == 1:
        return np.array([[lb[0]], [ub[0]]])
    return np.array([[lb[0], lb[1]], [ub[0], lb[1]], [ub[0], ub[1]], [lb[0], ub[1]]])


def _check_box(net: Network, lb, ub) -> tuple[np.ndarray, np.ndarray]:
    lb = np.asarray(lb, dtype=np.float64).reshape(-1)
    ub = np.asarray(ub, dtype=np.float64).reshape(-1)
    if lb.shape != ub.shape or lb.shape[0] != net.input_dim:
        raise ProblemError(
            f"box has {lb.shape[0]} lower and {ub.shape[0]} upper bounds; the network has "
            f"{net.input_dim} inputs"
        )
    if not (np.all(np.isfinite(lb)) and np.all(np.isfinite(ub))):
        raise ProblemError("counting linear regions needs a bounded box (an input bound is infinite)")
    if np.any(lb > ub):
        i = int(np.argmax(lb > ub))
        raise ProblemError(f"box is empty: lb[{i}] = {lb[i]} > ub[{i}] = {ub[i]}")
    return lb, ub


# ----------------------------------------------------------------------------- exact
def _levels(layer) -> list[float]:
    return list(layer.act.kinks)


def _phases(layer, g: np.ndarray) -> np.ndarray:
    return layer.act.phase(g)


def _split_cell(P, A, c, layer, min_measure, scale):
    """Split convex cell ``P`` by every line of this layer crossing it; returns
    ``[(polygon, phases)]`` with the layer's phase vector of each piece."""
    levels = _levels(layer)
    tol = ON_LINE_TOL * (np.abs(A).sum(axis=1) * scale + np.abs(c) + 1.0)
    out = []
    stack = [P]
    while stack:
        Q = stack.pop()
        vals = Q @ A.T + c                                  # (k, n)
        split = None
        for level in levels:
            s = vals - level
            crossing = (s.max(axis=0) > tol) & (s.min(axis=0) < -tol)
            if crossing.any():
                j = int(np.argmax(crossing))
                split = np.where(np.abs(s[:, j]) <= tol[j], 0.0, s[:, j])
                break
        if split is None:
            out.append((Q, _phases(layer, vals.mean(axis=0))))
            continue
        for side in (split, -split):
            piece = _clip(Q, side)
            if _measure(piece) > min_measure:
                stack.append(piece)
    return out


def count_regions_exact(net: Network, lb, ub, *, A=None, b=None, max_regions: int = MAX_REGIONS,
                        keep_cells: bool = True, area_tol: float = AREA_TOL) -> RegionCount:
    """Exact number of linear regions of ``net`` over the box (and ``A x <= b``), ``d <= 2``.

    Parameters
    ----------
    net : Network
        A network with 1 or 2 inputs.
    lb, ub : array_like
        The input box (finite).
    A, b : array_like, optional
        Extra linear constraints ``A x <= b`` on the input.
    max_regions : int, optional
        Cap on the number of cells created.
    keep_cells : bool, optional
        Keep the cells' polygons and patterns (for plotting).
    area_tol : float, optional
        Pieces below this fraction of the box's area (length) are dropped as degenerate.

    Returns
    -------
    RegionCount
        The exact count.

    Raises
    ------
    UnsupportedError
        The network has more than 2 inputs.
    ProblemError
        The box is bad, or more than ``max_regions`` cells would be created (use
        `count_regions_sampled` then).
    """
    lb, ub = _check_box(net, lb, ub)
    d = net.input_dim
    if d > 2:
        raise UnsupportedError(
            f"exact region enumeration handles inputs of dimension 1 or 2; this network has {d} "
            "inputs (use the sampled estimate)"
        )
    P0 = _box_polygon(lb, ub)
    if A is not None:
        A_in = np.atleast_2d(np.asarray(A, dtype=np.float64))
        b_in = np.asarray(b, dtype=np.float64).reshape(-1)
        for a_row, b_val in zip(A_in, b_in, strict=True):
            s = b_val - P0 @ a_row
            s = np.where(np.abs(s) <= ON_LINE_TOL * (np.abs(b_val) + 1.0), 0.0, s)
            P0 = _clip(P0, s)
    box_measure = _measure(_box_polygon(lb, ub))
    min_measure = area_tol * box_measure
    scale = float(np.max(np.abs(np.concatenate([lb, ub])))) + 1.0
    if _measure(P0) <= min_measure:
        return RegionCount(0, True, f"exact-{d}d", stats={"note": "the domain has no interior"})
    # each cell: (polygon, M, m, phases so far)
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray, list]] = [(P0, np.eye(d), np.zeros(d), [])]
    for layer in net.hidden_layers:
        new = []
        for P, M, m, phases in cells:
            Aff = layer.W @ M
            c = layer.W @ m + layer.b
            for Q, ph in _split_cell(P, Aff, c, layer, min_measure, scale):
                slope, offset = layer.act.piece(ph)
                m_new = c * slope + offset
                new.append((Q, Aff * slope[:, None], m_new, [*phases, ph]))
            if len(new) > max_regions:
                raise ProblemError(
                    f"more than {max_regions} linear regions (stopped in a layer of "
                    f"{layer.n_out} neurons); use the sampled estimate or raise max_regions"
                )
        cells = new
    out_cells = [(P, np.concatenate(ph) if ph else np.zeros(0, np.int8)) for P, _, _, ph in cells]
    n_patterns = len({ph.tobytes() for _, ph in out_cells})
    return RegionCount(
        len(cells), True, f"exact-{d}d",
        stats={"distinct_patterns": n_patterns, "area_tol": area_tol},
        cells=out_cells if keep_cells else [],
    )


# ----------------------------------------------------------------------------- sampled
def pattern_keys(net: Network, x: np.ndarray) -> np.ndarray:
    """One byte-string key per row of ``x`` identifying its phase pattern, for counting patterns.

    Parameters
    ----------
    net : Network
        The network.
    x : numpy.ndarray
        Inputs, one per row.

    Returns
    -------
    numpy.ndarray
        One bytes key per row (``methods.region.pattern_keys``).
    """
    return np.array(phase_keys(net.phase_pattern(np.atleast_2d(x))))


def chao1(counts: np.ndarray, n: int) -> float:
    """Bias-corrected Chao1 richness estimate: ``S_obs + (n-1)/n * f1 (f1-1) / (2 (f2+1))``.

    Parameters
    ----------
    counts : array_like
        How often each observed pattern was seen.
    n : int
        The number of samples.

    Returns
    -------
    float
        The estimated number of patterns (seen or not).
    """
    counts = np.asarray(counts)
    f1 = int(np.sum(counts == 1))
    f2 = int(np.sum(counts == 2))
    return float(counts.size + (n - 1) / max(n, 1) * f1 * (f1 - 1) / (2.0 * (f2 + 1)))


def chapman(keys_a: np.ndarray, keys_b: np.ndarray) -> float:
    """Chapman's capture-recapture estimate ``(n1+1)(n2+1)/(m+1) - 1`` from two samples.

    ``n1``, ``n2`` are their distinct patterns and ``m`` the patterns seen in both.

    Parameters
    ----------
    keys_a, keys_b : numpy.ndarray
        Pattern keys (`pattern_keys`) of the two samples.

    Returns
    -------
    float
        The estimated number of patterns.
    """
    sa, sb = set(keys_a.tolist()), set(keys_b.tolist())
    m = len(sa & sb)
    return (len(sa) + 1) * (len(sb) + 1) / (m + 1) - 1.0


def count_regions_sampled(net: Network, lb, ub, *, samples: int = 10_000, seed: int = 0,
                          chunk: int = 20_000) -> RegionCount:
    """Distinct activation patterns among uniform samples, with Chao1 and Chapman estimates.

    See the module docstring for what the estimates assume.

    Parameters
    ----------
    net : Network
        The network.
    lb, ub : array_like
        The input box (finite).
    samples : int, optional
        Number of uniform samples (at least 2).
    seed : int, optional
        Seed of the samples.
    chunk : int, optional
        Samples evaluated at once (memory bound).

    Returns
    -------
    RegionCount
        The observed count, a lower bound, with the estimates in ``estimate`` and ``stats``.

    Raises
    ------
    ProblemError
        The box is bad or ``samples < 2``.
    """
    lb, ub = _check_box(net, lb, ub)
    if samples < 2:
        raise ProblemError(f"sampled region count needs at least 2 samples, got {samples}")
    rng = np.random.default_rng(seed)
    keys = []
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        keys.append(pattern_keys(net, lb + (ub - lb) * rng.random((n, lb.shape[0]))))
    k = np.concatenate(keys)
    _, counts = np.unique(k, return_counts=True)
    half = samples // 2
    est = chao1(counts, samples)
    return RegionCount(
        int(counts.size), False, "sampled", estimate=est,
        stats={
            "samples": samples,
            "seed": seed,
            "observed": int(counts.size),
            "singletons": int(np.sum(counts == 1)),
            "doubletons": int(np.sum(counts == 2)),
            "chao1": est,
            "chapman": chapman(k[:half], k[half:]),
            "estimator": "observed = distinct patterns among uniform samples (lower bound); "
                         "chao1 = S_obs + (N-1)/N f1(f1-1)/(2(f2+1)); chapman = "
                         "(n1+1)(n2+1)/(m+1)-1 over the two halves of the sample",
        },
    )


def count_regions(net: Network, lb, ub, *, mode: str = "auto", samples: int = 10_000, seed: int = 0,
                  max_regions: int = MAX_REGIONS, keep_cells: bool = True) -> RegionCount:
    """Count linear regions exactly when the input is small enough, else by sampling.

    Parameters
    ----------
    net : Network
        The network.
    lb, ub : array_like
        The input box (finite).
    mode : str, optional
        ``"exact"``, ``"sample"``, or ``"auto"`` (exact for d <= 2, falling back to sampling
        when the exact count exceeds ``max_regions``).
    samples : int, optional
        Number of samples of a sampled count.
    seed : int, optional
        Seed of those samples.
    max_regions : int, optional
        Cap on the cells of an exact count.
    keep_cells : bool, optional
        Keep the cells of an exact count (for plotting).

    Returns
    -------
    RegionCount
        The count.

    Raises
    ------
    ProblemError
        ``mode`` is unknown, or an exact count (``mode="exact"``) fails.
    """
    if mode not in ("auto", "exact", "sample"):
        raise ProblemError(f"region counting mode must be 'auto', 'exact' or 'sample', got {mode!r}")
    if mode == "exact" or (mode == "auto" and net.input_dim <= 2):
        try:
            return count_regions_exact(net, lb, ub, max_regions=max_regions, keep_cells=keep_cells)
        except ProblemError:
            if mode == "exact":
                raise
    return count_regions_sampled(net, lb, ub, samples=samples, seed=seed)


# ----------------------------------------------------------------------------- plot
def plot_regions(net: Network, lb, ub, path, *, regions: RegionCount | None = None, seed: int = 0,
                 title: str | None = None):
    """Save a PNG of the linear regions of a 2-D-input network, one random colour per region.

    Parameters
    ----------
    net : Network
        A network with 2 inputs.
    lb, ub : array_like
        The input box (the plot's axes).
    path : str or os.PathLike
        Where to write the PNG.
    regions : RegionCount, optional
        An exact count with cells; computed when missing.
    seed : int, optional
        Seed of the colours.
    title : str, optional
        The plot title (default: the network and its region count).

    Returns
    -------
    str or os.PathLike
        ``path``.

    Raises
    ------
    UnsupportedError
        The network does not have 2 inputs.
    """
    if net.input_dim != 2:
        raise UnsupportedError(f"region plots need a 2-D input; this network has {net.input_dim}")
    if regions is None or not regions.cells:
        regions = count_regions_exact(net, lb, ub)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    rng = np.random.default_rng(seed)
    polys = [P for P, _ in regions.cells]
    colours = plt.get_cmap("hsv")(rng.random(len(polys)))
    colours[:, :3] = 0.35 + 0.65 * colours[:, :3]  # pastel, so the edges stay visible
    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="k", linewidths=0.2))
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    ax.set_xlim(lb[0], ub[0])
    ax.set_ylim(lb[1], ub[1])
    names = net.input_names or ("x0", "x1")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title or f"{net.describe()}: {regions.count} linear regions")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
