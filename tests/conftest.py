"""Shared fixtures: small seeded networks and the location of ../shared/data.

Markers (pyproject.toml): ``data`` for tests that read ../shared/data (given automatically to every
test that takes the ``shared_data`` fixture, which skips when the folder is absent), ``slow`` for
the slowest tests. Both stay in ``make test``; ``-m "not slow"`` or ``-m "not data"`` leave them out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from reluopt import Network

# Deterministic property tests: the same examples on every run and every machine.
settings.register_profile("reluopt", derandomize=True, print_blob=True)
settings.load_profile("reluopt")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def random_network(sizes, seed=0, scale=1.0) -> Network:
    rng = np.random.default_rng(seed)
    weights = [
        (scale * rng.normal(size=(sizes[i + 1], sizes[i])) / np.sqrt(sizes[i]),
         scale * 0.5 * rng.normal(size=sizes[i + 1]))
        for i in range(len(sizes) - 1)
    ]
    return Network.from_weights(weights)


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def tiny_net() -> Network:
    return random_network([2, 8, 8, 1], seed=3)
