"""Corpus mode's flat starts on a small corpus: the Gaussian count, the starts run, and
the score that picks one (log-likelihood less the cost of loud frames put in silence),
the same in memory (Aligner.fit) and streamed from the feature store (align-corpus).

These are the starts of a corpus without the Sphinx model's segmentation (another
language, reference "none" or "flat", no pocketsphinx): here it is switched off
(``corpus_start.wanted``); tests/test_corpus_start.py tests the Sphinx start."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from vqalign.align import Aligner
from vqalign.align import corpus_start as CS
from vqalign.align import recipe as AL
from vqalign.align import utterance as U
from vqalign.datasets import synth


@pytest.fixture(scope="module")
def small_corpus():
    utts = synth.synthesize_corpus(6, seed=3)
    for k, u in enumerate(utts):
        u.id = f"u{k}"
    return utts


@pytest.fixture(scope="module", autouse=True)
def flat_starts():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CS, "wanted", lambda aligner: False)
        yield


@pytest.fixture(scope="module")
def fitted(small_corpus, flat_starts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Aligner(unit="phones").fit([(u.audio, u.sr, u.text) for u in small_corpus])


def test_corpus_codes():
    a = Aligner(n_codes=256)
    assert a.corpus_codes(10**7) == 256
    assert a.corpus_codes(AL.CORPUS_FRAMES_PER_CODE * 100) == 100
    assert a.corpus_codes(10) == AL.MIN_CORPUS_CODES
    assert Aligner(n_codes=32).corpus_codes(10) == 32


def test_small_corpus_model_size_and_start(fitted, small_corpus):
    n_frames = sum(int(np.ceil(len(u.audio) / (u.sr * fitted.hop_))) for u in small_corpus)
    assert fitted.model_.gmm_.n_components == fitted.corpus_codes(n_frames) < 256
    assert fitted.history_.name.endswith("flat start")
    assert "durations" in fitted.history_.name and "short" not in fitted.history_.name


def test_loud_in_silence_matches_the_alignment(fitted, small_corpus):
    """The share of loud frames the Viterbi path puts in silence, recomputed from the
    word spans of the decoded alignments (a frame belongs to a word when its centre lies
    inside the word's span)."""
    a = fitted
    prepared = [a.prepare(y, sr, text, name) for y, sr, text, name in
                U.as_items([(u.audio, u.sr, u.text) for u in small_corpus])]
    X, energy, offs = U.frames(prepared)
    words = [p.tokens.units for p in prepared]
    model = a.model_
    share = AL.loud_in_silence(model, X, offs, energy, words)
    res = a._decode(prepared, X, offs, model.select(X), history=None)
    loud = n = 0
    for u, aln in enumerate(res):
        e = energy[offs[u]:offs[u + 1]]
        lo, hi = np.percentile(e, [10, 95])
        on = e > lo + AL.LOUD_SHARE * (hi - lo)
        in_word = np.zeros(e.size, bool)
        for start, end, _ in aln.tier("words"):
            f0, f1 = (int(np.ceil(t / a.hop_ - 1e-9)) for t in (start, end))
            in_word[f0:min(f1, e.size)] = True
        loud += int(np.count_nonzero(on & ~in_word))
        n += int(np.count_nonzero(on))
    assert n > 0 and 0.0 <= share < 0.05
    assert share == pytest.approx(loud / n, abs=1e-12)


def test_streamed_small_corpus_runs_and_picks_the_same_starts(fitted, small_corpus, tmp_path,
                                                              capsys):
    from vqalign.cli import main
    from vqalign.datasets.synth import write_corpus

    root = tmp_path / "corpus"
    write_corpus(small_corpus, root)
    out = tmp_path / "out"
    assert main(["align-corpus", str(root), "--out", str(out), "--jobs", "1"]) == 0
    printed = capsys.readouterr()
    text = printed.out + printed.err
    stages = json.loads((out / "stages.json").read_text())["stages"]
    chunks = stages["em"]["chunks"]
    assert any(c.startswith("durations-") for c in chunks)
    assert any(c.startswith("broad-") for c in chunks)
    assert not any(c.startswith("short-") for c in chunks)
    assert "em broad: log-likelihood/frame" in text and "loud frames in silence" in text
    chosen = stages["em"]["start"]
    assert ("broad-class" in fitted.history_.name) == (chosen == "broad")
    with np.load(out / "codebook.npz") as z:
        assert z["codebook"].shape[0] == fitted.model_.gmm_.n_components
