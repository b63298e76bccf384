"""Alignment in noise: the Sphinx model's pause bias (vqalign.align.sphinx.PAUSE_BIAS) and
confidences lowered by the recording's estimated SNR (vqalign.align.confidence).

References: the synthesizer's exact word times; the definitions of the bias and of the
adjustment written out here.
"""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.align import confidence as C
from vqalign.datasets import synth
from vqalign.features import snr as S

SR = 16000


def _noisy(u, kind, snr_db, seed=0):
    """``u``'s audio with white noise or babble (three other synthesized voices) mixed in
    at ``snr_db`` (mean powers over the whole file)."""
    y = u.audio.astype(np.float64)
    rng = np.random.default_rng(seed)
    if kind == "white":
        n = rng.standard_normal(y.size)
    else:
        others = synth.synthesize_corpus(n=4, seed=seed + 11)[1:]
        n = np.zeros(y.size)
        for o in others:
            x = o.audio.astype(np.float64)
            x = x / np.sqrt(np.mean(x ** 2))
            n += x[(int(rng.integers(0, x.size)) + np.arange(y.size)) % x.size]
    g = np.sqrt(np.mean(y ** 2) / (np.mean(n ** 2) * 10 ** (snr_db / 10)))
    return (y + g * n).astype(np.float32)


def _word_errors(aln, u):
    truth = np.array([[s, e] for s, e, w in u.words if w.strip()])
    got = np.array([[s.start, s.end] for s in aln.tiers["words"]])
    return np.abs(got - truth)


@pytest.fixture(scope="module")
def sphinx():
    pytest.importorskip("pocketsphinx")
    from vqalign.align.sphinx import SphinxAligner

    return SphinxAligner("en-us")


def test_pause_bias_moves_only_the_fillers_by_the_local_snr(sphinx, monkeypatch):
    """The emission columns with the bias are those without it, plus the bias
    ``PAUSE_BIAS * clip((PAUSE_BIAS_SNR_DB - local SNR) / PAUSE_BIAS_SNR_DB, -1, 1)`` on the
    filler senones' columns only."""
    from vqalign.align import sphinx as SP

    u = synth.synthesize("the boat drifted down the river", seed=2)
    y = _noisy(u, "white", 10.0)
    seen = []
    orig = SP._Columns.ensure

    def spy(self, senones):
        before = self.le.shape[1]
        orig(self, senones)
        seen.append((self, before))

    monkeypatch.setattr(SP._Columns, "ensure", spy)
    sphinx.align(y, u.text, sr=SR, pause_bias=True)
    biased = [c for c, _ in seen if c.bias is not None][-1]
    T = biased.le.shape[0]
    fe = sphinx.front_end_
    loc = S.local_snr_db(y.astype(np.float64), np.arange(T) * fe.frame_shift
                         + fe.frame_size / 2.0)
    want = SP.PAUSE_BIAS * np.clip((SP.PAUSE_BIAS_SNR_DB - loc) / SP.PAUSE_BIAS_SNR_DB, -1, 1)
    np.testing.assert_allclose(biased.bias[0], want, atol=1e-5)
    assert want.min() < 0 < want.max()               # speech and pauses both present
    plain = SP._Columns(sphinx.emissions_, biased.top)
    senones = np.array(sorted(biased.col_of), np.int64)
    plain.ensure(senones)
    fillers = set(biased.bias[1].tolist())
    assert fillers & set(senones.tolist())
    for s in senones.tolist():
        a, b = biased.le[:, biased.col_of[s]], plain.le[:, plain.col_of[s]]
        ok = np.isfinite(a)
        np.testing.assert_array_equal(ok, np.isfinite(b))
        d = a[ok] - b[ok]
        np.testing.assert_allclose(d, want[ok] if s in fillers else 0.0, atol=1e-4)


@pytest.mark.parametrize(("kind", "mean_s"), [("white", 0.035), ("babble", 0.05)])
def test_noisy_synthesized_speech_is_aligned_near_the_truth(sphinx, kind, mean_s):
    """Two synthesized sentences in noise at 10 dB SNR (white noise denoised first, as
    the aligner does): the Sphinx model with its pause bias puts word boundaries within
    35 ms (white) or 50 ms (babble, whose talkers before the first word may be taken for
    it) of the synthesizer's times on average, half of them within 20 ms."""
    from vqalign.features import denoise

    errs = []
    for u in synth.synthesize_corpus(n=2, seed=21):
        y = _noisy(u, kind, 10.0, seed=3)
        if kind == "white":
            y = denoise.spectral_subtract(y)
            assert y is not None
        errs.append(_word_errors(sphinx.align(y, u.text, sr=SR, pause_bias=True), u))
    e = np.concatenate(errs)
    assert e.mean() < mean_s, e.mean()
    assert np.median(e) < 0.02, np.median(e)


