"""Train a ReLU autoencoder on scikit-learn's bundled 8x8 digits and keep its decoder's
checkpoints, the sequence G_0 ... G_T that Surfing follows.

    .venv/bin/python examples/surfing/train_digits_decoder.py [--latent 4] [--epochs 200] [--every 20]

Writes ``checkpoints/latent<d>/ckpt_<epoch>.npz`` with ``index.json`` (training order) and
``latent_box.json`` (the box of the training codes, widened by 10%, for the latent search).
The decoder is ``latent -> 128 -> 128 -> 64`` (ReLU, linear output); pixels are scaled to
[0, 1]. A minute or so on two cores; no download (the digits ship with scikit-learn).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def digits(seed: int = 0):
    """Pixels in [0, 1], split into training and held-out rows (seeded)."""
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    order = np.random.default_rng(seed).permutation(X.shape[0])
    held = order[:200]
    return X[order[200:]], X[held]


def autoencoder(latent: int, hidden: int = 128):
    import torch.nn as nn

    class AutoEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, latent))
            self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                         nn.ReLU(), nn.Linear(hidden, 64))

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return AutoEncoder()


def train(latent: int = 4, epochs: int = 200, every: int = 20, seed: int = 0, out: Path | None = None,
          verbose: bool = True) -> Path:
    import torch

    from reluopt.io.torch import from_torch
    from reluopt.train import fit

    folder = out or HERE / "checkpoints" / f"latent{latent}"
    X, X_held = digits(seed)
    torch.manual_seed(seed)
    model = autoencoder(latent)
    history = fit(model, X, X, epochs=epochs, batch_size=64, lr=2e-3, seed=seed, threads=2,
                  checkpoint_every=every, checkpoint_dir=folder,
                  checkpoint_network=lambda m: from_torch(m.decoder), validation=(X_held, X_held))
    with torch.no_grad():
        codes = model.encoder(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    pad = 0.1 * (hi - lo)
    (folder / "latent_box.json").write_text(json.dumps(
        {"lb": (lo - pad).tolist(), "ub": (hi + pad).tolist(), "latent": latent,
         "val_mse": history.epochs[-1].get("val_loss")}, indent=1))
    if verbose:
        print(f"latent {latent}: {len(history.checkpoint_files)} checkpoints in {folder}, "
              f"held-out MSE {history.epochs[-1].get('val_loss'):.4f}")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    train(args.latent, args.epochs, args.every, args.seed, args.out)


if __name__ == "__main__":
    main()
