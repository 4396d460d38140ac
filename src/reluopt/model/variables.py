"""The parts of a general model: ``Var`` (a named block of columns) and ``Feed`` (a network and its inputs).

A ``Var`` is what ``Model.add_var`` and ``Model.add_network`` return: a name usable in expressions
(``str(v)``, ``v[i]``) and the model columns it stands for. A ``Feed`` is a network in a model with
its inputs as affine functions ``F v + f`` of the model's columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProblemError
from ..network import Network


@dataclass(frozen=True)
class Var:
    """A named block of model columns (a variable or a network's outputs), to use in expressions.

    ``str(v)`` is its name and ``v[i]`` the text ``'name[i]'`` of its entry ``i``.

    Attributes
    ----------
    name : str
    start, size : int
        Its first column and entry count.
    scalar : bool
        A scalar variable (written without an index).
    kind : str
        'var' (a decision variable) or 'output' (a network's outputs).
    """

    name: str
    start: int
    size: int
    scalar: bool = False
    kind: str = "var"

    @property
    def columns(self) -> np.ndarray:
        """The model columns of its entries."""
        return np.arange(self.start, self.start + self.size)

    def entries(self) -> list[str]:
        """The texts of its entries, in order.

        Returns
        -------
        list of str
        """
        return [self.name] if self.scalar else [f"{self.name}[{i}]" for i in range(self.size)]

    def __getitem__(self, i: int) -> str:
        if self.scalar or not 0 <= int(i) < self.size:
            raise ProblemError(f"{self.name}[{i}] does not exist: {self.name} has {self.size} entries")
        return f"{self.name}[{int(i)}]"

    def __str__(self) -> str:
        return self.name


@dataclass
class Feed:
    """A network in a model: ``outputs = network(F v + f)``.

    Attributes
    ----------
    network : Network
    F : numpy.ndarray
        ``(d, n_cols at creation)``: the input rows over the model's columns.
    f : numpy.ndarray
        ``(d,)`` constants.
    out : Var
        Its output columns.
    """

    network: Network
    F: np.ndarray
    f: np.ndarray
    out: Var

    def rows(self, n_cols: int) -> np.ndarray:
        """``F`` padded to ``n_cols`` columns.

        Parameters
        ----------
        n_cols : int

        Returns
        -------
        numpy.ndarray
        """
        return _pad(self.F, n_cols)


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    width = n - a.shape[-1]
    return a if width == 0 else np.concatenate([a, np.zeros((*a.shape[:-1], width))], axis=-1)
