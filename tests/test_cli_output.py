"""What the CLI prints: y(x) in --json, all of x, progress only on a terminal (or with
--progress), one gap convention, verify's phases, CSV boxes with a header, help texts."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, random_network
from reluopt import ParseError
from reluopt.cli import build_parser, main
from reluopt.cli.common import ProgressLine, format_progress, parse_box
from reluopt.io.native import save_npz
from reluopt.lipschitz import LipschitzResult
from reluopt.result import Result

PEAKS = ROOT / "examples" / "peaks" / "models" / "peaks_2-64-64-1.npz"
RELUOPT = Path(sys.executable).parent / "reluopt"


@pytest.fixture
def model_file(tmp_path):
    net = random_network([2, 8, 8, 2], seed=3)
    return net, str(save_npz(net, tmp_path / "net.npz"))


# ----------------------------------------------------------------------------- boxes
def test_csv_box_with_a_header(tmp_path):
    box = tmp_path / "box.csv"
    box.write_text("lo,hi\n0,1\n-1.5,2  # second input\n")
    lb, ub = parse_box(str(box), 2)
    np.testing.assert_allclose(lb, [0, -1.5])
    np.testing.assert_allclose(ub, [1, 2])
    box.write_text("# a comment\n lo , hi \n\n0,1\n-1,1\n")
    np.testing.assert_allclose(parse_box(str(box), 2)[1], [1, 1])
    box.write_text("0,1\n-1,1\n")                                  # no header: as before
    np.testing.assert_allclose(parse_box(str(box), 2)[0], [0, -1])
    box.write_text("0.1,abc\n0,1\n")                               # a bad row is not a header
    with pytest.raises(ParseError, match="box file"):
        parse_box(str(box), 2)
    box.write_text("lo,hi\n")
    with pytest.raises(ParseError, match="no rows"):
        parse_box(str(box), 2)


def test_csv_box_with_a_header_from_the_cli(model_file, tmp_path, capsys):
    _, path = model_file
    box = tmp_path / "box.csv"
    box.write_text("lo,hi\n-1,1\n-1,1\n")
    assert main(["solve", path, "--box", str(box), "--maximize", "0", "--method", "bab"]) == 0
    assert "status   optimal" in capsys.readouterr().out


# ----------------------------------------------------------------------------- solve output
def test_json_has_y_and_text_shows_y(model_file, tmp_path, capsys):
    net, path = model_file
    out = tmp_path / "r.json"
    assert main(["solve", path, "--box=-1,1", "--maximize", "y[0] - 0.5*x[1]", "--method", "bab",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    x = np.array(data["x"])
    np.testing.assert_allclose(data["y"], net.forward(x), rtol=1e-12)
    assert len(data["y"]) == 2                       # the user's outputs, not the carried x term
    assert data["value"] == pytest.approx(data["y"][0] - 0.5 * x[1], abs=1e-9)
    text = capsys.readouterr().out
    assert "y(x)" in text and "max y[0] - 0.5*x[1] over a 2-d box of 2-8-8-2" in text


def test_json_to_stdout_has_y(model_file, capsys):
    _, path = model_file
    assert main(["solve", path, "--box=-1,1", "--minimize", "1", "--method", "bab", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["y"]) == 2 and data["status"] == "optimal"


def test_all_of_x_is_shown_and_wrapped():
    x = np.linspace(-1, 1, 40)
    text = Result("feasible", "ppga", "max", x=x, value=1.0).summary()
    shown = [float(v) for v in text.split("[", 1)[1].split("]")[0].replace("\n", " ").split(",")]
    np.testing.assert_allclose(shown, x, rtol=1e-5)
    assert "x        (40) [" in text and "..." not in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_one_gap_convention_in_the_live_line_and_the_summary():
    live = format_progress({"elapsed": 1.0, "method": "bab", "incumbent": 1.0, "bound": 1.0000821,
                            "gap": 8.21e-05})
    summary = Result("time_limit", "bab", "max", x=np.zeros(1), value=1.0, bound=1.0000821).summary()
    assert "gap 8.21e-05 (relative)" in live
    assert "gap      8.21e-05 (relative)" in summary
    assert "%" not in live


def test_verify_progress_names_the_phase():
    line = format_progress({"elapsed": 2.0, "method": "verify", "phase": "bab pair 1/3", "incumbent": -0.5,
                            "bound": 1.2, "pairs": 3, "pairs_open": 2, "nodes": 40})
    assert "[branch and bound pair 1/3]" in line and "best margin -0.5" in line and "pairs open 2/3" in line
    assert "[falsification]" in format_progress({"method": "verify", "phase": "falsification"})
    assert "[bounds]" in format_progress({"method": "verify", "phase": "bounds"})
    assert "[MIP pair 1/1]" in format_progress({"method": "verify", "phase": "mip pair 1/1"})


# ----------------------------------------------------------------------------- progress
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_terminal_pipe_and_log():
    info = {"elapsed": 0.0, "method": "auto", "incumbent": None, "bound": None, "gap": float("inf")}
    pipe = io.StringIO()
    line = ProgressLine(stream=pipe)
    line(info)
    line.close()
    assert pipe.getvalue() == ""                    # not a terminal: nothing by default
    log = io.StringIO()
    line = ProgressLine(stream=log, log=True)
    line(info)
    line.close()
    assert log.getvalue().count("\n") == 1 and "auto" in log.getvalue()
    tty = FakeTTY()
    line = ProgressLine(stream=tty)
    line(info)
    line.close()
    line(info)                                     # after close: nothing more
    text = tty.getvalue()
    assert text.startswith("\r") and "auto" in text and text.endswith("\r") and "\n" not in text
    quiet = FakeTTY()
    line = ProgressLine(enabled=False, stream=quiet)
    line(info)
    line.close()
    assert quiet.getvalue() == ""


def test_no_progress_lines_without_a_terminal(model_file, capsys):
    _, path = model_file
    assert main(["solve", path, "--box=-1,1", "--maximize", "0", "--method", "auto", "--time-limit", "5"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["solve", path, "--box=-1,1", "--maximize", "0", "--method", "bab", "--progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") >= 1 and "bab" in err and "gap" in err and "\r" not in err


def test_no_progress_lines_through_pipes(model_file):
    _, path = model_file
    proc = subprocess.run([str(RELUOPT), "solve", path, "--box=-1,1", "--maximize", "0", "--method", "bab"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "status   optimal" in proc.stdout


def test_verify_instances_print_no_stale_progress_lines(tmp_path, capsys):
    net = random_network([2, 6, 1], seed=0)
    save_npz(net, tmp_path / "net.npz")
    (tmp_path / "prop.vnnlib").write_text(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
        "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n"
        "(assert (>= Y_0 1000))\n")
    (tmp_path / "instances.csv").write_text("net.npz,prop.vnnlib,20\nnet.npz,prop.vnnlib,20\n")
    assert main(["verify", "--instances", str(tmp_path / "instances.csv")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0].startswith("[1/2]") and lines[1].startswith("[2/2]") and lines[2].startswith("done: 2")
    assert len(lines) == 3


# ----------------------------------------------------------------------------- help and repr
def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_seed_has_help_and_the_model_is_called_model():
    for name, sub in _subparsers().items():
        for a in sub._actions:
            if a.dest == "seed":
                assert a.help, f"{name} --seed has no help"
            if a.dest == "model":
                assert a.metavar == "MODEL", f"{name}: positional {a.metavar or a.dest}"


def test_surf_help_says_what_it_does():
    text = _subparsers()["surf"].format_help()
    assert "Invert a generative network" in text and "compressed" in text


def test_lipschitz_result_repr_is_short():
    r = LipschitzResult(lower=1.0, upper=2.0, status="time_limit", norm="inf", method="bab",
                        x=np.zeros(784), pattern=[np.ones(1024, dtype=int)] * 3)
    text = repr(r)
    assert len(text) < 250 and "784 values" in text and "array" not in text
