"""Short pauses between words in the single-file median: the Sphinx opinion's fillers
inserted more readily (vqalign.align.second_opinion.SHORT_PAUSE_SILPROB) and kept only
where the audio is quiet (vqalign.align.refine.quiet_spans, PAUSE_GATE_SHARE).

References: the gate's rule written out on a signal whose quiet stretch is known; the
synthesizer's exact word times, with a short pause of known length spliced in.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

from vqalign.datasets import synth

SR = 16000


@pytest.fixture(scope="module")
def sphinx():
    pytest.importorskip("pocketsphinx")
    from vqalign.align.sphinx import SphinxAligner

    return SphinxAligner("en-us")


def test_the_gate_keeps_a_filler_over_quiet_audio_and_drops_one_over_loud(sphinx):
    """Loud noise with a quiet stretch at 1.00-1.20 s: of two fillers between words found
    by a first pass, the one on the stretch is kept and the one at 1.50-1.60 s is dropped;
    the fillers at the ends are kept whatever lies under them."""
    from vqalign.align import refine as RF

    rng = np.random.default_rng(0)
    y = rng.standard_normal(2 * SR)
    y[SR:SR + SR // 5] *= 1e-3                      # 40 dB down: 1.00-1.20 s
    T = 2 * SR // 160
    # a path over 7 states, optional ones (skippable) at 0, 2, 4, 6: fillers at positions
    # 0 (frames 0-9), 1 (frames 102-117, on the stretch), 2 (150-159, loud), 3 (190-199)
    skippable = np.zeros(7, bool)
    skippable[[0, 2, 4, 6]] = True
    path = np.full(T, 1)
    path[:10], path[102:118], path[150:160], path[190:] = 0, 2, 4, 6
    path[118:150], path[160:190] = 3, 5
    topo = types.SimpleNamespace(skippable=skippable)
    sil = sphinx.model_.mdef.sil
    got = sphinx._quiet_gaps([sil] * 4, path, topo, y.astype(np.float32), SR)
    assert got == [sil, sil, None, sil]
    # the rule: the median of the envelope over the filler's frames against the share
    from vqalign.align.refine import loudness_envelope

    db, t = loudness_envelope(y, SR)
    lo, hi = np.percentile(db, [5, 95])
    cut = lo + RF.PAUSE_GATE_SHARE * (hi - lo)
    off = sphinx.front_end_.boundary_offset_s
    for f0, f1, kept in ((102, 118, True), (150, 160, False)):
        m = (t >= f0 / 100 + off) & (t <= f1 / 100 + off)
        assert (np.median(db[m]) < cut) == kept


def _spliced(u, k, ms, level_db, seed=0):
    """``u``'s audio with ``ms`` of white noise at ``level_db`` under the speech's RMS
    (a breath, not digital silence) put after word ``k``; the words' true times."""
    n = int(round(ms / 1000 * u.sr))
    words = [w for w in u.words if w[2].strip()]
    i = int(round(words[k][1] * u.sr))
    rms = float(np.sqrt(np.mean(u.audio.astype(np.float64) ** 2)))
    gap = np.random.default_rng(seed).standard_normal(n) * rms * 10 ** (level_db / 20)
    y = np.concatenate([u.audio[:i], gap.astype(np.float32), u.audio[i:]])
    shift = n / u.sr
    truth = [(a, b) if j <= k else (a + shift, b + shift) for j, (a, b, _) in enumerate(words)]
    return y, np.array(truth)


def test_a_short_breath_pause_between_words_is_placed(monkeypatch):
    """A 50 ms breath (white noise 30 dB under the speech) between "many" and
    "villagers" of a synthesized sentence without pauses: the default single-file
    alignment ends "many" and starts "villagers" within 10 ms of the pause's edges. With
    pocketsphinx's silence probability and no gate (the Sphinx opinion before) the next
    word started over 40 ms early."""
    pytest.importorskip("pocketsphinx")
    from vqalign.align import Aligner
    from vqalign.align import refine as RF
    from vqalign.align import second_opinion as SO
    from vqalign.align import sphinx as SP

    u = synth.synthesize("many villagers were seen walking along the narrow lane", seed=2,
                         pause_prob=0.0)
    y, truth = _spliced(u, 0, 50, -30.0)

    def edges():
        SO._MEMO.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = Aligner().align(y, u.text, sr=u.sr)
        w = a.tiers["words"]
        return w[0].end - truth[0, 1], w[1].start - truth[1, 0]

    end, start = edges()
    print(f"pause edges: {1000 * end:+.1f} / {1000 * start:+.1f} ms")
    assert abs(end) < 0.010 and abs(start) < 0.010
    monkeypatch.setattr(SO, "SHORT_PAUSE_SILPROB", SP.SILPROB)
    monkeypatch.setattr(RF, "PAUSE_GATE_SHARE", np.inf)
    monkeypatch.setattr(SO, "split_at_pauses", lambda aln, *a: aln)
    _, before = edges()
    print(f"without: next word starts {1000 * before:+.1f} ms")
    assert before < -0.040


def test_no_pause_is_put_into_speech_without_one(sphinx, monkeypatch):
    """A synthesized sentence without pauses: the Sphinx aligner with the median's
    ``pause_silprob`` leaves no gap between any two words; without the gate the higher
    silence probability puts one after the first word (so the gate is what keeps it
    out)."""
    from vqalign.align import refine as RF
    from vqalign.align.second_opinion import SHORT_PAUSE_SILPROB

    u = synth.synthesize("the children laughed as the puppy chased its own tail", seed=4,
                         voice="dana", pause_prob=0.0)
    truth = np.array([(a, b) for a, b, w in u.words if w.strip()])
    assert np.all(truth[1:, 0] - truth[:-1, 1] < 1e-9)

    def gaps():
        aln = sphinx.align(u.audio, u.text, sr=u.sr, pause_silprob=SHORT_PAUSE_SILPROB)
        w = aln.tiers["words"]
        return [k for k in range(len(w) - 1) if w[k + 1].start - w[k].end > 1e-6]

    assert gaps() == []
    monkeypatch.setattr(RF, "PAUSE_GATE_SHARE", np.inf)
    assert gaps() == [0]
