"""``reluopt surf``: success rates printed and written, checkpoints in folders or as files,
bad input reported as one line with exit code 2."""

import json

import numpy as np
import pytest

from reluopt import Network
from reluopt.cli import EXIT_OK, EXIT_USAGE, main
from reluopt.io import save_npz


def generator(seed: int, sizes=(2, 16, 16, 8)) -> Network:
    rng = np.random.default_rng(seed)
    return Network.from_weights([
        (rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i + 1]), np.zeros(sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ])


@pytest.fixture
def folder(tmp_path):
    a, b = generator(0), generator(1)
    names = []
    for i, s in enumerate(np.linspace(0, 1, 4)):
        net = Network.from_weights([((1 - s) * p.W + s * q.W, (1 - s) * p.b + s * q.b)
                                    for p, q in zip(a.layers, b.layers, strict=True)])
        names.append(f"ckpt_{i}.npz")
        save_npz(net, tmp_path / names[-1])
    (tmp_path / "index.json").write_text(json.dumps({"checkpoints": names}))
    (tmp_path / "latent_box.json").write_text(json.dumps({"lb": [-1, -1], "ub": [1, 1]}))
    return tmp_path


FAST = ["--steps-per-checkpoint", "60", "--polish-steps", "200", "--lr", "0.02"]


def test_in_range_inversion_and_compressed_sensing(folder, tmp_path, capsys):
    out = tmp_path / "out.json"
    rc = main(["surf", str(folder), "--in-range", "6", "--measurements", "none", "--measurements", "gaussian:5",
               "--compare", "--json", str(out), *FAST])
    assert rc == EXIT_OK
    text = capsys.readouterr().out
    assert "in range, inversion" in text and "in range, m=5" in text and "restarts4" in text
    data = json.loads(out.read_text())
    assert [c["case"] for c in data["cases"]] == ["in range, inversion", "in range, m=5 (gaussian:5)"]
    inv = data["cases"][0]["methods"]
    assert set(inv) == {"surfing", "direct", "restarts4"}
    assert inv["surfing"]["success"] >= 0.5
    assert inv["surfing"]["gradient_evaluations"] == inv["direct"]["gradient_evaluations"]
    # the reported values are the forward-pass values at the reported latents
    from reluopt.inversion.surfing import load_checkpoints

    G = load_checkpoints(folder)[-1]
    x_star = np.random.default_rng(0).uniform(-1, 1, size=(6, 2))      # the CLI's draw, same seed
    x = np.array(inv["surfing"]["x"])
    np.testing.assert_allclose(inv["surfing"]["values"],
                               0.5 * np.sum((G.forward(x) - G.forward(x_star)) ** 2, axis=1), rtol=1e-9, atol=1e-15)


def test_checkpoint_files_target_file_and_exact(folder, tmp_path, capsys):
    files = [str(folder / f"ckpt_{i}.npz") for i in range(4)]
    G = generator(1)
    np.save(tmp_path / "t.npy", G.forward(np.array([[0.2, -0.3], [0.5, 0.5]])))
    rc = main(["surf", *files, "--box=-1,1", "--target", str(tmp_path / "t.npy"), "--exact", "20", *FAST])
    assert rc == EXIT_OK
    text = capsys.readouterr().out
    assert "t.npy, inversion" in text and "miqp" in text


@pytest.mark.parametrize("extra, message", [
    (["--in-range", "2", "--measurements", "gaussian:x"], "gaussian:M"),
    (["--in-range", "2", "--measurements", "MATRIX"], "needs 8 columns"),
    (["--target", "TARGET"], "targets have 3 entries"),
    (["--digits", "3"], "64 outputs"),
    ([], "no targets"),
    (["--in-range", "2", "--box", "0,1,2"], "--box"),
])
def test_bad_input_is_one_line_with_exit_code_2(folder, tmp_path, capsys, extra, message):
    np.save(tmp_path / "A.npy", np.ones((3, 7)))
    np.save(tmp_path / "t.npy", np.ones((2, 3)))
    extra = [str(tmp_path / "A.npy") if e == "MATRIX" else str(tmp_path / "t.npy") if e == "TARGET" else e
             for e in extra]
    rc = main(["surf", str(folder), *extra])
    assert rc == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_checkpoints(tmp_path, capsys):
    save_npz(generator(0), tmp_path / "a.npz")
    save_npz(generator(1, sizes=(2, 10, 8)), tmp_path / "b.npz")
    assert main(["surf", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--box=-1,1", "--in-range", "2"]) \
        == EXIT_USAGE
    assert "different shapes" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["surf", str(empty), "--box=-1,1", "--in-range", "2"]) == EXIT_USAGE
    assert "empty" in capsys.readouterr().err
    assert main(["surf", str(tmp_path / "missing"), "--in-range", "2"]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


def test_held_out_digits_are_the_training_scripts_held_out_rows():
    """The CLI's --digits must not evaluate on digits the shipped decoder was trained on."""
    import importlib.util
    from pathlib import Path

    from reluopt.cli.surf import held_out_digits

    script = Path(__file__).resolve().parents[1] / "examples" / "surfing" / "train_digits_decoder.py"
    spec = importlib.util.spec_from_file_location("train_digits_decoder", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    train, held = mod.digits(0)
    np.testing.assert_array_equal(held_out_digits(30), held[:30])
    assert not (held_out_digits(30)[:, None, :] == train[None, :, :]).all(axis=2).any()
