"""An English corpus model started from the Sphinx model's segmentation
(vqalign.align.corpus_start): the segmentation in the corpus's frames, the same start in
memory (Aligner.fit) and streamed from the feature store (align-corpus), and its accuracy
against the synthesizer's exact word times."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from vqalign.align import Aligner
from vqalign.align import corpus_start as CS
from vqalign.align import second_opinion as SO
from vqalign.datasets import synth
from vqalign.eval import boundary_errors

pytest.importorskip("pocketsphinx")


@pytest.fixture(scope="module")
def corpus():
    utts = synth.synthesize_corpus(6, seed=9)
    for k, u in enumerate(utts):
        u.id = f"u{k}"
    return utts


@pytest.fixture(scope="module")
def fitted(corpus):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Aligner(unit="phones").fit([(u.audio, u.sr, u.text) for u in corpus])


def test_segments_are_each_utterances_own_shifted_by_its_offset(corpus):
    a = Aligner(unit="phones")
    a.check_params(training=True)
    utts = [a.prepare(u.audio, u.sr, u.text, u.id) for u in corpus[:3]]
    offs = np.concatenate([[0], np.cumsum([p.X.shape[0] for p in utts])])
    segs, missed = CS.segments(utts, offs, a.hop_)
    assert missed == 0
    want = []
    for u, p in enumerate(utts):
        _, own = SO.sphinx_reference(p, a.hop_)
        want += [(s + offs[u], e + offs[u], sym) for s, e, sym in own]
    assert segs == want
    assert all(offs[0] <= s < e <= offs[-1] for s, e, _ in segs)
    # an utterance whose frames do not match the corpus's is left out, and counted
    wrong = offs.copy()
    wrong[2:] += 1
    segs2, missed2 = CS.segments(utts, wrong, a.hop_)
    assert missed2 == 1 and len(segs2) < len(segs)


def test_only_english_phones_with_the_sphinx_model_get_the_start():
    assert CS.wanted(Aligner(unit="phones"))
    assert CS.wanted(Aligner(unit="phones", reference="sphinx"))
    assert not CS.wanted(Aligner(unit="phones", reference="flat"))
    assert not CS.wanted(Aligner(unit="phones", reference="none"))
    assert not CS.wanted(Aligner(unit="chars"))


def test_the_corpus_model_starts_from_the_segmentation_and_places_the_words(fitted, corpus):
    assert fitted.history_.name.endswith(CS.SEED_NAME)
    fitted.reference = "flat"               # the corpus model alone
    try:
        alone = fitted.align_many([(u.audio, u.sr, u.text) for u in corpus])
    finally:
        fitted.reference = "auto"
    errs = np.concatenate([boundary_errors(a.tier("words"), u.words)["errors"]
                           for a, u in zip(alone, corpus)])
    print("Sphinx-started corpus model, mean word-boundary error", 1000 * errs.mean(), "ms")
    assert 1000 * errs.mean() < 25


def test_streamed_corpus_takes_the_same_start(fitted, corpus, tmp_path, capsys):
    from vqalign.align.alignment import read_alignment
    from vqalign.cli import main

    root = tmp_path / "corpus"
    synth.write_corpus(corpus, root)
    out = tmp_path / "out"
    assert main(["align-corpus", str(root), "--out", str(out), "--jobs", "1",
                 "--format", "json"]) == 0
    text = "".join(capsys.readouterr())
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert stages["em"]["start"] == "sphinx"
    chunks = stages["em"]["chunks"]
    assert chunks["sphinx-segments"]["missed"] == 0
    assert not any(c.startswith(("durations-", "broad-", "short-")) for c in chunks)
    assert "the Sphinx model's segmentation of 6 utterances" in text
    # the streamed model's words are the in-memory one's (the same recipe)
    mem = {u.id: a for u, a in zip(corpus, fitted.alignments_)}
    diffs = []
    for u in corpus:
        got = read_alignment(out / f"{u.id}.json")
        a = np.array(got.diagnostics["reference"]["words"]["corpus"])
        b = np.array(mem[u.id].diagnostics["reference"]["words"]["corpus"])
        diffs.append(np.abs(a - b).ravel())
    d = np.concatenate(diffs)
    print("streamed against in-memory corpus model: median", np.median(d), "max", d.max())
    assert np.median(d) < 0.010
    # a resumed EM stage reads the segmentation saved by the first run
    assert main(["align-corpus", str(root), "--out", str(out), "--jobs", "1",
                 "--format", "json", "--from-stage", "em", "--overwrite"]) == 0
    again = json.loads((out / "stages.json").read_text())["stages"]["em"]
    assert again["start"] == "sphinx"


def test_the_sphinx_model_aligns_each_utterance_once_per_fit_with_the_same_result(
        corpus, monkeypatch):
    """The start and the median both ask for the Sphinx model's alignment of every
    utterance: it is made once, and the fit's alignments are those made without the memo
    (the fixture's fit, made with it, against one with MEMO_SIZE 0)."""
    calls = []
    real = SO.sphinx_aligner()

    class Counting:
        def align(self, y, text, sr, **kw):
            calls.append(text)
            return real.align(y, text, sr=sr, **kw)

    monkeypatch.setattr(SO, "sphinx_aligner", lambda: Counting())
    items = [(u.audio, u.sr, u.text) for u in corpus]
    SO._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = Aligner(unit="phones").fit(items)
    assert sorted(calls) == sorted(set(calls)) and len(calls) == len(corpus)
    calls.clear()
    monkeypatch.setattr(SO, "MEMO_SIZE", 0)
    SO._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = Aligner(unit="phones").fit(items)
    assert len(calls) == 2 * len(corpus) and len(SO._MEMO) == 0
    for x, y in zip(a.alignments_, b.alignments_):
        assert x.tiers == y.tiers
    # a memo hit is a copy: changing it leaves the memo's alignment as it was
    SO._MEMO.clear()
    monkeypatch.setattr(SO, "MEMO_SIZE", 4)
    u = corpus[0]
    first = SO._memo_align(np.asarray(u.audio, np.float32), u.text, u.sr)
    first.tiers["words"][0].start = -1.0
    again = SO._memo_align(np.asarray(u.audio, np.float32), u.text, u.sr)
    assert again.tiers["words"][0].start >= 0.0
