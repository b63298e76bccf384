"""The Sphinx model's second opinion for one self-trained utterance
(vqalign.align.second_opinion): the per-boundary median, the segmentation start, the
Aligner's ``reference`` switch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vqalign.align import Aligner, prior
from vqalign.align import second_opinion as R
from vqalign.align.alignment import Alignment, Segment
from vqalign.exceptions import ParameterError


def _aln(words, phones, labels, wlabels=None, conf=0.9):
    wl = wlabels or [f"w{i}" for i in range(len(words))]
    return Alignment(tiers={"words": [Segment(a, b, w, conf) for (a, b), w in zip(words, wl)],
                            "phones": [Segment(a, b, p, conf) for (a, b), p in
                                       zip(phones, labels)]},
                     audio=None, sample_rate=16000, duration=10.0)


def _seeded_and_sphinx(labels):
    """The Sphinx-seeded and the Sphinx alignments of two words ("hi there") that the
    combination tests share (the Sphinx model spells the phones without stress)."""
    seeded = _aln([(0.14, 0.42), (0.46, 0.95)],
                  [(0.14, 0.26), (0.26, 0.42), (0.46, 0.58), (0.58, 0.85), (0.85, 0.95)],
                  labels)
    ref = _aln([(0.12, 0.38), (0.48, 0.92)],
               [(0.12, 0.22), (0.22, 0.38), (0.48, 0.62), (0.62, 0.70), (0.70, 0.92)],
               ["HH", "AY", "DH", "EH", "R"])
    return seeded, ref


def test_combine_takes_the_median_of_three_boundaries():
    labels = ["HH", "AY1", "DH", "EH1", "R"]
    flat = _aln([(0.10, 0.40), (0.50, 0.90)],
                [(0.10, 0.20), (0.20, 0.40), (0.50, 0.60), (0.60, 0.80), (0.80, 0.90)], labels)
    seeded, ref = _seeded_and_sphinx(labels)
    words, phones, spreads = R.combine(flat, seeded, ref)
    np.testing.assert_allclose(words, [[0.12, 0.40], [0.48, 0.92]])
    # inner phone boundaries: medians of (flat, seeded, sphinx)
    np.testing.assert_allclose(phones, [[0.12, 0.22], [0.22, 0.40], [0.48, 0.60],
                                        [0.60, 0.80], [0.80, 0.92]])
    np.testing.assert_allclose(spreads["words"], [[0.04, 0.04], [0.04, 0.05]])
    # a phone's spreads: its start's and its end's
    np.testing.assert_allclose(spreads["units"], [[0.04, 0.06], [0.06, 0.04], [0.04, 0.04],
                                                  [0.04, 0.15], [0.15, 0.05]])


def test_combine_with_the_prior_leaves_the_flat_start_out():
    labels = ["HH", "AY1", "DH", "EH1", "R"]
    flat = _aln([(0.0, 0.20), (0.70, 0.99)],      # far off: must not count
                [(0.0, 0.10), (0.10, 0.20), (0.70, 0.80), (0.80, 0.90), (0.90, 0.99)], labels)
    seeded, ref = _seeded_and_sphinx(labels)
    own = _aln([(0.10, 0.40), (0.50, 0.90)],
               [(0.10, 0.20), (0.20, 0.40), (0.50, 0.60), (0.60, 0.80), (0.80, 0.90)],
               ["HH", "AY1", "DH", "EH0", "R"])
    words, phones, spreads = R.combine(flat, seeded, ref, own)
    # the same medians as the flat start at the prior's times gives (the test above),
    # but for the last boundary, which is the prior's own (0.90, not the median 0.92)
    np.testing.assert_allclose(words, [[0.12, 0.40], [0.48, 0.90]])
    np.testing.assert_allclose(phones, [[0.12, 0.22], [0.22, 0.40], [0.48, 0.60],
                                        [0.60, 0.80], [0.80, 0.90]])
    np.testing.assert_allclose(spreads["words"], [[0.04, 0.04], [0.04, 0.05]])
    # the prior pronounces the second word otherwise: its inner phones are not used there
    other = _aln([(0.10, 0.40), (0.50, 0.90)],
                 [(0.10, 0.20), (0.20, 0.40), (0.50, 0.70), (0.70, 0.90)],
                 ["HH", "AY", "DH", "AA"])
    _, phones, _ = R.combine(flat, seeded, ref, other)
    np.testing.assert_allclose(phones[2:, 0], [0.48, 0.60, 0.775])  # mean of seeded, ref


def test_the_last_boundary_is_the_priors_even_against_two_later_ones():
    """The Sphinx model and the model seeded from its segmentation both let the last word
    take in a short trailing silence: two later ends do not outvote the prior's."""
    labels = ["HH", "AY1", "DH", "EH1", "R"]
    seeded, ref = _seeded_and_sphinx(labels)
    for a in (seeded, ref):
        a.tiers["words"][-1].end = a.tiers["phones"][-1].end = 1.10
    own = _aln([(0.10, 0.40), (0.50, 0.90)],
               [(0.10, 0.20), (0.20, 0.40), (0.50, 0.60), (0.60, 0.80), (0.80, 0.90)], labels)
    words, phones, _ = R.combine(own, seeded, ref, own)
    assert words[-1, 1] == pytest.approx(0.90) and phones[-1, 1] == pytest.approx(0.90)
    assert words[-1, 0] == pytest.approx(0.48)          # the other edges: still the median
    # without the prior (a flat start in the median) the median stands
    words, _, _ = R.combine(own, seeded, ref)
    assert words[-1, 1] == pytest.approx(1.10)
    # a prior's end before the word's median start cannot invert the word
    early = _aln([(0.10, 0.40), (0.41, 0.45)],
                 [(0.10, 0.20), (0.20, 0.40), (0.41, 0.42), (0.42, 0.43), (0.43, 0.45)], labels)
    words, phones, _ = R.combine(own, seeded, ref, early)
    assert words[-1, 1] > words[-1, 0] and np.all(np.diff(phones[2:].ravel()) >= -1e-12)


