"""Loading never runs code from a file unless the user opts in (``trust_pickle`` / ``--trust-pickle``).

The payload files below are pickles whose ``__reduce__`` writes a marker file and then returns
a real, loadable model: refused by default (marker absent), loaded only with the opt-in.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import reluopt
from reluopt.cli import EXIT_OK, EXIT_USAGE, build_parser, main
from reluopt.errors import ModelError, ReluoptError, UnsupportedError
from reluopt.io import load_model

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickles by calling ``eval``: writes ``marker``, then unpickles ``model_bytes``."""

    def __init__(self, marker: Path, model_bytes: bytes):
        self.marker, self.model_bytes = str(marker), model_bytes

    def __reduce__(self):
        code = (f"(open({self.marker!r}, 'w').write('payload ran'), "
                f"__import__('pickle').loads({self.model_bytes!r}))[1]")
        return eval, (code,)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``reluopt ARGS`` in a fresh interpreter (the venv's, which runs the tests)."""
    return subprocess.run([sys.executable, "-c", "import sys; from reluopt.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# ----------------------------------------------------------------------------- scikit-learn
@pytest.fixture(scope="module")
def regressor():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(80, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPRegressor(hidden_layer_sizes=(8, 6), max_iter=30, random_state=0).fit(X, X @ [1.0, -2.0, 0.5])


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_sklearn_payload_refused_by_default_and_loaded_with_opt_in(tmp_path, regressor, suffix):
    marker = tmp_path / "marker"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps(Payload(marker, pickle.dumps(regressor))))

    with pytest.raises(ReluoptError, match=r"is a pickle.*can run arbitrary code.*trust_pickle=True.*--trust-pickle"):
        reluopt.load(path)
    assert not marker.exists()
    with pytest.raises(ModelError, match="is a pickle"):
        load_model(path, trust_pickle=False)
    assert not marker.exists()

    net = reluopt.load(path, trust_pickle=True)
    assert marker.exists()
    x = np.random.default_rng(1).uniform(-1, 1, size=(20, 3))
    np.testing.assert_allclose(net.forward(x)[:, 0], regressor.predict(x), rtol=1e-10, atol=1e-10)


def test_sklearn_payload_through_the_cli(tmp_path, regressor):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Payload(marker, pickle.dumps(regressor))))

    done = run_cli("bounds", str(path), "--box=-1,1")
    assert done.returncode == EXIT_USAGE
    err = one_line(done.stderr)
    assert err.startswith("reluopt bounds: error: ") and "evil.pkl" in err and "--trust-pickle" in err
    assert "arbitrary code" in err
    assert not marker.exists()

    done = run_cli("bounds", str(path), "--box=-1,1", "--trust-pickle")
    assert done.returncode == EXIT_OK, done.stderr
    assert marker.exists()


def test_sklearn_pickle_of_a_class_defined_in_a_script(tmp_path):
    pytest.importorskip("sklearn")
    path = tmp_path / "custom.pkl"
    script = ("import pickle, sys\n"
              "class Custom:\n    pass\n"
              "pickle.dump(Custom(), open(sys.argv[1], 'wb'))\n")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    with pytest.raises(ModelError, match=r"custom\.pkl: is a pickle"):
        reluopt.load(path)
    with pytest.raises(ModelError, match=r"custom\.pkl: the pickle needs a class that cannot be imported here "
                                         r"\(Can't get attribute 'Custom' on <module '[\w.]*__main__'.*skops.*ONNX.*"
                                         r"pass the estimator to reluopt\.load"):
        reluopt.load(path, trust_pickle=True)


# ----------------------------------------------------------------------------- skops
@pytest.fixture(scope="module")
def sio():
    pytest.importorskip("sklearn")
    return pytest.importorskip("skops.io")


def test_skops_files_load_without_opt_in(tmp_path, sio, regressor):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    X = rng.uniform(-2, 2, size=(90, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd = MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", max_iter=20, random_state=1).fit(X, X[:, 0])
        clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(7,), max_iter=40, random_state=2))
        clf.fit(X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5))
    for name, model in [("adam", regressor), ("sgd", sgd), ("pipe", clf)]:
        path = tmp_path / f"{name}.skops"
        sio.dump(model, path)
        assert sio.get_untrusted_types(file=path)  # skops alone would refuse these (the MLP's optimizer)
        net = reluopt.load(path)
        assert net.source == str(path)
        if name == "pipe":
            z = net.forward(X)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), model.predict_proba(X), rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(net.forward(X)[:, 0], model.predict(X), rtol=1e-10, atol=1e-10)
    assert main(["bounds", str(tmp_path / "adam.skops"), "--box=-1,1"]) == EXIT_OK