def test_noise_adjustment_lowers_logits_by_the_snr_deficit():
    p = np.array([0.05, 0.5, 0.9, 0.999, np.nan])
    for snr in (None, C.NOISE_FROM_DB, 45.0, float("nan")):
        np.testing.assert_array_equal(C.noise_adjusted(p, snr), p)
    got = C.noise_adjusted(p, 10.0)
    z = np.log(p[:4] / (1 - p[:4])) - C.NOISE_SLOPE * (C.NOISE_FROM_DB - 10.0)
    np.testing.assert_allclose(got[:4], 1 / (1 + np.exp(-z)), rtol=1e-6)
    assert np.isnan(got[4])
    lower = C.noise_adjusted(p[:4], 0.0)
    assert np.all(lower < got[:4]) and np.all(got[:4] < p[:4])


def test_the_median_reports_the_snr_and_lowers_its_confidence_in_noise(monkeypatch):
    """The same three opinions merged for a clean and a noisy recording: the noisy one's
    confidences are the clean one's lowered by the adjustment, and both name the SNR."""
    pytest.importorskip("pocketsphinx")
    from vqalign.align import Aligner
    from vqalign.align import second_opinion as R

    u = synth.synthesize("a quiet evening by the lake", seed=4)
    got = {}
    orig = R.merge

    def spy(*a, **k):
        got["args"] = (a, k)
        return orig(*a, **k)

    monkeypatch.setattr(R, "merge", spy)
    clean = Aligner(reference="sphinx").align(u.audio, u.text, sr=u.sr)
    a, k = got["args"]
    assert k["snr_db"] > C.NOISE_FROM_DB
    assert clean.diagnostics["snr_db"] == pytest.approx(k["snr_db"], abs=0.05)
    noisy = orig(*a, **{**k, "snr_db": 5.0})
    c0 = np.array([s.confidence for s in clean.words])
    c1 = np.array([s.confidence for s in noisy.words])
    capped = c0 <= C.SILENT_CAP
    np.testing.assert_allclose(c1[~capped], C.noise_adjusted(c0[~capped], 5.0), atol=1e-4)
    assert noisy.diagnostics["snr_db"] == 5.0


def test_in_noise_the_sphinx_opinion_is_biased_and_the_seeds_are_not(monkeypatch):
    """A noisy recording (estimated SNR under PAUSE_BIAS_BELOW_DB): the Sphinx opinion
    in the median is its alignment with the pause bias, the seeded model's start the
    segmentation without it, and neither takes short pauses (nor is any word parted at a
    quiet stretch); a clean one: no biased alignment is made, short pauses are taken."""
    pytest.importorskip("pocketsphinx")
    from vqalign.align import Aligner
    from vqalign.align import second_opinion as R

    calls, shorts = [], []
    orig = R.sphinx_reference

    def spy(p, hop_s, *, pause_bias=False, short_pauses=False):
        out = orig(p, hop_s, pause_bias=pause_bias, short_pauses=short_pauses)
        calls.append((pause_bias, out))
        shorts.append(short_pauses)
        return out

    monkeypatch.setattr(R, "sphinx_reference", spy)
    u = synth.synthesize("the pilot checked the gauges before takeoff", seed=6)
    clean = Aligner(reference="sphinx").align(u.audio, u.text, sr=u.sr)
    assert [b for b, _ in calls] == [False]
    assert shorts == [True]            # short pauses (SHORT_PAUSE_SILPROB): clean only
    assert "pauses_split" in clean.diagnostics      # refine.split_at_pauses: clean only
    calls.clear()
    shorts.clear()
    y = _noisy(u, "babble", 5.0, seed=1)
    a = Aligner(reference="sphinx").align(y, u.text, sr=u.sr)
    assert a.diagnostics["snr_db"] < R.PAUSE_BIAS_BELOW_DB
    assert [b for b, _ in calls] == [False, True]
    assert shorts == [False, False] and "pauses_split" not in a.diagnostics
    biased = calls[1][1][0]
    np.testing.assert_allclose(a.diagnostics["reference"]["words"]["sphinx"],
                               [[s.start, s.end] for s in biased.tiers["words"]], atol=1e-4)
