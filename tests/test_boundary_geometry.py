"""Where a boundary between two frames lies in time: the Sphinx front end's frames start
at t * shift and are 410 samples long, so a change between frames t - 1 and t lies at
t / frate + (size - shift) / 2 / samprate; the Sphinx aligner reports it there."""

from __future__ import annotations

import numpy as np
import pytest


def test_sphinx_boundary_offset_from_the_frame_geometry():
    from vqalign.features.sphinx import SphinxFrontEnd, mfcc_sphinx

    fe = SphinxFrontEnd()
    assert fe.frame_size == 410 and fe.frame_shift == 160
    assert fe.boundary_offset_s == pytest.approx((410 - 160) / 2 / 16000)
    # independent check of the geometry it is derived from: a click at sample n0 changes
    # exactly the frames whose windows [t * shift, t * shift + size) hold it (n0 + 1 too:
    # pre-emphasis), so frame t's window starts at t * shift and its centre lies size / 2
    # samples later
    rng = np.random.default_rng(0)
    y = (1e-3 * rng.standard_normal(16000)).astype(np.float32)
    n0 = 8037
    z = y.copy()
    z[n0] += 0.5
    changed = np.flatnonzero(np.any(np.abs(mfcc_sphinx(z, 16000) - mfcc_sphinx(y, 16000))
                                    > 1e-4, axis=1))
    t = np.arange(mfcc_sphinx(y, 16000).shape[0])
    holds = np.flatnonzero((t * 160 <= n0 + 1) & (n0 < t * 160 + 410))
    assert np.array_equal(changed, holds)


def test_sphinx_aligner_reports_frame_changes_at_the_offset(monkeypatch):
    pytest.importorskip("pocketsphinx")
    from vqalign.align import Aligner, refine

    monkeypatch.setattr(refine, "ENABLED", False)   # pause edges leave the frame grid
    from vqalign.datasets.synth import synthesize

    u = synthesize("the quick brown fox jumps over the lazy dog", voice="bruno", seed=3)
    a = Aligner.from_sphinx("en-us").align(u.audio, u.text, sr=u.sr)
    off = 0.0078125
    inner = [t for s in a.tiers["phones"] for t in (s.start, s.end) if 0 < t < a.duration]
    frac = (np.array(inner) - off) / 0.01
    assert np.allclose(frac, np.round(frac), atol=1e-6)
