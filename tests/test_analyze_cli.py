"""``reluopt analyze``: table, JSON, region plot, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import random_network
from reluopt.cli import EXIT_OK, EXIT_USAGE, main
from reluopt.io import save_npz


@pytest.fixture
def net2(tmp_path):
    return save_npz(random_network([2, 10, 10, 1], seed=5), tmp_path / "net2.npz")


def test_analyze_table_json_and_plot(net2, tmp_path, capsys):
    out, png = tmp_path / "a.json", tmp_path / "r.png"
    code = main(["analyze", str(net2), "--box=-1:1,0:2", "--bounds", "ibp,crown",
                 "--json", str(out), "--plot", str(png)])
    assert code == EXIT_OK
    text = capsys.readouterr().out
    assert "crown" in text and "linear regions" in text
    rep = json.loads(out.read_text())
    assert rep["box"] == {"lb": [-1.0, 0.0], "ub": [1.0, 2.0]}
    assert rep["regions"]["exact"] and rep["regions"]["count"] > 5
    assert rep["bounds"]["crown"]["stable"] >= rep["bounds"]["ibp"]["stable"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_json_to_stdout_and_sampling(tmp_path, capsys):
    path = save_npz(random_network([4, 8, 8, 1], seed=1), tmp_path / "n4.npz")
    code = main(["analyze", str(path), "--box=-1,1", "--regions", "sample", "--samples", "800",
                 "--json", "-"])
    assert code == EXIT_OK
    rep = json.loads(capsys.readouterr().out)
    assert rep["regions"]["samples"] == 800 and not rep["regions"]["exact"]
    assert np.isfinite(rep["regions"]["chao1"])


@pytest.mark.parametrize("args, message", [
    (["--box=-1,1,2"], "--box"),
    (["--box=-1:1"], "2 inputs"),
    (["--box=1,-1"], "lo"),
    (["--box=-1,1", "--bounds", "magic"], "unknown method"),
    (["--box=-1,1", "--samples", "1", "--regions", "sample"], "samples"),
])
def test_analyze_bad_input(net2, capsys, args, message):
    assert main(["analyze", str(net2), *args]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_plot_needs_two_inputs(tmp_path, capsys):
    path = save_npz(random_network([3, 4, 1]), tmp_path / "n3.npz")
    assert main(["analyze", str(path), "--box=-1,1", "--plot", str(tmp_path / "x.png")]) == EXIT_USAGE
    assert "2-D" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "missing.npz"), "--box=-1,1"]) == EXIT_USAGE
