"""What each activation means, defined once: ReLU, clipped ReLU, leaky ReLU and identity.

A ``Layer`` names its activation by a string (files store it) and carries its parameters
(``tau`` for the clipped ReLU's cap, ``alpha`` for the leaky ReLU's negative slope);
``get(layer)`` (or ``layer.act``) returns the object that owns everything the rest of the
package needs to know about it, so that no other module tests names:

* the forward map and the image of an interval (every activation here is monotone);
* phases: ``phase(g)`` at points (0 below the first kink, 1 between the kinks, 2 above the
  second) and ``classify(L, U)`` / ``unstable(L, U)`` from pre-activation bounds;
* derivatives: ``slope(g)`` at points, ``slope_bounds(L, U)`` over bounds, and the linear
  ``piece(phase)`` with the pre-activation interval ``phase_bounds(phase)`` of each piece
  (what the region LP and region enumeration need);
* the linear relaxation of CROWN (``relaxation``) and the lower slopes alpha-CROWN may choose
  (``lower_slope_range``);
* the big-M MILP of one layer (``milp``): which neurons get a column, the binaries and the
  rows, which ``milp.formulation`` assembles into one sparse model.

Adding an activation means writing its class (``relu.py`` holds the ReLU family) and adding it
to ``REGISTRY``, plus its importers and exporters in ``reluopt.io``.
"""

from __future__ import annotations

from ..errors import ModelError
from .base import Activation, Identity, MilpLayer, Phases, Rows
from .relu import ClippedReLU, LeakyReLU, ReLU

__all__ = ["Activation", "ClippedReLU", "Identity", "LeakyReLU", "MilpLayer", "Phases", "REGISTRY", "ReLU", "Rows",
           "get", "hidden_names", "lookup", "make", "names"]


# ----------------------------------------------------------------------------- registry
#: name -> class, in the order error messages list them
REGISTRY: dict[str, type[Activation]] = {cls.name: cls for cls in (ReLU, Identity, ClippedReLU, LeakyReLU)}


def names() -> tuple[str, ...]:
    """Every activation name a Layer may carry.

    Returns
    -------
    tuple of str
        The names, in ``REGISTRY`` order.
    """
    return tuple(REGISTRY)


def hidden_names() -> tuple[str, ...]:
    """The activation names allowed in hidden layers.

    Returns
    -------
    tuple of str
        The names, in ``REGISTRY`` order.
    """
    return tuple(name for name, cls in REGISTRY.items() if cls.hidden)


def lookup(name: str, where: str = "layer") -> type[Activation]:
    """The class of activation ``name``.

    Parameters
    ----------
    name : str
        An activation name (see ``names``).
    where : str
        Names the layer in the error message.

    Returns
    -------
    type[Activation]
        The registered class.

    Raises
    ------
    ModelError
        Unknown name (the message lists the known ones).
    """
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelError(f"{where}: unknown activation {name!r}; expected one of {', '.join(REGISTRY)}")
    return cls


def make(layer) -> Activation:
    """A new activation object for ``layer``.

    Parameters
    ----------
    layer : Layer
        Any object with ``activation`` and the activation's parameters as attributes.

    Returns
    -------
    Activation
        The activation with the layer's parameters.
    """
    cls = lookup(layer.activation)
    return cls(**{p: getattr(layer, p) for p in cls.params})


def get(layer) -> Activation:
    """The activation object of ``layer``; ``Network`` layers cache it (``Layer.act``).

    Parameters
    ----------
    layer : Layer
        As for ``make``.

    Returns
    -------
    Activation
        The cached object, or a new one.
    """
    act = getattr(layer, "act", None)
    return act if isinstance(act, Activation) else make(layer)
