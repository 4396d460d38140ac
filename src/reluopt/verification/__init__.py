"""Verification of VNN-LIB properties: an application of bounds, branch and bound and the MIP.

    from reluopt.verification import load_vnnlib, verify
    verdict = verify(network, load_vnnlib("prop.vnnlib"), timeout=60)
    verdict.status      # 'sat' (verdict.x is a counterexample), 'unsat' or 'unknown'

Modules: ``sexpr`` (the tokenizer: s-expressions with positions, the reader's clock),
``vnnlib`` (the reader: formula to DNF to input boxes with output disjuncts), ``driver``
(``verify``: bounds, falsification, the exact phase, the verdict's checks), ``falsify``
(each pair as a margin ``Problem``, attacked by the solve layer's ``pgd``; confirming and
polishing counterexamples) and ``exact`` (branch and bound on the margin problem, the
shared splitting tree ``search.disjuncts``, the cut-off MIP on any MILP back-end). The property's
data model (``Property``, ``InputBox``, ``Disjunct``) is ``reluopt.verification.property``.
"""

from .driver import STATUSES, Verdict, verify
from .property import Disjunct, InputBox, Property
from .sexpr import VnnlibTimeout
from .vnnlib import format_counterexample, load_vnnlib, parse_vnnlib

__all__ = ["STATUSES", "Disjunct", "InputBox", "Property", "Verdict", "VnnlibTimeout", "format_counterexample",
           "load_vnnlib", "parse_vnnlib", "verify"]