def test_combine_uses_the_two_self_trained_models_where_sphinx_pronounces_otherwise():
    labels = ["T", "AH0", "M"]
    flat = _aln([(0.0, 0.30)], [(0.0, 0.10), (0.10, 0.20), (0.20, 0.30)], labels)
    seeded = _aln([(0.0, 0.30)], [(0.0, 0.06), (0.06, 0.24), (0.24, 0.30)], labels)
    ref = _aln([(0.0, 0.30)], [(0.0, 0.15), (0.15, 0.30)], ["T", "M"])
    _, phones, _ = R.combine(flat, seeded, ref)
    np.testing.assert_allclose(phones, [[0.0, 0.08], [0.08, 0.22], [0.22, 0.30]])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_combined_boundaries_are_ordered_and_inside_their_words(n_words, seed):
    rng = np.random.default_rng(seed)
    n_ph = rng.integers(1, 5, n_words)
    labels = [f"P{k}" for k in range(int(n_ph.sum()))]

    def one():
        t, words, phones = 0.0, [], []
        for n in n_ph:
            t += rng.uniform(0, 0.2)
            a = t
            for _ in range(n):
                phones.append((t, t + rng.uniform(0.01, 0.2)))
                t = phones[-1][1]
            words.append((a, t))
        return _aln(words, phones, labels)

    words, phones, spreads = R.combine(one(), one(), one())
    assert np.all(words[:, 1] > words[:, 0])
    assert np.all(words[1:, 0] >= words[:-1, 1] - 1e-12)
    assert np.all(np.diff(phones.ravel()) >= -1e-12)
    i = 0
    for w, n in enumerate(n_ph):
        assert phones[i, 0] == pytest.approx(words[w, 0])
        assert phones[i + n - 1, 1] == pytest.approx(words[w, 1])
        dur = phones[i:i + n, 1] - phones[i:i + n, 0]
        assert np.all(dur >= min(R.MIN_PHONE_S, (words[w, 1] - words[w, 0]) / n) - 1e-9)
        i += n
    assert np.all(spreads["words"] >= 0) and np.all(spreads["units"] >= 0)


class _Sel:
    def __init__(self, best):
        self.idx = np.asarray(best)[:, None]


class _Model:
    """The attributes segmentation_start reads and writes."""

    def __init__(self, K):
        class G:
            n_components = K
        self.gmm_ = G()
        self.states_per_symbol = 3
        self.optional_silence = "sil"
        self.emit_index_ = {("sil", 0): 0, ("AA", 0): 1, ("AA", 1): 2, ("AA", 2): 3}
        self.weights_ = np.full((4, K), 1.0 / K, np.float32)
        self.self_loop_ = np.full(4, 0.6)
        self.weight_floor = 0.0


