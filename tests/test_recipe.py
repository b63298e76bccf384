"""The recipe from public pieces in docs/hmm.md gives the Aligner's words and times."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vqalign.align import align
from vqalign.datasets import synth

README = Path(__file__).resolve().parents[1] / "docs" / "hmm.md"


def _recipe() -> str:
    text = README.read_text()
    m = re.search(r"<!-- recipe -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/hmm.md lost its recipe block"
    return m.group(1)


def test_readme_recipe_equals_aligner(monkeypatch):
    """The recipe is the plain flat start; the Aligner's single-utterance extras (the
    broad-class start, the edge-silence seed, trimming long edge silence, the pause-edge
    refinement) are policy on top of it, switched off here."""
    import vqalign.align.recipe as A
    from vqalign.align import refine

    monkeypatch.setattr(A, "BROAD_PRIOR", None)
    monkeypatch.setattr(A, "EDGE_QUIET", False)
    monkeypatch.setattr(A, "SINGLE_POLICY", False)
    monkeypatch.setattr(refine, "ENABLED", False)
    u = synth.synthesize_corpus(1, seed=5)[0]
    assert u.sr == 16000
    scope = {"y": u.audio.astype(np.float32), "text": u.text}
    code = _recipe()
    assert 12 <= len([ln for ln in code.splitlines() if ln.strip()]) <= 24
    exec(compile(code, "README recipe", "exec"), scope)
    got = [(s, e, wi) for s, e, wi, _ in scope["word_times"]]
    ref = align(u.audio, u.text, sr=u.sr, trim_silence=False)
    words = ref.tiers["words"]
    assert len(got) == len(words) > 2
    for (s, e, wi), w in zip(got, words):
        assert abs(s - w.start) < 1e-9 and abs(e - w.end) < 1e-9
        assert u.text.split()[wi].lower().strip(".,!?") == w.label.lower()
    phones = [(round(s, 6), lab) for s, _, lab, _ in scope["phones"]]
    assert phones == [(round(p.start, 6), p.label) for p in ref.tiers["phones"]]