def test_skops_untrusted_types_need_the_opt_in(tmp_path, sio, regressor, capsys):
    import copy
    from fractions import Fraction

    model = copy.deepcopy(regressor)
    model.note_ = Fraction(1, 3)  # a type skops does not trust
    path = tmp_path / "noted.skops"
    sio.dump(model, path)
    with pytest.raises(ModelError, match=r"noted\.skops: holds types that skops does not trust "
                                         r"\(fractions\.Fraction\).*trust_pickle=True"):
        reluopt.load(path)
    assert main(["bounds", str(path), "--box=-1,1"]) == EXIT_USAGE
    assert "--trust-pickle" in one_line(capsys.readouterr().err)
    x = np.random.default_rng(3).uniform(-1, 1, size=(10, 3))
    np.testing.assert_allclose(reluopt.load(path, trust_pickle=True).forward(x)[:, 0], regressor.predict(x),
                               rtol=1e-10, atol=1e-10)
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"junk\.skops: not a readable skops file"):
        reluopt.load(tmp_path / "junk.skops")


# ----------------------------------------------------------------------------- torch
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def small_mlp(torch, seed=0):
    nn = torch.nn
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU6(), nn.Linear(5, 2)).double().eval()


def torch_forward(torch, module, x):
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_torch_payload_refused_by_default_and_loaded_with_opt_in(tmp_path, torch, writer):
    mod = small_mlp(torch)
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    payload = Payload(marker, pickle.dumps(mod))
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))

    with pytest.raises(ReluoptError, match=r"evil\.pt: holds pickled Python objects.*"
                                           r"arbitrary code.*trust_pickle=True") as info:
        reluopt.load(path)
    assert not marker.exists()
    if writer == "torch.save":
        assert "it references eval" in str(info.value) or "builtins.eval" in str(info.value)
    if writer == "pickle.dump":  # not a torch file: torch.load reads the payload, then finds no torch data
        return

    net = reluopt.load(path, trust_pickle=True)
    assert marker.exists()
    x = np.random.default_rng(4).normal(size=(16, 3))
    np.testing.assert_allclose(net.forward(x), torch_forward(torch, mod, x), rtol=1e-12, atol=1e-12)


def test_torch_payload_through_the_cli(tmp_path, torch, capsys):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save(Payload(marker, pickle.dumps(small_mlp(torch))), path)

    assert main(["solve", str(path), "--box=-1,1", "--maximize", "0", "--time-limit", "5"]) == EXIT_USAGE
    err = one_line(capsys.readouterr().err)
    assert err.startswith("reluopt solve: error: ") and "--trust-pickle" in err and "arbitrary code" in err
    assert not marker.exists()
    done = run_cli("bounds", str(path), "--box=-1,1")
    assert done.returncode == EXIT_USAGE and "--trust-pickle" in one_line(done.stderr)
    assert not marker.exists()

    assert main(["bounds", str(path), "--box=-1,1", "--trust-pickle"]) == EXIT_OK
    assert marker.exists()


