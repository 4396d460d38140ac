"""The library path in a fresh interpreter (no test has imported anything before)."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_available_methods_in_a_fresh_interpreter():
    out = _run("import reluopt; print(reluopt.available_methods())")
    assert out.returncode == 0, out.stderr
    for name in ("auto", "bab", "mip", "ppga-lr", "sampling", "walk"):
        assert f"'{name}'" in out.stdout


def test_unknown_method_is_a_problem_error_in_a_fresh_interpreter():
    code = ("import reluopt, numpy as np\n"
            "net = reluopt.Network.from_weights([(np.ones((2, 2)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])\n"
            "p = reluopt.Problem.build(net, -1, 1, maximize=0)\n"
            "try:\n    reluopt.solve(p, method='typo')\n"
            "except reluopt.ProblemError as e:\n    print('ProblemError:', e)\n")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "ProblemError: unknown method 'typo'" in out.stdout and "bab" in out.stdout
