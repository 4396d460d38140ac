"""The training penalties that make a ReLU network tractable (torch extra).

Regularised training gives networks whose MIPs solve faster (Plate et al., arXiv 2502.03016):
L1 makes weights sparse, and a ReLU-stability penalty makes neurons stable over the input
domain, so that bound methods fix them and the MIP needs fewer binaries. This module holds those
penalties and the torch import they need; ``reluopt.train`` holds the training loop that adds
them to the data loss.

Stability penalty (``stability > 0``): the RS loss of Xiao et al. (ICLR 2019, "Training for
faster adversarial robustness verification via inducing ReLU stability"). For each training
sample ``x`` the interval bounds ``[l, u]`` of every hidden pre-activation over the box
``[x - eps, x + eps]`` (in the module's input units) are propagated through the layers, and
each neuron contributes ``-tanh(1 + l u)``: about -1 when ``l`` and ``u`` have the same sign
(stable), rising towards +1 as the neuron becomes unstable. The penalty is the mean over
samples and neurons; for clipped ReLU the same term is added at the cap ``tau``. It needs
the module (or ``stability_module``) to be an ``nn.Sequential`` of Linear and ReLU-family
layers.
"""

from __future__ import annotations

from typing import Any

from .errors import ProblemError, UnsupportedError


def _torch():
    try:
        import torch
    except ImportError:
        raise UnsupportedError(
            "training needs PyTorch; install the 'torch' extra: pip install 'reluopt[torch]'"
        ) from None
    return torch


def _is_relu_family(torch, m) -> tuple[bool, float | None]:
    nn = torch.nn
    if isinstance(m, nn.ReLU):
        return True, None
    if isinstance(m, nn.ReLU6):
        return True, 6.0
    if isinstance(m, nn.Hardtanh) and m.min_val == 0.0:
        return True, float(m.max_val)
    return False, None


def _interval_layers(torch, module) -> list[tuple[Any, float | str | None]]:
    """``[(Linear, tau-or-None-or-'out'), ...]`` for an nn.Sequential MLP; checks its shape."""
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise ProblemError(
            f"the stability penalty needs an nn.Sequential of Linear and ReLU layers, got "
            f"{type(module).__name__}; pass stability_module=<that sub-module>"
        )
    out: list[list] = []
    for i, m in enumerate(module):
        if isinstance(m, nn.Linear):
            out.append([m, "out"])
            continue
        relu, tau = _is_relu_family(torch, m)
        if relu and out and out[-1][1] == "out":
            out[-1][1] = tau
        elif isinstance(m, nn.Dropout | nn.Identity | nn.Flatten):
            continue
        else:
            raise ProblemError(
                f"stability penalty: layer {i} ({type(m).__name__}) is not Linear, ReLU, "
                "Hardtanh(0, tau), ReLU6 or Dropout"
            )
    return [(lin, tau) for lin, tau in out]


def stability_penalty(module, x, eps: float):
    """Xiao et al.'s RS loss, which rewards neurons that are stable around each sample.

    The mean over samples and hidden neurons of ``-tanh(1 + l u)`` for the interval bounds
    ``[l, u]`` of the pre-activations over ``[x - eps, x + eps]`` (and of
    ``-tanh(1 + (l - tau)(u - tau))`` at a clipped ReLU's cap).

    Parameters
    ----------
    module : torch.nn.Sequential
        Linear and ReLU-family layers (Dropout, Identity and Flatten are skipped).
    x : torch.Tensor
        A batch of inputs, samples by features.
    eps : float
        The half-width of the box around each sample, in the module's input units.

    Returns
    -------
    torch.Tensor
        A differentiable scalar in ``[-1, 1]`` (zero without hidden layers).

    Raises
    ------
    ProblemError
        When ``module`` is not such an ``nn.Sequential``.
    """
    torch = _torch()
    layers = _interval_layers(torch, module)
    mid = x
    rad = torch.full_like(x, float(eps))
    terms = []
    for lin, tau in layers:
        mid = mid @ lin.weight.T + (lin.bias if lin.bias is not None else 0.0)
        rad = rad @ lin.weight.abs().T
        if tau == "out":
            break
        lo, hi = mid - rad, mid + rad
        terms.append(-torch.tanh(1.0 + lo * hi))
        if tau is not None:
            terms.append(-torch.tanh(1.0 + (lo - tau) * (hi - tau)))
            lo, hi = lo.clamp(0.0, tau), hi.clamp(0.0, tau)
        else:
            lo, hi = lo.clamp_min(0.0), hi.clamp_min(0.0)
        mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
    if not terms:
        return x.new_zeros(())
    return torch.cat(terms, dim=1).mean()


def _weight_penalties(torch, module, l1: float, l2: float):
    """L1 and L2 of the weight matrices (biases are not penalised)."""
    total = None
    for name, p in module.named_parameters():
        if not name.endswith("weight") or p.dim() < 2:
            continue
        term = 0.0
        if l1:
            term = term + l1 * p.abs().sum()
        if l2:
            term = term + l2 * (p * p).sum()
        total = term if total is None else total + term
    return total