def test_torch_module_of_a_class_defined_in_a_script(tmp_path, torch):
    path = tmp_path / "custom.pt"
    script = ("import sys, torch\n"
              "class Custom(torch.nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.fc = torch.nn.Linear(2, 1)\n"
              "    def forward(self, x):\n"
              "        return self.fc(x)\n"
              "torch.save(Custom(), sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=300)
    with pytest.raises(ModelError, match=r"custom\.pt: holds pickled Python objects.*it references __main__\.Custom"):
        reluopt.load(path)
    with pytest.raises(ModelError, match=r"custom\.pt: the pickle needs a class that cannot be imported here "
                                         r"\(Can't get attribute 'Custom' on <module '[\w.]*__main__'.*"
                                         r"export the model to ONNX.*pass the module to reluopt\.load"):
        reluopt.load(path, trust_pickle=True)


def test_state_dict_error_shows_the_python_that_loads_it(tmp_path, torch):
    mod = small_mlp(torch)
    path = tmp_path / "weights.pt"
    torch.save(mod.state_dict(), path)
    with pytest.raises(ModelError) as info:
        reluopt.load(path)
    first, *code = str(info.value).splitlines()
    assert first.startswith(f"{path}: holds a state_dict (weights without the architecture), not a model")
    assert [line.split("(")[0].strip() for line in code] == [
        "model = torch.nn.Sequential", "model.load_state_dict", "net = reluopt.load"]
    # the three lines work
    model = small_mlp(torch, seed=9)
    model.load_state_dict(torch.load(str(path)))
    x = np.random.default_rng(5).normal(size=(6, 3))
    np.testing.assert_allclose(reluopt.load(model).forward(x), torch_forward(torch, mod, x), atol=1e-12)

    ckpt = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "model_state_dict": mod.state_dict()}, ckpt)
    with pytest.raises(ModelError, match=r"ckpt\.pth: holds a checkpoint whose 'model_state_dict' entry is a "
                                         r"state_dict.*\n.*\n.*load_state_dict\(torch\.load\(.*ckpt\.pth'\)"
                                         r"\['model_state_dict'\]\)"):
        reluopt.load(ckpt)
    other = tmp_path / "other.pt"
    torch.save({"epoch": 3, "lr": 0.1}, other)
    with pytest.raises(ModelError, match=r"other\.pt: holds a dict \(keys 'epoch', 'lr'\), not a model"):
        reluopt.load(other)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ModelError, match=r"tensor\.pt: holds a Tensor, not an nn.Module"):
        reluopt.load(tensor)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_archive_loads_without_opt_in(tmp_path, torch, how):
    nn = torch.nn
    torch.manual_seed(3)
    mod = nn.Sequential(
        nn.Flatten(), nn.Linear(6, 9), nn.ReLU(),
        nn.Sequential(nn.Dropout(0.2), nn.Linear(9, 7), nn.Hardtanh(0.0, 1.5)),
        nn.Identity(), nn.Linear(7, 4, bias=False), nn.ReLU6(), nn.Linear(4, 2),
    ).double().eval()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; reluopt still reads its files
        warnings.simplefilter("ignore", DeprecationWarning)
        if how == "script":
            scripted = torch.jit.script(mod)
        else:
            scripted = torch.jit.trace(mod, torch.zeros(2, 6, dtype=torch.float64))
        path = tmp_path / f"{how}.pt"
        torch.jit.save(scripted, str(path))
    net = reluopt.load(path)
    assert net.describe() == "6-9-7-4-2"
    assert [(layer.activation, layer.tau) for layer in net.layers] == [
        ("relu", None), ("clipped_relu", 1.5), ("clipped_relu", 6.0), ("identity", None)]
    x = 2.0 * np.random.default_rng(6).normal(size=(32, 6))
    np.testing.assert_allclose(net.forward(x), torch_forward(torch, mod, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.forward(x), torch_forward(torch, scripted, x), rtol=1e-12, atol=1e-12)
    assert main(["bounds", str(path), "--box=-1,1"]) == EXIT_OK


def test_torchscript_that_cannot_be_converted_suggests_onnx(tmp_path, torch, capsys):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return torch.relu(self.fc(x)) * 2

    path, inner = tmp_path / "custom_script.pt", tmp_path / "inner.pt"
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Net()), str(path))
        torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))), str(inner))
    with pytest.raises(UnsupportedError, match=r"custom_script\.pt: TorchScript: the model is of class .*Net, which "
                                               r"reluopt cannot read from TorchScript.*export the model to ONNX"):
        reluopt.load(path)
    assert main(["bounds", str(path), "--box=-1,1"]) == EXIT_USAGE
    one_line(capsys.readouterr().err)

    with pytest.raises(UnsupportedError, match=r"inner\.pt: TorchScript: module '1' is of class Tanh.*ONNX"):
        reluopt.load(inner)


def test_torch_garbage_and_missing_files(tmp_path, torch):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a torch file" * 20)
    with pytest.raises(ModelError, match=r"junk\.pt: not a readable PyTorch file"):
        reluopt.load(junk)
    with pytest.raises(ModelError, match=r"junk\.pt: not a readable PyTorch file"):
        reluopt.load(junk, trust_pickle=True)


# ----------------------------------------------------------------------------- paths and CLI flags
def test_a_directory_is_reported_as_a_directory(tmp_path, capsys):
    folder = tmp_path / "x.onnx"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"x\.onnx: is a directory, not a model file"):
        reluopt.load(folder)
    for name in ("y.pt", "y.pkl", "y.skops"):
        (tmp_path / name).mkdir()
        with pytest.raises(ModelError, match=rf"{name.replace('.', '[.]')}: is a directory"):
            reluopt.load(tmp_path / name)
    assert main(["bounds", str(folder), "--box=0,1"]) == EXIT_USAGE
    assert "is a directory" in one_line(capsys.readouterr().err)
    with pytest.raises(ModelError, match=r"nothing\.onnx: no such file"):
        reluopt.load(tmp_path / "nothing.onnx")


def test_every_command_that_reads_a_model_has_trust_pickle():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    readers = 0
    for name, sub in commands.items():
        dests = {a.dest for a in sub._actions}
        if dests & {"model", "checkpoints"}:
            readers += 1
            assert "trust_pickle" in dests, name
            assert "--trust-pickle" in sub.format_help(), name
    assert readers >= 5


def test_allow_pickle_is_a_deprecated_alias(tmp_path, regressor):
    path = tmp_path / "reg.pkl"
    path.write_bytes(pickle.dumps(regressor))
    with pytest.warns(DeprecationWarning, match="use trust_pickle"):
        net = reluopt.load(path, allow_pickle=True)
    assert net.input_dim == 3
    with pytest.warns(DeprecationWarning), pytest.raises(ModelError, match="is a pickle"):
        reluopt.load(path, allow_pickle=False)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="contradict"):
        reluopt.load(path, trust_pickle=True, allow_pickle=False)
