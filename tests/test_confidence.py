"""Calibrated confidence (vqalign.align.confidence): the boundary-posterior kernel against a
dense forward-backward reference, the AUC and calibration on synthesized speech against
the synthesizer's exact timings, words over silence, JSON round trip, metric helpers."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from vqalign.align import Aligner, align
from vqalign.align import confidence as C
from vqalign.align.alignment import Alignment, read_alignment
from vqalign.datasets import synth
from vqalign.eval.reliability import (
    confidence_scores,
    reliability_curve,
    roc_auc,
    segment_errors,
)
from vqalign.exceptions import ParameterError
from vqalign.hmm import TiedMixtureHMM

SEED = 7


# ----------------------------------------------------------------------------- metrics
def test_roc_auc_matches_pairwise_count(rng):
    s = rng.normal(size=60).round(1)          # ties on purpose
    y = rng.random(60) < 0.3
    pos, neg = s[y], s[~y]
    ref = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(s, y) == pytest.approx(ref)
    sk = pytest.importorskip("sklearn.metrics")
    assert roc_auc(s, y) == pytest.approx(sk.roc_auc_score(y, s))
    assert math.isnan(roc_auc(s, np.zeros(60, bool)))
    with pytest.raises(ParameterError, match="NaN"):
        roc_auc([0.1, np.nan], [True, False])


def test_reliability_curve_bins():
    p = np.array([0.05, 0.15, 0.12, 0.95, 0.91])
    o = np.array([0, 1, 0, 1, 1])
    curve = reliability_curve(p, o, n_bins=10)
    assert [b["n"] for b in curve] == [1, 2, 2]
    assert curve[1]["observed"] == 0.5 and curve[1]["mean_predicted"] == pytest.approx(0.135)
    sc = confidence_scores(p, np.array([0.1, 0.01, 0.1, 0.0, 0.04]), tol_s=0.05)
    assert sc["n"] == 5 and sc["bad_share"] == pytest.approx(0.4) and sc["auc"] == 1.0


def test_segment_errors_pairs_by_label():
    ref = [(0.0, 0.2, ""), (0.2, 0.5, "hello"), (0.5, 0.9, "world")]
    hyp = [(0.21, 0.48, "hello"), (0.48, 0.99, "world")]
    e = segment_errors(hyp, ref)
    assert e == pytest.approx([0.02, 0.09])
    assert np.isinf(segment_errors([(0.0, 0.1, "other")], ref)).all()


# ----------------------------------------------------------------------------- kernel
def _naive_boundary_mass(log_e_states, trans, start, end, first, last, v_start, v_end, w):
    """Dense log-space forward-backward (plain numpy) on one chain; the boundary frame of
    a left-to-right chain has CDF P(state at frame f >= first state) (starts) and
    P(state at f > last state) (ends), read off the state posteriors."""
    T, S = log_e_states.shape
    with np.errstate(divide="ignore"):
        lt = np.full((S, S), -np.inf)
        for s in range(S):
            for d in range(3):
                if s + d < S:
                    lt[s, s + d] = np.log(trans[s, d])
        ls, le = np.log(start), np.log(end)
    la = np.full((T, S), -np.inf)
    lb = np.full((T, S), -np.inf)
    la[0] = ls + log_e_states[0]
    for t in range(1, T):
        la[t] = np.logaddexp.reduce(la[t - 1][:, None] + lt, axis=0) + log_e_states[t]
    lb[T - 1] = le
    for t in range(T - 2, -1, -1):
        lb[t] = np.logaddexp.reduce(lt + (log_e_states[t + 1] + lb[t + 1])[None, :], axis=1)
    ll = np.logaddexp.reduce(la[T - 1] + le)
    post = np.exp(la + lb - ll)

    def cdf_start(k, f):
        if f < 0:
            return 0.0
        if f >= T:
            return 1.0
        return post[f, first[k]:].sum()

    def cdf_end(k, f):
        if f >= T:
            return 1.0
        if f < 0:
            return 0.0
        return post[f, last[k] + 1:].sum()

    out = np.zeros((len(first), 2))
    for k in range(len(first)):
        out[k, 0] = cdf_start(k, v_start[k] + w) - cdf_start(k, v_start[k] - w - 1)
        out[k, 1] = cdf_end(k, v_end[k] + w) - cdf_end(k, v_end[k] - w - 1)
    return out


@pytest.mark.parametrize("kappa", [1.0, 0.1])
def test_boundary_posteriors_match_dense_reference(rng, kappa):
    """Kernel (corridor wide enough to hold every state) == dense reference; a long
    utterance cut into overlapping pinned jobs stays close to the whole-chain result."""
    D, T = 4, 90
    words = [["a", "b"], ["c"], ["a", "d"]]
    centres = {"sil": 0.0, "a": 3.0, "b": -3.0, "c": 6.0, "d": -6.0}
    seq = ["sil"] * 10 + ["a"] * 12 + ["b"] * 14 + ["sil"] * 8 + ["c"] * 15 + ["a"] * 12 \
        + ["d"] * 12 + ["sil"] * 7
    X = (np.array([centres[s] for s in seq])[:, None] + rng.normal(size=(T, D))).astype(
        np.float32)
    model = TiedMixtureHMM(n_components=6, states_per_symbol=2, optional_silence="sil",
                           n_iter=4, random_state=0, top_n=4)
    model.fit([(X, words)], quiet=[np.array([s == "sil" for s in seq])])
    batch = model.batch([words])
    offs = np.array([0, T], np.int64)
    sel = model.select(X)
    path, _, status, _ = model.viterbi_batch(X, offs, batch, sel)
    assert status[0] == 0
    hop = 0.01
    stats, unit_off, vit, ok = C.boundary_stats(model, batch, path, offs, sel, hop,
                                                corridor=batch.n_states, kappa=kappa)
    assert ok.all()
    # the reference, from the definitions: tied emissions ** kappa, dense chain
    W = model.weights_.astype(np.float64)
    em = np.stack([(W[c][sel.idx] * sel.eg).sum(1) for c in batch.emit_ids], axis=1)
    trans, start, end = model.transitions(batch)
    ui = batch.unit_index
    first = [int(np.flatnonzero(ui == k)[0]) for k in range(unit_off[1])]
    last = [int(np.flatnonzero(ui == k)[-1]) for k in range(unit_off[1])]
    for j, tol in enumerate(C.TOLERANCES):
        w = int(math.floor(tol / hop + 1e-9))
        ref = _naive_boundary_mass(kappa * np.log(em), trans, start, end, first, last,
                                   vit[:, 0], vit[:, 1], w)
        np.testing.assert_allclose(stats[:, :, 3 + j], ref, atol=1e-9)
    np.testing.assert_allclose(stats[:, :, 0], 1.0, atol=1e-9)
    # overlapping jobs pinned at the cuts: each boundary from the job it is central in
    cut, _, _, ok2 = C.boundary_stats(model, batch, path, offs, sel, hop,
                                      corridor=batch.n_states, kappa=kappa, max_job=40,
                                      overlap=20)
    assert ok2.all()
    np.testing.assert_allclose(cut[:, :, 3:], stats[:, :, 3:], atol=0.02)


# ----------------------------------------------------------------------------- on speech
@pytest.fixture(scope="module")
def single_set():
    """Built-in synthesized utterances, each self-trained alone (with the Sphinx model's
    second opinion where pocketsphinx is installed), scored against the synthesizer's
    exact times, as the aligner gives them (pause-adjacent edges moved by
    vqalign.align.refine, on which the coefficients were fitted). Sixteen: the first
    eight alone hold 94 words of which 14 are beyond 20 ms, too few for the AUC to mean
    much (0.58 on them, 0.76 on the sixteen)."""
    utts = synth.synthesize_corpus(16, seed=SEED)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for u in utts:
            out.append((u, align(u.audio, u.text, sr=u.sr)))
    return out


def test_confidences_are_probabilities_and_documented(single_set):
    for _, a in single_set:
        for tier in ("words", "phones"):
            c = np.array([s.confidence for s in a.tiers[tier]])
            assert np.all((c >= 0) & (c <= 1)), (tier, c)
        block = a.diagnostics["confidence"]
        c20 = np.array(block["words_20ms"], float)
        assert np.all((c20 >= 0) & (c20 <= 1))
        assert block["features"] == list(C.FEATURES) and block["mode"] in ("self", "combined")
        assert len(block["word_features"]) == len(a.words)
        if block["mode"] == "combined":  # the Sphinx model's second opinion (pocketsphinx)
            from vqalign.align.second_opinion import COMBINED_FEATURES
            assert block["combined_features"] == list(COMBINED_FEATURES)
            assert len(block["combined_word_features"]) == len(a.words)
        assert "50 ms" in block["meaning"] and block["calibration"].startswith("python -m")


def test_auc_and_calibration_on_synthesized_speech(single_set):
    """AUC for flagging words whose boundaries are off by more than 20 ms (and 50 ms where
    there are such words), against the synthesizer's truth, on utterances the
    coefficients were not fitted on (seed 7; calibration used seeds 11 to 15 and devdata's
    synthetic set; the seeds share the texts and voice names, not the synthesis). Measured
    here: 20 ms AUC 0.76 with 19 % of the words beyond (50 ms: 4 %, AUC 0.95); the
    thresholds leave margin."""
    c50, c20, err = [], [], []
    for u, a in single_set:
        c50.append([s.confidence for s in a.words])
        c20.append(a.diagnostics["confidence"]["words_20ms"])
        err.append(segment_errors(a.tier("words"), u.words))
    err = np.concatenate(err)
    s20 = confidence_scores(np.concatenate(c20).astype(float), err, tol_s=0.02, n_bins=2)
    s50 = confidence_scores(np.concatenate(c50), err, tol_s=0.05, n_bins=2)
    print("single-utterance AUC 20 ms", s20["auc"], s20["bad_share"], s20["reliability"],
          "50 ms", s50["auc"], s50["bad_share"])
    assert 0.1 < s20["bad_share"] < 0.9        # both classes present: the AUC means something
    assert s20["auc"] > 0.62
    # calibrated: the confident half is right more often than the rest, and the mean
    # probability is close to the share of words within the tolerance
    lo, hi = s20["reliability"][0], s20["reliability"][-1]
    assert hi["observed"] > lo["observed"]
    for sc, c in ((s20, c20), (s50, c50)):
        assert abs(np.mean(np.concatenate(c).astype(float)) - (1 - sc["bad_share"])) < 0.15


def test_auc_at_50ms_on_noisy_synthesized_speech():
    """The 50 ms confidence must rank the words that are really off: clean synthesized
    speech has too few of them (1 of 94), so 4 utterances of the same held-out seed get
    white noise at 5 dB SNR (noise seeds 0-3). Measured: 12 of 48 words beyond 50 ms,
    AUC 0.90; required: at least 3 beyond and AUC > 0.75."""
    utts = synth.synthesize_corpus(8, seed=SEED)[:4]
    c50, err = [], []
    for i, u in enumerate(utts):
        noise = np.random.default_rng(i).standard_normal(u.audio.size)
        y = u.audio + np.sqrt(np.mean(u.audio ** 2) / 10 ** 0.5) * noise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = align(y.astype(np.float32), u.text, sr=u.sr)
        c50.append([s.confidence for s in a.words])
        err.append(segment_errors(a.tier("words"), u.words))
    s50 = confidence_scores(np.concatenate(c50), np.concatenate(err), tol_s=0.05, n_bins=2)
    print("5 dB SNR, 50 ms:", s50["n"], "words", s50["bad_share"], "beyond, AUC", s50["auc"])
    assert round(s50["bad_share"] * s50["n"]) >= 3
    assert s50["auc"] > 0.75


def test_calibrated_model_is_monotone_in_its_main_cues():
    """More boundary posterior mass near the aligned boundary, or a word (and its
    neighbours) fitting its phone classes better, never lowers the probability (the class
    cues move together: they are correlated, so one coefficient alone may be negative)."""
    base = np.zeros((1, len(C.FEATURES)))
    for mode in ("self", "corpus"):
        coef = C.COEFFICIENTS[f"{mode}_words_50"]
        base[0] = coef["mean"]
        p0 = C.predict(base, "words", 50, mode)[0]
        for names in (("logit_p50_start",), ("logit_p50_end",),
                      ("cls_mean", "cls_min", "nb_cls_min")):
            x = base.copy()
            for name in names:
                x[0, C.FEATURES.index(name)] += 2 * coef["scale"][C.FEATURES.index(name)]
            assert C.predict(x, "words", 50, mode)[0] >= p0 - 1e-3, (mode, names)


def test_word_over_silence_gets_low_confidence_and_a_warning():
    """Words the audio lacks, in a transcript of two sentences with 1.5 s of near-silence
    between them: whatever the aligner puts over the silence (found from the samples
    alone: 10 ms frames no louder than 3x the gap's noise) gets <= 0.1 and a warning
    with its span."""
    a1 = synth.synthesize("the old fisherman mended his nets", seed=3)
    a2 = synth.synthesize("she sells sea shells", seed=4)
    level = float(np.std(a1.audio[:400]))           # the synthesizer's own pause noise
    rng = np.random.default_rng(0)
    gap = (level * rng.standard_normal(int(1.5 * a1.sr))).astype(np.float32)
    y = np.concatenate([a1.audio, gap, a2.audio])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = align(y, a1.text + " before dawn today " + a2.text, sr=a1.sr)
    hop = a1.sr // 100
    n = y.size // hop
    rms = np.sqrt(np.mean(y[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    quiet = rms <= 3 * level
    over = []
    for s in a.words:
        f0, f1 = int(s.start * 100), max(int(s.start * 100) + 1, int(s.end * 100))
        if np.mean(quiet[f0:f1]) >= 0.8:
            over.append(s)
    assert over, [(s.label, s.start, s.end) for s in a.words]
    for s in over:
        assert s.confidence <= 0.1, s
        assert any(f"{s.label!r} at {s.start:.2f}-{s.end:.2f} s lies over near-silence" in m
                   for m in a.warnings), a.warnings


def test_json_round_trip_keeps_confidence(single_set, tmp_path):
    _, a = single_set[0]
    p = a.write(tmp_path / "a.json")
    d = json.loads(p.read_text())
    assert d["tiers"]["words"][0][3] == pytest.approx(a.words[0].confidence, abs=1e-6)
    assert d["diagnostics"]["confidence"]["words_20ms"][0] == pytest.approx(
        a.diagnostics["confidence"]["words_20ms"][0], abs=1e-4)
    b = read_alignment(p)
    assert [s.confidence for s in b.words] == pytest.approx([s.confidence for s in a.words],
                                                            abs=1e-6)
    assert Alignment.from_dict(b.to_dict()).to_dict() == b.to_dict()


def test_low_confidence_words_are_warned(single_set):
    import copy

    from vqalign.align.alignment import add_quality_warnings

    n_low = 0
    for _, a in single_set:
        low = [s for s in a.words if s.confidence < 0.5]
        n_low += len(low)
        for s in low[:10]:
            assert any(f"{s.label!r} at {s.start:.3f}-{s.end:.3f} s has low confidence" in m
                       for m in a.warnings)
    # these utterances may all be aligned well: one word made doubtful is warned too
    b = copy.deepcopy(single_set[0][1])
    s = b.words[1]
    s.confidence = 0.3
    b.diagnostics["warnings"] = []
    add_quality_warnings(b)
    assert any(f"{s.label!r} at {s.start:.3f}-{s.end:.3f} s has low confidence" in m
               for m in b.warnings)
    print("low-confidence words in the set:", n_low)


def test_corpus_mode_has_its_own_model_and_batched_features_match(monkeypatch):
    """Corpus mode uses its own coefficients; the batched features of a whole batch equal
    the per-utterance reference (utterance_features) on every utterance."""
    utts = synth.synthesize_corpus(4, seed=SEED + 1)
    calls = []
    real = C.alignment_confidence

    def spy(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    from vqalign.align import decode as D  # decoding calls it from there
    monkeypatch.setattr(D, "alignment_confidence", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the corpus model's own confidences (a small corpus otherwise gets the Sphinx
        # model's second opinion, tests/test_reference.py)
        al = Aligner(n_iter=4, reference="flat").fit([(u.audio, u.sr, u.text) for u in utts])
    a = al.alignments_[0]
    assert a.diagnostics["confidence"]["mode"] == "corpus"
    c = np.array([s.confidence for s in a.words])
    assert np.all((c >= 0) & (c <= 1))
    model, batch, path, offs, sel, fr, energies, X, hop, mode = calls[-1]
    assert mode == "corpus"
    assert batch.n_utterances == 4
    res = real(*calls[-1])
    stats, unit_off, vit, ok = C.boundary_stats(model, batch, path, offs, sel, hop)
    trans, _, _ = model.transitions(batch)
    for u in range(4):
        a0, b0 = offs[u], offs[u + 1]
        ka, kb = unit_off[u], unit_off[u + 1]
        wou = np.array([w for w, _ in batch.units[u]])
        Xu, Xw, _ = C.utterance_features(stats[ka:kb], vit[ka:kb] - a0, batch, u, fr[a0:b0],
                                         energies[u], X[a0:b0], trans, hop, wou.max() + 1, wou)
        np.testing.assert_allclose(res[u]["features"]["units"], Xu, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(res[u]["features"]["words"], Xw, rtol=1e-7, atol=1e-7)
        assert len(al.alignments_[u].words) == Xw.shape[0]


def test_bench_align_reports_confidence(monkeypatch, tmp_path, capsys):
    import vqalign.bench.align as bench_align
    from vqalign.cli import main

    monkeypatch.setattr(bench_align, "DEFAULT_CORPUS", tmp_path / "no-such-devdata")
    assert main(["bench", "align", "--no-pocketsphinx", "--peers", "", "--synth", "3",
                 "--jobs", "1", "--n-iter", "3", "--json", "--single", "1"]) == 0
    d = json.loads(capsys.readouterr().out)
    conf = d["vqalign_confidence"]
    assert set(conf) == {"words_50ms", "words_20ms", "phones_50ms", "phones_20ms"}
    n_words = d["systems"]["vqalign"]["words"]["n_boundaries"] // 2
    assert conf["words_50ms"]["n"] == n_words
    assert sum(b["n"] for b in d["vqalign_conf_reliability"]) == n_words
    for b in d["vqalign_conf_reliability"]:
        assert b["bin"][0] <= b["mean_predicted"] <= b["bin"][1] and 0 <= b["observed"] <= 1
    assert "vqalign_conf_auc_50ms" in d and "vqalign_single_conf_auc_50ms" in d
    assert d["vqalign_single_n_utts"] == 1


def test_spectral_flux_by_blocks_is_the_whole_recordings():
    from vqalign.align.confidence import _flux
    rng = np.random.default_rng(5)
    for T in (0, 1, 2, 3, 100, 1001):
        X = rng.normal(size=(T, 39)).astype(np.float32)
        C = X[:, :13].astype(np.float64)
        d = np.zeros(T)
        d[1:] = np.sqrt(((C[1:] - C[:-1]) ** 2).sum(axis=1))   # every frame at once
        want = d / max(np.median(d[1:]), 1e-9) if T > 1 else d
        for block in (1, 2, 7, 1 << 16):
            np.testing.assert_allclose(_flux(X, block), want, rtol=1e-12, atol=0)
            np.testing.assert_array_equal(_flux(X, block), _flux(X, T + 1))


def test_per_frame_passes_block_by_block_equal_the_whole_array_formulas():
    # a long recording's confidences run block by block (confidence._ROWS rows): the same
    # numbers as the whole-array formulas, bit for bit, across several blocks
    from vqalign.align import confidence as C
    rng = np.random.default_rng(3)
    N = 2 * C._ROWS + 77
    X = rng.standard_normal((N, 39)).astype(np.float32)
    c = np.asarray(X[:, :13], np.float64)
    d = np.zeros(N)
    d[1:] = np.sqrt(np.sum(np.diff(c, axis=0) ** 2, axis=1))
    np.testing.assert_array_equal(C._frame_distance(X, N), d)
    A = np.asarray(C.CLASS_MODEL["coef"], np.float32)
    z = X @ A.T + np.asarray(C.CLASS_MODEL["intercept"], np.float32)
    z = z - z.max(axis=1, keepdims=True)
    logp = (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float64)
    ref = np.concatenate([np.zeros((1, logp.shape[1])), np.cumsum(logp, axis=0)])
    labels = ["AA", "S", "B"] * 5
    a = np.arange(15, dtype=np.int64) * (N // 16)
    _, got, _ = C._class_fit(labels, X, a, a + 40)
    np.testing.assert_array_equal(got, ref)
