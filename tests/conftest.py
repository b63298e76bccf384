"""Shared fixtures: seeded generators (seed printed on failure), dev data, synth speech."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
DEVDATA = Path(os.environ.get("VQALIGN_DEVDATA", ROOT.parent / "shared" / "devdata"))


@pytest.fixture
def seed(request) -> int:
    """A fixed seed per test, shown in the report so a failure can be replayed."""
    s = 12345
    request.node.user_properties.append(("seed", s))
    print(f"[seed={s}]")
    return s


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def devdata() -> Path:
    """The shared dev set (synthetic TTS utterances with exact TextGrids); skips if absent."""
    if not (DEVDATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"dev data not found at {DEVDATA} (set VQALIGN_DEVDATA)")
    return DEVDATA
