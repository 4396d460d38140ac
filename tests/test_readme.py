"""The README cannot drift: every ```python block runs (from the repository root) and the
numbers and words in its ``print(...)  # ...`` comments appear in what it prints; every
``reluopt ...`` command line names an existing subcommand, and the ``reluopt solve`` lines
parse, with their box, objective and constraints read by ``Problem.build``."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import textwrap

import numpy as np
import pytest

from conftest import ROOT, SHARED_DATA, random_network
from reluopt import Problem
from reluopt.cli import build_parser, join_negative_values
from reluopt.cli.common import objective_kwargs, parse_box

README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[tuple[int, str]]:
    """``(line number, dedented code)`` of every fenced block in ``language``."""
    out = []
    for m in BLOCK.finditer(README):
        if m.group(2) == language:
            out.append((README[:m.start()].count("\n") + 1, textwrap.dedent(m.group(3))))
    return out


PYTHON = blocks("python")
NUMBER = re.compile(r"-?\d+\.?\d*(?:e-?\d+)?")


def test_readme_has_python_blocks():
    assert len(PYTHON) >= 3


@pytest.mark.parametrize("line, code", [
    pytest.param(n, code, marks=[pytest.mark.data] if "../shared/data" in code else [], id=f"line{n}")
    for n, code in PYTHON])
def test_python_block_runs(line, code, monkeypatch):
    if "../shared/data" in code and not SHARED_DATA.is_dir():
        pytest.skip(f"README line {line} reads {SHARED_DATA}, which is absent")
    for module in ("torch", "sklearn", "pyscipopt", "gurobipy", "pyomo"):
        if re.search(rf"^\s*(import|from) {module}\b", code, re.MULTILINE):
            pytest.importorskip(module)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    printed = out.getvalue()
    shown = [float(v) for v in NUMBER.findall(printed)]
    for src in code.splitlines():
        if not src.lstrip().startswith("print(") or "#" not in src:
            continue
        for token in src.split("#", 1)[1].split():
            token = token.strip("[](),")
            if not token:
                continue
            if NUMBER.fullmatch(token):
                decimals = len(token.split(".")[1]) if "." in token else 0
                tol = 0.5 * 10.0 ** -decimals + 1e-12
                assert any(abs(v - float(token)) <= tol for v in shown), \
                    f"README line {line}: comment says {token}, the code printed {printed!r}"
            else:
                assert token in printed, f"README line {line}: comment says {token!r}, the code printed {printed!r}"


def _command_lines() -> list[str]:
    lines = []
    for _, code in blocks("") + blocks("sh") + blocks("bash"):
        lines += [s.strip() for s in code.splitlines() if s.strip().startswith("reluopt ")]
    return lines


def _tokens(line: str) -> list[str]:
    """The README's usage line as argv: ``[--opt X]`` made plain, ``a|b|...`` -> ``a``."""
    out = []
    for tok in shlex.split(line, comments=True)[1:]:
        if tok.startswith("[-"):
            tok = tok[1:]
        if tok.endswith("]") and tok.count("]") > tok.count("["):
            tok = tok[:-1]
        if "|" in tok and not tok.startswith("-"):
            tok = tok.split("|")[0]
        out.append(tok)
    return out


def test_command_lines_name_existing_subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    lines = _command_lines()
    assert len(lines) >= 8
    for line in lines:
        assert line.split()[1] in sub.choices, f"README: {line!r} names no reluopt subcommand"
        parser.parse_args(join_negative_values(_tokens(line)))      # every option exists


def test_solve_lines_parse():
    parser = build_parser()
    lines = [s for s in _command_lines() if s.split()[1] == "solve"]
    assert len(lines) >= 2
    net = random_network([2, 4, 2], seed=0)
    for line in lines:
        args = parser.parse_args(join_negative_values(_tokens(line)))
        assert args.model == "MODEL"
        lb, ub = parse_box(args.box, net)
        p = Problem.build(net, lb, ub, constraints=args.constraint or None, **objective_kwargs(args))
        assert np.any(p.objective.c)
