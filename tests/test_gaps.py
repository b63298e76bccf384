"""Minutes of music, silence or stationary noise between two sentences of a long recording
(vqalign.align.gaps): the stretch is found with its time span (the synthesizer's truth),
reported and left out, the words around it stay on their exact times and none lies over
it; a recording with only ordinary pauses (or with untranscribed speech at an end)
reports no such stretch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_windows import _tile
from vqalign.align import gaps as G
from vqalign.align import longform as L
from vqalign.datasets.longform import LongRecording, gap_audio, with_gap
from vqalign.exceptions import ParameterError

HOP = 0.010
GAP_S = 120.0
KINDS = ("music", "silence", "noise")


def _case(kind, pauses=()):
    """Two minutes of tiled synthetic sentences with ``GAP_S`` of ``kind`` (None: nothing)
    after a 0.4 s pause in the middle, and silences of ``pauses`` seconds between the
    sentences of the second minute; (audio, sr, text, true words, gap span or None)."""
    y1, sr, t1, w1 = _tile(60.0, 3)
    y2, _, t2, w2 = _tile(60.0, 4)
    lead = np.zeros(int(0.4 * sr), np.float32)
    mid = lead if kind is None else np.concatenate([lead, gap_audio(kind, GAP_S, sr=sr,
                                                                    seed=1)])
    parts, words2, off = [], [], 0.0
    if pauses:      # lengthen pauses between the sentences of the second minute
        between = [i for i in range(len(w2) - 1) if w2[i + 1][0] - w2[i][1] > 0.15]
        cut = [0] + [int(round(0.5 * (w2[i][1] + w2[i + 1][0]) * sr))
                     for i in between[2:9:3]] + [y2.size]
        for k, (a, b) in enumerate(zip(cut[:-1], cut[1:])):
            parts.append(y2[a:b])
            words2 += [(s + off, e + off, lab) for s, e, lab in w2 if a / sr <= s < b / sr]
            if k < len(pauses):
                parts.append(np.zeros(int(pauses[k] * sr), np.float32))
                off += pauses[k]
        y2 = np.concatenate(parts)
        w2 = words2
    shift = (y1.size + mid.size) / sr
    y = np.concatenate([y1, mid, y2])
    words = w1 + [(s + shift, e + shift, lab) for s, e, lab in w2]
    span = None if kind is None else ((y1.size + lead.size) / sr, shift)
    return y, sr, t1 + " " + t2, words, span


def _prepared(y, sr, text):
    from vqalign.align import Aligner
    a = Aligner(unit="phones")
    a.check_params()
    return a.prepare(y, sr, text)


def _prior_model():
    from vqalign.align import Aligner, prior
    return prior.prior_aligner(Aligner.load).model_


# ----------------------------------------------------------------------------- the search
@pytest.mark.parametrize("kind", KINDS)
def test_the_stretch_is_found_between_the_words_beside_it(kind):
    y, sr, text, words, (g0, g1) = _case(kind)
    p = _prepared(y, sr, text)
    got = G.find(_prior_model(), p.X, p.tokens.units, HOP)
    print(kind, "found", [(a * HOP, b * HOP) for a, b in got], "true", (g0, g1))
    assert len(got) == 1
    a, b = got[0][0] * HOP, got[0][1] * HOP
    before = max(e for _, e, _ in words if e <= g0)
    after = min(s for s, _, _ in words if s >= g1)
    # within a second of the inserted audio, and not into the words beside it
    assert abs(a - g0) < 1.0 and abs(b - g1) < 1.0
    assert a >= before - 0.03 and b <= after + 0.03


def test_ordinary_and_long_pauses_are_no_stretch():
    # pauses of 3, 6 and 9 s between sentences: pauses, not stretches without speech
    y, sr, text, words, _ = _case(None, pauses=(3.0, 6.0, 9.0))
    p = _prepared(y, sr, text)
    assert G.find(_prior_model(), p.X, p.tokens.units, HOP) == []


def test_untranscribed_speech_at_an_end_is_no_stretch_inside():
    # the forward search takes 40 s of speech before the first word as a stretch after
    # it; the backward search does not: the extent check's business, not this one's
    from tests.test_windows import _gap_case
    y, sr, text, _ = _gap_case("head")
    p = _prepared(y, sr, text)
    assert G.find(_prior_model(), p.X, p.tokens.units, HOP) == []


def test_a_search_over_its_memory_budget_finds_nothing(monkeypatch):
    # the music case's searches store 11-46 back-pointers per frame: at 8 every search
    # (and the extent's) stops at the budget, and the stretch is not found, not an error
    # (a 35-min recording of real speech stored 5264 per frame, 1.1 GB, without a budget)
    from vqalign.align import extent as E
    from vqalign.hmm import STATUS_OVER_BUDGET
    from vqalign.hmm.train import TiedMixtureHMM
    y, sr, text, _, _ = _case("music")
    p = _prepared(y, sr, text)
    model = _prior_model()
    seen = []
    orig = TiedMixtureHMM.viterbi_batch

    def spy(self, *a, **k):
        out = orig(self, *a, **k)
        seen.append((k.get("max_cells"), int(out[2][0]), int(out[3][0])))
        return out

    monkeypatch.setattr(TiedMixtureHMM, "viterbi_batch", spy)
    assert len(G.find(model, p.X, p.tokens.units, HOP)) == 1
    T = p.X.shape[0]
    assert seen and all(m == E.MAX_CELLS_PER_FRAME * T and c <= m for m, _, c in seen)
    seen.clear()
    monkeypatch.setattr(E, "MAX_CELLS_PER_FRAME", 8)
    assert G.find(model, p.X, p.tokens.units, HOP) == []
    assert seen and all(st == STATUS_OVER_BUDGET and c <= 8 * T for _, st, c in seen)
    assert E.locate(model, p.X, p.tokens.units, HOP) is None


def test_report_names_the_span_and_the_words_beside_it():
    from vqalign.align.alignment import Alignment, Segment
    words = [Segment(0.5, 1.0, "before"), Segment(60.0, 60.4, "after")]
    aln = Alignment(tiers={"words": words}, duration=61.0, diagnostics={
        "frame_loglik": [0.0] * 6100,
        "warnings": ["words: 59.00 s of silence between 'before' and 'after' (1.00-60.00 s)"
                     "; speech missing from the transcript ends up there", "other"]})
    energy = np.zeros(6100)
    energy[:100] = energy[6000:] = 10.0           # the words loud, the stretch quiet
    p = type("P", (), {"duration": 61.0, "energy": energy})()
    G.report(aln, p, [(110, 5990)], HOP)
    assert aln.diagnostics["non_speech_s"] == [[1.1, 59.9]]
    w = aln.diagnostics["warnings"]
    assert w[0] == "other" and len(w) == 2       # the quality warning of the span dropped
    assert w[1].startswith("1.1-59.9 s: 58.8 s of silence between 'before' and 'after'")
    assert "left out" in w[1]
    fl = aln.diagnostics["frame_loglik"]
    assert None not in fl                         # silence is not masked: its own values
    energy[110:5990] = 20.0                      # louder than the words: music
    G.report(aln, p, [(110, 5990)], HOP)
    assert "not speech (music or noise)" in aln.diagnostics["warnings"][-1]
    assert fl[109] == 0.0 and fl[110] is None and fl[5989] is None and fl[5990] == 0.0


def test_gap_audio_and_with_gap():
    for kind in KINDS:
        y = gap_audio(kind, 2.0, seed=0)
        assert y.shape == (32000,) and y.dtype == np.float32
    assert np.sqrt(np.mean(gap_audio("music", 2.0) ** 2)) == pytest.approx(0.08, rel=1e-3)
    assert np.abs(gap_audio("silence", 2.0)).max() < 1e-4
    with pytest.raises(ParameterError, match="gap kind 'jazz'"):
        gap_audio("jazz", 1.0)
    sr = 16000
    words = [(0.5, 1.0, "a"), (1.5, 2.0, "b"), (3.0, 3.5, "c")]
    rec = LongRecording(np.ones(4 * sr, np.float32), sr, "a b c", words, ["u0", "u1"],
                        np.array([0, 0, 1]))
    out, (g0, g1) = with_gap(rec, "silence", 10.0)
    assert (g0, g1) == (2.5, 12.5)                # the middle of the pause between b and c
    assert out.words == [(0.5, 1.0, "a"), (1.5, 2.0, "b"), (13.0, 13.5, "c")]
    assert out.audio.size == 14 * sr and np.abs(out.audio[int(3 * sr):int(12 * sr)]).max() < 1e-4


# ------------------------------------------------------------------------- the alignment
def _aligned(kind, pauses=()):
    from vqalign.align import Aligner
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VQALIGN_RESUME_DIR", "0")
        mp.setenv("VQALIGN_PROGRESS", "0")
        mp.setattr(L, "WINDOWS_MIN_S", 90.0)    # the windows schedule at 2 min
        y, sr, text, words, span = _case(kind, pauses)
        aln = Aligner(unit="phones").align(y, text, sr=sr)
    pred = aln.tiers["words"]
    assert [w.label for w in pred] == [w[2] for w in words]
    err = np.array([max(abs(p.start - w[0]), abs(p.end - w[1])) for p, w in zip(pred, words)])
    print(kind, "word error median", np.median(err), "worst", err.max())
    return aln, err, span


@pytest.fixture(scope="module")
def without_gap():
    return _aligned(None)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_stretch_inside_is_reported_and_left_out(kind, without_gap):
    aln, err, (g0, g1) = _aligned(kind)
    (a, b), = aln.diagnostics["non_speech_s"]
    assert abs(a - g0) < 3.0 and abs(b - g1) < 3.0
    said = [w for w in aln.diagnostics["warnings"] if w.startswith(f"{a:.1f}-{b:.1f} s:")]
    assert len(said) == 1 and "left out" in said[0]
    assert ("of silence" in said[0]) == (kind == "silence")
    for w in aln.tiers["words"]:       # no word over the stretch, nor over the true one
        assert w.end <= max(a, g0) + 0.05 or w.start >= min(b, g1) - 0.05, w
    # the rest as well aligned as without the stretch (measured: music, silence, noise
    # 1-2 ms of the gap-free median; the worst word 0.15-0.25 s, as without it)
    _, err0, _ = without_gap
    assert np.median(err) < np.median(err0) + 0.003
    assert err.max() < max(0.3, err0.max() + 0.05)


@pytest.mark.slow
def test_a_recording_with_pauses_only_reports_no_stretch(without_gap):
    aln, err, _ = _aligned(None, pauses=(3.0, 6.0, 9.0))
    assert "non_speech_s" not in aln.diagnostics
    assert not [w for w in aln.diagnostics["warnings"] if "holds no word" in w]
    assert np.median(err) < np.median(without_gap[1]) + 0.003
