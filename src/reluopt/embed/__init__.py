"""Embed a trained network in the user's own optimisation model, with reluopt's formulation.

One call per modelling layer, in that layer's convention; each reads the bounds of the input
variables from the user's model, computes reluopt's neuron bounds (CROWN by default, any of
``reluopt.bounds.BOUND_METHODS`` on request; the OBBT methods also use the model's linear
constraints on the input variables alone, ``input_constraints``), adds the formulation (big-M
with stable neurons removed on HiGHS, Gurobi and Pyomo, SOS1 on SCIP by default; SOS1 or
indicator constraints where the solver has them; ``rescale=True`` for the rescaled network) and
returns an ``EmbeddedNetwork`` with the output variables, ``stats`` and ``get_error()``:

* ``reluopt.embed.highspy.add_network_constr(h, network, x, y=None)`` (HiGHS, always installed);
* ``reluopt.embed.gurobipy.add_network_constr(model, network, x, y=None)`` (the ``gurobi`` extra);
* ``reluopt.embed.pyscipopt.add_network_constr(model, network, x, y=None)`` (the ``scip`` extra);
* ``reluopt.embed.pyomo.add_network_block(block, network, x, y=None)`` or a ``NetworkBlock``
  (the ``pyomo`` extra).

The layers are imported on demand (``import reluopt.embed.gurobipy``), so that a missing
optional package never breaks ``import reluopt.embed``.
"""

from .core import FORMULATIONS, EmbeddedNetwork, Embedding, formulate

__all__ = ["FORMULATIONS", "EmbeddedNetwork", "Embedding", "formulate"]
