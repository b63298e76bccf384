"""Speech outside a long recording's transcript (vqalign.align.extent): the backward pass
against the forward one, the located words against the synthesizer's exact times, and the
masking, muting and rate check against what they must leave in place."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

from vqalign.align import extent as E

HOP = 0.010


def _prior_model():
    from vqalign.align import Aligner, prior
    return prior.prior_aligner(Aligner.load).model_


def _prepared(seed_utts, transcript_of):
    """Synthetic utterances joined with 0.4 s pauses; the transcript covers the utterances
    whose indices are in ``transcript_of``; (prepared, true first word start, true last
    word end) of the covered ones."""
    from vqalign.align import Aligner
    from vqalign.datasets import synth
    utts = synth.synthesize_corpus(len(seed_utts), seed=seed_utts[0])
    sr = utts[0].sr
    gap = np.zeros(int(0.4 * sr), np.float32)
    audio, texts, words, off = [gap], [], [], gap.size / sr
    for i, u in enumerate(utts):
        audio += [u.audio, gap]
        if i in transcript_of:
            texts.append(u.text)
            words += [(s + off, e + off) for s, e, lab in u.words if lab]
        off += (u.audio.size + gap.size) / sr
    a = Aligner(unit="phones")
    a.check_params()
    p = a.prepare(np.concatenate(audio), sr, " ".join(texts))
    return p, words[0][0], words[-1][1]


def test_the_backward_pass_scores_the_forward_pass_path():
    # a frame's emission does not depend on the direction: reversed in time (the chain,
    # every unit's sub-states, the frames), the best path and its score are the same
    p, _, _ = _prepared([3, 3, 3], {0, 1, 2})
    m = E._locator(_prior_model(), p.tokens.units)
    sel = m.select(p.X)
    fwd = E._words_extent(m, p.tokens.units, sel, False)
    bwd = E._words_extent(m, p.tokens.units, E._flipped(sel), True)
    T = p.X.shape[0]
    print("forward", fwd, "backward", bwd)
    assert bwd[0] == pytest.approx(fwd[0], rel=1e-9, abs=1e-6)
    assert (T - bwd[2], T - bwd[1]) == fwd[1:]


@pytest.mark.parametrize("covered", [{1, 2, 3}, {0, 1, 2}, {1, 2}], ids=["head", "tail", "both"])
def test_words_are_located_after_and_before_untranscribed_speech(covered):
    p, first, last = _prepared([5, 5, 5, 5], covered)
    got = E.locate(_prior_model(), p.X, p.tokens.units, HOP)
    print(covered, "located", got[0] * HOP, got[1] * HOP, "true", first, last)
    assert abs(got[0] * HOP - first) < 0.1 and abs(got[1] * HOP - last) < 0.1


def test_words_are_located_between_untranscribed_speech_at_both_ends():
    # 120 s of tiled sentences with 20 s more of the same sentences (other order) before
    # and after: neither single pass finds the words (each takes the speech at the end it
    # starts from), the refined passes do
    from tests.test_windows import _tile
    from vqalign.align import Aligner
    y1, sr, t1, w1 = _tile(60.0, 3)
    y2, _, t2, w2 = _tile(60.0, 4)
    extra = _tile(40.0, 5)[0]
    h = extra.size // 2
    y = np.concatenate([extra[:h], y1, y2, extra[h:]])
    first, last = h / sr + w1[0][0], (h + y1.size) / sr + w2[-1][1]
    a = Aligner(unit="phones")
    a.check_params()
    p = a.prepare(y, sr, t1 + " " + t2)
    got = E.locate(_prior_model(), p.X, p.tokens.units, HOP)
    print("located", got[0] * HOP, got[1] * HOP, "true", first, last)
    assert abs(got[0] * HOP - first) < 0.1 and abs(got[1] * HOP - last) < 0.1


def test_edge_spans_keep_a_margin_and_need_speech():
    p = types.SimpleNamespace(X=np.zeros((6000, 39), np.float32))
    speech = np.zeros(6000, bool)
    speech[:1000] = True        # 10 s of speech before the words
    speech[5900:] = True        # 1 s after them: too little to leave out
    got = E.edge_spans(p, HOP, (1500, 5500), speech)
    margin = int(round(E.MARGIN_S / HOP))
    assert got == [(0, 1500 - margin)]
    assert E.edge_spans(p, HOP, (900, 5500), speech) == [(0, 900 - margin)]
    assert E.edge_spans(p, HOP, (150, 5500), speech) == []      # 1 s of speech before


def test_masked_replaces_only_the_spans_by_quiet_frames():
    rng = np.random.default_rng(0)
    T = 400
    X = rng.standard_normal((T, 39)).astype(np.float32)
    energy = np.linspace(1.0, 10.0, T)
    speech = np.ones(T, bool)

    @dataclasses.dataclass
    class P:
        X: np.ndarray
        energy: np.ndarray
        speech: np.ndarray
    p = P(X, energy, speech)
    q = E.masked(p, [(300, 400)], HOP, speech)
    np.testing.assert_array_equal(q.X[:300], X[:300])       # untouched before the span
    np.testing.assert_array_equal(p.X, X)                   # p itself left as it is
    assert q.energy[300:].max() <= np.quantile(energy[:300], 0.05) + 1e-12
    assert not q.speech[300:].any() and q.speech[:300].all() and speech.all()
    # the span's frames are copies of the quiet frames, row for row
    for t in range(300, 400):
        src = np.flatnonzero((X == q.X[t]).all(axis=1))
        assert src.size == 1 and energy[src[0]] == q.energy[t]


def test_unmuted_cuts_the_left_out_frames_from_a_windows_edges():
    y = np.arange(16000 * 30, dtype=np.float32)          # frames 1000:4000 at 10 ms
    spans = [(0, 1200), (3500, 5000)]
    got, a, b = E.unmuted(y, 1000, 4000, HOP, spans)
    assert (a, b) == (1200, 3500)
    np.testing.assert_array_equal(got, y[200 * 160:2500 * 160])
    same, a, b = E.unmuted(y, 1300, 3400, HOP, spans)
    assert same is y and (a, b) == (1300, 3400)


def test_rate_warning_names_the_shortfall():
    units = [["a", "b", "c"]] * 100                         # 300 letters
    p = types.SimpleNamespace(tokens=types.SimpleNamespace(units=units))
    assert E.rate_warning(p, np.ones(2000, bool), "chars") is None    # 15 a second
    msg = E.rate_warning(p, np.ones(6000, bool), "chars")             # 5 a second
    assert "300 letters for 60 s of speech" in msg and "add the missing text" in msg
