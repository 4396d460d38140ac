"""Training ReLU networks for tractability (torch extra), with checkpoints.

Plate et al. (arXiv 2502.03016) show that regularised training gives networks whose MIPs
solve much faster: L1 makes weights sparse, and a ReLU-stability penalty makes neurons
stable over the input domain, so that bound methods fix them and the MIP needs fewer
binaries. ``fit`` is a generic loop for any torch module (an autoencoder's decoder can be
checkpointed through ``checkpoint_network``); ``train_mlp`` fits a plain MLP on tabular data
and exports a ``Network`` with the input and output scaling folded in.

The stability penalty (``stability > 0``) is Xiao et al.'s RS loss, described in
``reluopt.train_penalties``.

Checkpoints: with ``checkpoint_every=k``, the network is exported at epoch 0 (the random
initialisation, which Surfing starts from), every ``k`` epochs and at the last epoch. With
``checkpoint_dir`` each is written as ``ckpt_<epoch>.npz`` and ``index.json`` lists the
files in training order (``{"checkpoints": [...], "epochs": [...]}``), the layout
``reluopt.inversion.surfing.load_checkpoints`` reads.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError, ProblemError
from .network import Network
from .train_penalties import _interval_layers, _torch, _weight_penalties, stability_penalty

__all__ = ["History", "TrainedModel", "build_mlp", "export_onnx", "fit", "fold_scaling", "stability_penalty",
           "train_mlp"]


# ----------------------------------------------------------------------------- results
@dataclass
class History:
    """Per-epoch records: ``{"epoch", "loss", "data_loss", "penalty", "val_loss", "seconds"}``
    (losses on the data as given to ``fit``), plus the checkpoints' epochs and files.

    Attributes
    ----------
    epochs : list of dict
    checkpoint_epochs : list of int
    checkpoint_files : list of str
        File names in ``checkpoint_dir`` (empty without one).
    """

    epochs: list[dict] = field(default_factory=list)
    checkpoint_epochs: list[int] = field(default_factory=list)
    checkpoint_files: list[str] = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        """One field of every epoch's record, for plotting or checks.

        Parameters
        ----------
        key : str
            A record field, e.g. ``"loss"`` or ``"val_loss"``.

        Returns
        -------
        np.ndarray
            One float per epoch; NaN where an epoch has no such field.
        """
        return np.array([r.get(key, np.nan) for r in self.epochs], dtype=float)


@dataclass
class TrainedModel:
    """A trained MLP exported as a Network, its history, and the checkpoint Networks.

    Attributes
    ----------
    network : Network
        In the data's original units (the scaling folded in).
    history : History
    checkpoints : list of Network
    module : torch.nn.Module
        The trained module (standardised units).
    checkpoint_dir : Path or None
    x_scale, y_scale : tuple of np.ndarray
        ``(mean, std)`` of the inputs and outputs used for training.
    """

    network: Network
    history: History
    checkpoints: list[Network]
    module: object = None
    checkpoint_dir: Path | None = None
    x_scale: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std) used for the inputs
    y_scale: tuple[np.ndarray, np.ndarray] | None = None

    def save(self, folder, name: str = "model", onnx: bool = True) -> dict[str, Path]:
        """Write the exported network to ``folder`` so that ``reluopt.load`` can read it back.

        Parameters
        ----------
        folder : str or Path
            Created if missing.
        name : str
            File stem.
        onnx : bool
            Also write ``<name>.onnx`` (needs the ONNX exporter).

        Returns
        -------
        dict of str to Path
            ``{"npz": <name>.npz}``, plus ``"onnx"`` when written.
        """
        from .io import save_npz

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = {"npz": save_npz(self.network, folder / f"{name}.npz")}
        if onnx:
            out["onnx"] = export_onnx(self.network, folder / f"{name}.onnx")
        return out


def export_onnx(network: Network, path) -> Path:
    """Save ``network`` as ONNX, for tools outside reluopt (``reluopt.io.export.save_onnx``).

    Parameters
    ----------
    network : Network
        Written as float64 Gemm + Relu/Clip nodes.
    path : str or Path
        The ``.onnx`` file.

    Returns
    -------
    Path
        The file written.
    """
    from .io.export import save_onnx

    return save_onnx(network, path)


# ----------------------------------------------------------------------------- torch helpers
@contextlib.contextmanager
def _deterministic(torch, seed: int, threads: int | None):
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        if threads:
            torch.set_num_threads(prev_threads)


def _default_checkpoint_network(module) -> Network:
    from .io.torch import from_torch

    return from_torch(module)


def _as_tensor(torch, a, what: str):
    if isinstance(a, torch.Tensor):
        return a.detach().to(torch.float32)
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ProblemError(f"{what} must be a 2-D array (samples x features), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ProblemError(f"{what} contains a NaN or infinite value")
    return torch.from_numpy(arr)


# ----------------------------------------------------------------------------- fit
def fit(module, X, Y, *, epochs: int = 100, batch_size: int = 64, lr: float = 1e-3, l1: float = 0.0,
        l2: float = 0.0, stability: float = 0.0, stability_eps: float = 0.1, stability_module=None,
        stability_input: Callable | None = None,
        loss: str | Callable = "mse", seed: int = 0, threads: int | None = None,
        checkpoint_every: int | None = None, checkpoint_dir=None,
        checkpoint_network: Callable | None = None, on_checkpoint: Callable | None = None,
        validation: tuple | None = None, on_epoch: Callable | None = None) -> History:
    """Train ``module`` to map ``X`` to ``Y`` with Adam, reproducibly for a ``seed``.

    Dropout lives in the module (it is active in training and off for validation and checkpoints).

    Parameters
    ----------
    module : torch.nn.Module
    X, Y : array_like or torch.Tensor
        Samples by features (a 1-D array is one feature).
    epochs, batch_size, lr : int, int, float
    l1, l2 : float
        Weights of ``l1 * sum|W| + l2 * sum W^2`` over the weight matrices.
    stability, stability_eps : float
        Weight of the RS loss (module docstring) over an ``stability_eps``-box around each sample.
    stability_module, stability_input : torch.nn.Module, callable, optional
        The RS loss is of ``stability_module`` (default: the module) at ``stability_input(module,
        x_batch)`` (default: the batch itself; e.g. ``lambda m, x: m.encoder(x)`` for a decoder).
    loss : {'mse', 'l1'} or callable
    seed, threads : int
        Seed, and torch threads for the run (restored afterwards).
    checkpoint_every, checkpoint_dir, checkpoint_network, on_checkpoint : optional
        Every ``checkpoint_every`` epochs (plus epoch 0 and the last) a Network is made by
        ``checkpoint_network(module)`` (default ``reluopt.io.torch.from_torch``), saved to
        ``checkpoint_dir`` if given and passed to ``on_checkpoint(epoch, network)``.
    validation : tuple (X, Y), optional
        Data for each epoch's ``val_loss``.
    on_epoch : callable, optional
        Called with each epoch's record.

    Returns
    -------
    History
    """
    torch = _torch()
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ProblemError(f"need epochs >= 0, batch_size >= 1 and lr > 0 (got {epochs}, {batch_size}, {lr})")
    for name, v in (("l1", l1), ("l2", l2), ("stability", stability)):
        if v < 0:
            raise ProblemError(f"penalty weight {name} must be >= 0, got {v}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ProblemError(f"checkpoint_every must be a positive number of epochs, got {checkpoint_every}")
    Xt, Yt = _as_tensor(torch, X, "X"), _as_tensor(torch, Y, "Y")
    if Xt.shape[0] != Yt.shape[0]:
        raise ProblemError(f"X has {Xt.shape[0]} rows but Y has {Yt.shape[0]}")
    val = None
    if validation is not None:
        val = (_as_tensor(torch, validation[0], "validation X"),
               _as_tensor(torch, validation[1], "validation Y"))
    loss_fn = {"mse": torch.nn.functional.mse_loss, "l1": torch.nn.functional.l1_loss}.get(loss, loss) \
        if isinstance(loss, str) else loss
    if not callable(loss_fn):
        raise ProblemError(f"unknown loss {loss!r}; use 'mse', 'l1' or a callable")
    penalty_module = stability_module if stability_module is not None else module
    if stability:
        _interval_layers(torch, penalty_module)  # fail early with a clear message
    export = checkpoint_network or _default_checkpoint_network
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    history = History()

    def checkpoint(epoch: int) -> None:
        module.eval()
        with torch.no_grad():
            net = export(module)
        if not isinstance(net, Network):
            raise ModelError(f"checkpoint_network returned a {type(net).__name__}, not a Network")
        history.checkpoint_epochs.append(epoch)
        if folder is not None:
            from .io import save_npz

            name = f"ckpt_{epoch:05d}.npz"
            save_npz(net, folder / name)
            history.checkpoint_files.append(name)
            (folder / "index.json").write_text(json.dumps(
                {"checkpoints": history.checkpoint_files, "epochs": history.checkpoint_epochs}, indent=1))
        if on_checkpoint is not None:
            on_checkpoint(epoch, net)

    with _deterministic(torch, seed, threads):
        gen = torch.Generator().manual_seed(seed)
        params = [p for p in module.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        if checkpoint_every:
            checkpoint(0)
        n = Xt.shape[0]
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            module.train()
            perm = torch.randperm(n, generator=gen)
            tot = tot_data = tot_pen = 0.0
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                xb, yb = Xt[idx], Yt[idx]
                opt.zero_grad()
                data_loss = loss_fn(module(xb), yb)
                pen = _weight_penalties(torch, module, l1, l2) if (l1 or l2) else None
                if stability:
                    xs = xb if stability_input is None else stability_input(module, xb)
                    rs = stability * stability_penalty(penalty_module, xs, stability_eps)
                    pen = rs if pen is None else pen + rs
                total = data_loss if pen is None else data_loss + pen
                total.backward()
                opt.step()
                w = idx.shape[0] / n
                tot += w * total.item()
                tot_data += w * data_loss.item()
                tot_pen += w * (pen.item() if pen is not None else 0.0)
            rec = {"epoch": epoch, "loss": tot, "data_loss": tot_data, "penalty": tot_pen,
                   "seconds": time.perf_counter() - start}
            if val is not None:
                module.eval()
                with torch.no_grad():
                    rec["val_loss"] = float(loss_fn(module(val[0]), val[1]))
            history.epochs.append(rec)
            if on_epoch is not None:
                on_epoch(rec)
            if checkpoint_every and (epoch % checkpoint_every == 0 or epoch == epochs):
                checkpoint(epoch)
    module.eval()
    return history


# ----------------------------------------------------------------------------- MLP
def build_mlp(d_in: int, hidden: Sequence[int], d_out: int, *, activation: str = "relu", tau: float = 1.0,
              dropout: float = 0.0):
    """Make the torch MLP that ``train_mlp`` fits (and ``stability_penalty`` understands).

    Parameters
    ----------
    d_in, d_out : int
        Input and output sizes.
    hidden : sequence of int
        Hidden layer sizes (at least one, all positive).
    activation : {'relu', 'clipped_relu'}
        ``nn.ReLU`` or ``nn.Hardtanh(0, tau)``.
    tau : float
        The cap of the clipped ReLU (> 0).
    dropout : float
        In ``[0, 1)``; a Dropout layer after each activation when positive.

    Returns
    -------
    torch.nn.Sequential
        Linear + activation [+ Dropout] per hidden layer, then a linear output.

    Raises
    ------
    ProblemError
        On a bad activation, cap, dropout or layer size.
    """
    torch = _torch()
    nn = torch.nn
    if activation not in ("relu", "clipped_relu"):
        raise ProblemError(f"activation must be 'relu' or 'clipped_relu', got {activation!r}")
    if activation == "clipped_relu" and not (np.isfinite(tau) and tau > 0):
        raise ProblemError(f"clipped_relu needs a cap tau > 0, got {tau}")
    if not 0.0 <= dropout < 1.0:
        raise ProblemError(f"dropout must be in [0, 1), got {dropout}")
    if not hidden or any(int(h) < 1 for h in hidden):
        raise ProblemError(f"hidden layer sizes must be positive integers, got {list(hidden)}")
    mods = []
    prev = d_in
    for h in hidden:
        mods.append(nn.Linear(prev, int(h)))
        mods.append(nn.ReLU() if activation == "relu" else nn.Hardtanh(0.0, float(tau)))
        if dropout:
            mods.append(nn.Dropout(dropout))
        prev = int(h)
    mods.append(nn.Linear(prev, d_out))
    return nn.Sequential(*mods)


def fold_scaling(net: Network, x_mean, x_std, y_mean, y_std) -> Network:
    """Fold z-score scaling into a network, so that it takes and returns the original units.

    Parameters
    ----------
    net : Network
        Trained on standardised data.
    x_mean, x_std : array_like
        The input scaling, one entry per input.
    y_mean, y_std : array_like
        The output scaling, one entry per output.

    Returns
    -------
    Network
        The network of ``x -> y_std * net((x - x_mean) / x_std) + y_mean``.
    """
    from dataclasses import replace

    x_std = np.asarray(x_std, dtype=np.float64)
    x_mean = np.asarray(x_mean, dtype=np.float64)
    out = net.with_input_affine(1.0 / x_std, -x_mean / x_std)
    last = out.layers[-1]
    y_std = np.asarray(y_std, dtype=np.float64)
    new_last = replace(last, W=last.W * y_std[:, None], b=last.b * y_std + np.asarray(y_mean, dtype=np.float64))
    return out.with_layers((*out.layers[:-1], new_last))


def _stats(a: np.ndarray, scale: bool) -> tuple[np.ndarray, np.ndarray]:
    if not scale:
        return np.zeros(a.shape[1]), np.ones(a.shape[1])
    mean, std = a.mean(axis=0), a.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def train_mlp(X, Y, hidden: Sequence[int] = (32, 32), *, activation: str = "relu", tau: float = 1.0,
              l1: float = 0.0, l2: float = 0.0, stability: float = 0.0, stability_eps: float = 0.1,
              dropout: float = 0.0, epochs: int = 200, batch_size: int = 64, lr: float = 1e-3,
              seed: int = 0, threads: int | None = None, validation: tuple | None = None,
              scale_inputs: bool = True, scale_outputs: bool = True, checkpoint_every: int | None = None,
              checkpoint_dir=None, on_checkpoint: Callable | None = None, input_names=None,
              output_names=None) -> TrainedModel:
    """Fit a ReLU (or clipped ReLU) MLP to tabular data; export it as a Network.

    Inputs and outputs are standardised (z-scores) for training and the scaling is folded
    into the exported Network (and every checkpoint), which therefore takes and returns
    the original units.

    Parameters
    ----------
    X, Y : array_like
        Samples ``(n, d)`` and targets ``(n, m)`` or ``(n,)``.
    hidden : sequence of int
    activation, tau, dropout
        As for ``build_mlp`` (``tau`` in standardised units).
    l1, l2, stability, stability_eps, epochs, batch_size, lr, seed, threads, validation
        As for ``fit``, on the standardised model (``stability_eps`` in standardised units).
    scale_inputs, scale_outputs : bool
        Standardise for training.
    checkpoint_every, checkpoint_dir, on_checkpoint
        As for ``fit``; the checkpoints are in the original units too.
    input_names, output_names : sequence of str, optional

    Returns
    -------
    TrainedModel
    """
    torch = _torch()
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ProblemError(f"X must be (n, d) and Y (n, m) with the same n; got {X.shape} and {Y.shape}")
    xm, xs = _stats(X, scale_inputs)
    ym, ys = _stats(Y, scale_outputs)
    with _deterministic(torch, seed, threads):
        module = build_mlp(X.shape[1], hidden, Y.shape[1], activation=activation, tau=tau, dropout=dropout)
    names: dict[str, Any] = {"input_names": tuple(input_names) if input_names is not None else None,
                             "output_names": tuple(output_names) if output_names is not None else None}

    def export(mod) -> Network:
        raw = _default_checkpoint_network(mod)
        folded = fold_scaling(raw, xm, xs, ym, ys)
        return Network(folded.layers, source="reluopt.train", **names)

    checkpoints: list[Network] = []

    def keep(epoch, net):
        checkpoints.append(net)
        if on_checkpoint is not None:
            on_checkpoint(epoch, net)

    val = None
    if validation is not None:
        Xv = np.asarray(validation[0], dtype=np.float64)
        Yv = np.asarray(validation[1], dtype=np.float64).reshape(Xv.shape[0], -1)
        val = ((Xv - xm) / xs, (Yv - ym) / ys)
    history = fit(module, (X - xm) / xs, (Y - ym) / ys, epochs=epochs, batch_size=batch_size, lr=lr,
                  l1=l1, l2=l2, stability=stability, stability_eps=stability_eps, seed=seed,
                  threads=threads, checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
                  checkpoint_network=export, on_checkpoint=keep, validation=val)
    with torch.no_grad():
        network = export(module)
    return TrainedModel(network, history, checkpoints, module,
                        Path(checkpoint_dir) if checkpoint_dir is not None else None, (xm, xs), (ym, ys))