def test_segmentation_start_weights_come_from_each_third_of_the_phone():
    K = 4
    best = np.array([3, 3, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
    m = _Model(K)
    R.segmentation_start(m, [(2, 11, "AA")], _Sel(best))
    sp = (np.bincount(best[2:11], minlength=K) + 0.5)
    sp /= sp.sum()
    for j, g in enumerate((0, 1, 2)):   # the thirds hold Gaussians 0, 1, 2 only
        want = (1 - R.SEED_MIX) * np.eye(K)[g] + R.SEED_MIX * sp
        np.testing.assert_allclose(m.weights_[1 + j], want / want.sum(), rtol=1e-6)
        assert m.self_loop_[1 + j] == pytest.approx(1 - 1 / 3)
    sil = np.bincount(best[[0, 1, 11, 12]], minlength=K) + 0.5
    np.testing.assert_allclose(m.weights_[0], sil / sil.sum(), rtol=1e-6)


def test_reference_parameter_is_checked():
    with pytest.raises(ParameterError, match="reference="):
        Aligner(reference="yes").align(np.zeros(16000, np.float32), "hello", sr=16000)


def _utterance():
    from vqalign.datasets.synth import synthesize_corpus
    return synthesize_corpus(n=1, seed=3)[0]


def test_without_pocketsphinx_auto_takes_the_prior_and_sphinx_says_how(monkeypatch):
    u = _utterance()
    monkeypatch.setitem(R._SPHINX, "ok", False)
    monkeypatch.setitem(R._SPHINX, "warned", False)
    with pytest.warns(UserWarning, match=r"pocketsphinx is not installed.*pip install "
                                         r"pocketsphinx"):
        a = Aligner(reference="auto").align(u.audio, u.text, sr=u.sr)
    # the median of three with vqalign's own English prior in the Sphinx model's place
    ref = a.diagnostics["reference"]
    assert "vqalign English prior" in ref["method"] and set(ref["words"]) == {
        "flat", "seeded", "prior"}
    b = Aligner(reference="none").align(u.audio, u.text, sr=u.sr)
    assert [s.as_tuple() for s in a.words] == [s.as_tuple() for s in b.words]
    flat = Aligner(reference="flat").align(u.audio, u.text, sr=u.sr)
    assert "reference" not in flat.diagnostics
    with pytest.raises(ParameterError, match=r'needs pocketsphinx: pip install pocketsphinx'):
        Aligner(reference="sphinx").align(u.audio, u.text, sr=u.sr)


def test_combined_alignment_is_the_median_of_its_three_and_calibrated(monkeypatch):
    pytest.importorskip("pocketsphinx")
    from vqalign.align import refine

    # the median itself, before the pause-adjacent edges are moved (tests/test_refine.py)
    monkeypatch.setattr(refine, "ENABLED", False)
    u = _utterance()
    a = Aligner(reference="sphinx").align(u.audio, u.text, sr=u.sr)
    ref = a.diagnostics["reference"]
    assert isinstance(ref, dict) and a.diagnostics["confidence"]["mode"] == "combined"
    flat = Aligner(reference="flat").align(u.audio, u.text, sr=u.sr)
    np.testing.assert_allclose(ref["words"]["flat"],
                               [[round(s.start, 4), round(s.end, 4)] for s in flat.words])
    # vqalign's English prior takes the flat start's place in the median
    own = prior.prior_aligner(Aligner.load).align(u.audio, u.text, sr=u.sr)
    np.testing.assert_allclose(ref["words"]["prior"],
                               [[round(s.start, 4), round(s.end, 4)] for s in own.words])
    three = np.stack([np.array(ref["words"][k]) for k in ("prior", "seeded", "sphinx")])
    got = np.array([[s.start, s.end] for s in a.words])
    want = np.median(three, axis=0)
    want[-1, 1] = three[0, -1, 1]     # the last boundary is the prior's
    np.testing.assert_allclose(got, want, atol=1e-4)
    conf = np.array([s.confidence for s in a.words])
    assert np.all((conf >= 0) & (conf <= 1))
    # the combination is at least as close to the synthesizer's truth as the flat start
    truth = np.array([[s, e] for s, e, w in u.words if w.strip()])
    flat_w = np.array(ref["words"]["flat"])
    assert np.abs(got - truth).mean() <= np.abs(flat_w - truth).mean() + 0.005


def test_the_prior_does_not_vote_in_heavy_noise():
    pytest.importorskip("pocketsphinx")
    from vqalign.align.utterance import loudness_range_db
    from vqalign.features.frontend import frame_db

    u = _utterance()
    y = u.audio.astype(np.float64)
    noisy = y + np.sqrt(np.mean(y ** 2) / 10 ** 0.5) * np.random.default_rng(0).standard_normal(
        y.size)                                                   # white noise, 5 dB SNR
    db = frame_db(noisy)
    lo, hi = np.percentile(db, [10, 95])
    assert loudness_range_db(db) == pytest.approx(hi - lo)
    assert hi - lo < R.PRIOR_MIN_RANGE_DB
    assert loudness_range_db(frame_db(y)) > R.PRIOR_MIN_RANGE_DB
    a = Aligner(reference="sphinx").align(noisy.astype(np.float32), u.text, sr=u.sr)
    ref = a.diagnostics["reference"]
    assert set(ref["words"]) == {"flat", "seeded", "sphinx"} and "flat-start" in ref["method"]


# --------------------------------------------------------------------------- small corpora
@pytest.fixture(scope="module")
def small_corpus():
    from vqalign.datasets.synth import synthesize_corpus
    return synthesize_corpus(n=4, seed=5)


def test_corpus_alignments_are_the_median_with_the_prior_and_sphinx(small_corpus, tmp_path,
                                                                    monkeypatch):
    pytest.importorskip("pocketsphinx")
    from vqalign.align import refine

    monkeypatch.setattr(refine, "ENABLED", False)   # the median itself (test_refine.py)
    items = [(u.audio, u.sr, u.text) for u in small_corpus]
    al = Aligner(reference="sphinx").fit(items)
    assert "Sphinx segmentation" in al.history_.name      # corpus_start's seed
    assert al.train_seconds_ == pytest.approx(
        sum(len(u.audio) / u.sr for u in small_corpus), abs=2.0)
    out = al.align_many(items)
    for a, b in zip(out, al.alignments_):   # fit's own alignments are the same
        assert [s.as_tuple() for s in a.words] == [s.as_tuple() for s in b.words]
        ref = a.diagnostics["reference"]
        assert a.diagnostics["confidence"]["mode"] == "corpus-combined"
        assert "prior" in ref["method"] and set(ref["words"]) == {"corpus", "prior", "sphinx"}
        three = np.stack([np.array(ref["words"][k]) for k in ("corpus", "prior", "sphinx")])
        got = np.array([[s.start, s.end] for s in a.words])
        np.testing.assert_allclose(got, np.median(three, axis=0), atol=1e-4)
        c = np.array([s.confidence for s in a.words])
        assert np.all((c >= 0) & (c <= 1))
    # the corpus model alone (reference "flat" asks for no opinion): the median's first
    al.reference = "flat"
    plain = al.align_many(items)
    al.reference = "sphinx"
    for a, p in zip(out, plain):
        assert "reference" not in p.diagnostics
        np.testing.assert_allclose(a.diagnostics["reference"]["words"]["corpus"],
                                   [[round(s.start, 4), round(s.end, 4)] for s in p.words])
    # saved and loaded, and a model of a large corpus: the same median (two decodes, no
    # training: every corpus size gets it)
    back = Aligner.load(al.save(tmp_path / "m.npz"))
    back.train_seconds_ = 3600.0
    big = back.align_many(items[:1])[0]
    assert set(big.diagnostics["reference"]["words"]) == {"corpus", "prior", "sphinx"}
    assert [s.as_tuple() for s in big.words] == [s.as_tuple() for s in out[0].words]


def test_align_corpus_gives_the_small_corpus_the_second_opinion(small_corpus, tmp_path):
    pytest.importorskip("pocketsphinx")
    from vqalign.align.alignment import read_alignment
    from vqalign.cli import main
    from vqalign.datasets.synth import write_corpus

    write_corpus(small_corpus, tmp_path / "c")
    out = tmp_path / "o"
    assert main(["align-corpus", str(tmp_path / "c"), "--out", str(out), "--format", "json",
                 "--jobs", "1", "--quiet"]) == 0
    files = [out / f"{u.id}.json" for u in small_corpus]
    assert all(f.is_file() for f in files)
    for f in files:
        d = read_alignment(f).diagnostics
        assert set(d["reference"]["words"]) == {"corpus", "prior", "sphinx"}
        assert d["confidence"]["mode"] == "corpus-combined"
