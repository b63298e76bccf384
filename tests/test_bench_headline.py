"""The headline benchmark and calibration commands at a tiny size, each JSON field checked
against something computed here: our own librosa / hmmlearn / vqalign calls, our own
clock, and scikit-learn's logistic regression on the same features.

Timings are checked within a generous factor (the machine is shared); ratios are checked
both against the times the command itself reports and against our own timed calls.
"""

from __future__ import annotations

import json
import runpy
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.naive import word_errors_ms
from vqalign.cli import main
from vqalign.exceptions import ParameterError

#: how far a reported time or ratio may be from our own measurement of the same call
FACTOR = 5.0


def _median_s(fn, repeat=5):
    fn()                                    # warm-up, as the benchmarks do
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _within(reported, own, factor=FACTOR):
    return own / factor < reported < own * factor


def test_bench_features_fields_against_our_own_librosa_and_clock(capsys):
    librosa = pytest.importorskip("librosa", reason="librosa (optional peer) is not installed")
    from threadpoolctl import threadpool_limits

    from vqalign.datasets.synth import synthesize_corpus
    from vqalign.features import mfcc

    assert main(["bench", "features", "--seconds", "10", "--repeat", "5", "--no-peers",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["audio"].startswith("synthesized speech")   # not the fallback signal
    assert r["seconds_audio"] == 10.0 and r["sr"] == 16000
    # the ratios are the times it reports
    assert r["ratio_vs_librosa"] == pytest.approx(r["librosa_s"] / r["vqalign_s"], rel=1e-9)
    assert r["ratio_vs_librosa_1thread"] == pytest.approx(
        r["librosa_1thread_s"] / r["vqalign_1thread_s"], rel=1e-9)
    # the same audio built here (the synthesizer's first 10 s at seed 0) and the settings
    # it printed: our own librosa call gives the difference it reports
    s = r["settings"]
    y = np.concatenate([u.audio for u in synthesize_corpus(seconds=10.0, seed=0)])
    y = np.ascontiguousarray(y[:160000], dtype=np.float32)
    kw = dict(n_mfcc=s["n_mfcc"], n_mels=s["n_mels"], n_fft=s["n_fft"],
              win_length=s["win_length"], hop_length=s["hop_length"])
    ref = librosa.feature.mfcc(y=y, sr=16000, center=True, pad_mode="constant", **kw).T
    ours = mfcc(y, 16000, n_threads=1, **kw)
    assert r["max_abs_diff_vs_librosa"] == pytest.approx(float(np.abs(ours - ref).max()),
                                                         rel=1e-3, abs=1e-6)
    assert r["librosa_coef_range"] == pytest.approx(float(ref.max() - ref.min()), rel=1e-6)
    assert r["max_abs_diff_rel_range"] < 1e-3
    # single-thread times and their ratio against our own clock on the same calls
    vq1 = _median_s(lambda: mfcc(y, 16000, n_threads=1, **kw))
    with threadpool_limits(1):
        lib1 = _median_s(lambda: librosa.feature.mfcc(y=y, sr=16000, center=True,
                                                      pad_mode="constant", **kw))
    print("reported", r["vqalign_1thread_s"], r["librosa_1thread_s"], "own", vq1, lib1)
    assert _within(r["vqalign_1thread_s"], vq1) and _within(r["librosa_1thread_s"], lib1)
    assert _within(r["ratio_vs_librosa_1thread"], lib1 / vq1)


def test_bench_hmm_fields_against_our_own_hmmlearn_and_clock(capsys):
    hmmc = pytest.importorskip("hmmlearn._hmmc", reason="hmmlearn (optional peer) is not "
                               "installed")
    from vqalign.bench.hmm import make_problem
    from vqalign.hmm import forward_backward

    T, S = 3000, 100
    assert main(["bench", "hmm", "--T", str(T), "--S", str(S), "--repeat", "5", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["T"], r["S"], r["threads"]) == (T, S, 1)
    assert r["ratio"] == pytest.approx(r["hmmlearn_ns"] / r["vqalign_ns"], rel=1e-9)
    assert r["ratio_vs_reference"] == pytest.approx(r["reference_ns"] / r["vqalign_ns"],
                                                    rel=1e-9)
    # the same problem (its documented inputs), solved here by hmmlearn and by vqalign
    log_emit, topo, start, trans = make_problem(T, S, 0)
    frameprob = np.exp(log_emit - log_emit.max(axis=1, keepdims=True))

    def theirs():
        _, fwd, scaling = hmmc.forward_scaling(start, trans, frameprob)
        bwd = hmmc.backward_scaling(start, trans, frameprob, scaling)
        post = fwd * bwd
        return post / post.sum(axis=1, keepdims=True)

    def ours():
        return forward_backward(log_emit, topo, method="scaled", posteriors="states")[0]

    diff = float(np.abs(ours() - theirs()).max())
    assert diff < 1e-8
    assert r["max_abs_posterior_diff"] < 1e-8
    assert r["max_abs_posterior_diff"] == pytest.approx(diff, abs=1e-12)
    # its times (ns per frame*state) and ratio against our own clock
    import numba
    numba.set_num_threads(1)
    try:
        own_hl = _median_s(theirs) / (T * S) * 1e9
        own_vq = _median_s(ours) / (T * S) * 1e9
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    print("reported", r["vqalign_ns"], r["hmmlearn_ns"], "own", own_vq, own_hl)
    assert _within(r["hmmlearn_ns"], own_hl) and _within(r["vqalign_ns"], own_vq)
    assert _within(r["ratio"], own_hl / own_vq)


def test_calibrate_collect_and_fit_reproduce_sklearn(tmp_path, capsys):
    """``python -m vqalign.eval.calibrate collect`` on 4 built-in utterances (seed 11, single
    mode: 48 words, 2 beyond 50 ms, 21 beyond 20 ms), then ``fit --write-module``: the
    errors it stored equal our own scoring of our own alignments of the same utterances,
    and the written coefficients predict what scikit-learn's LogisticRegression (C=1,
    standardized features) fitted here predicts."""
    sklm = pytest.importorskip("sklearn.linear_model",
                               reason="scikit-learn (optional peer) is not installed")
    from vqalign.align import align
    from vqalign.datasets.synth import synthesize_corpus
    from vqalign.eval.calibrate import main as calibrate

    npz, mod = tmp_path / "s.npz", tmp_path / "coef.py"
    assert calibrate(["collect", "--synth", "4", "--seed", "11", "--mode", "single",
                      "--out", str(npz)]) == 0
    z = np.load(npz)
    X, err = z["words_X"], z["words_err_ms"]
    # our own alignments of the same utterances, scored by tests/naive.py
    own_err, own_X = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for u in synthesize_corpus(n=4, seed=11):
            a = align(u.audio, u.text, sr=u.sr, reference="flat")   # self-training alone
            e = word_errors_ms(a.tiers["words"], u.words)
            own_err.append(np.maximum(e[: e.size // 2], e[e.size // 2:]))
            own_X += a.diagnostics["confidence"]["word_features"]
    np.testing.assert_allclose(err, np.concatenate(own_err), atol=1e-6)
    np.testing.assert_allclose(X, np.array(own_X, float), rtol=1e-6, atol=1e-9)
    assert 0 < np.sum(err > 50) < err.size and 0 < np.sum(err > 20) < err.size

    assert calibrate(["fit", "--train", str(npz), "--write-module", str(mod)]) == 0
    capsys.readouterr()
    coefs = runpy.run_path(str(mod))["COEFFICIENTS"]
    ok = np.all(np.isfinite(X), axis=1)
    Xf = X[ok]
    Z = (Xf - Xf.mean(0)) / np.where(Xf.std(0) < 1e-9, 1.0, Xf.std(0))
    for tol in (20, 50):
        y = (err[ok] <= tol).astype(int)
        want = sklm.LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(Z, y)
        c = coefs[f"self_words_{tol}"]
        zc = c["intercept"] + ((Xf - np.asarray(c["mean"])) / np.asarray(c["scale"])) @ \
            np.asarray(c["coef"])
        np.testing.assert_allclose(1 / (1 + np.exp(-zc)), want.predict_proba(Z)[:, 1],
                                   atol=1e-3)
    # --update: the models --train refits are replaced, every other model is kept as it was
    shipped = Path(__file__).resolve().parents[1] / "vqalign/align/_confidence_coefficients.py"
    mod2 = tmp_path / "coef2.py"
    assert calibrate(["fit", "--train", str(npz), "--update", str(shipped),
                      "--write-module", str(mod2)]) == 0
    capsys.readouterr()
    new, old = runpy.run_path(str(mod2)), runpy.run_path(str(shipped))
    assert set(new["COEFFICIENTS"]) == set(old["COEFFICIENTS"])
    for key, c in new["COEFFICIENTS"].items():
        assert c == (coefs[key] if key.startswith("self_") else old["COEFFICIENTS"][key])
    kept = new["CALIBRATION"]["kept"]
    assert kept["command"] == old["CALIBRATION"]["command"] and "combined_words_50" in \
        kept["models"] and "self_words_50" not in kept["models"]


def test_calibrate_collect_needs_noise_and_snr_together(tmp_path):
    from vqalign.eval.calibrate import main as calibrate

    with pytest.raises(ParameterError, match=r"--noise and --snr go together"):
        calibrate(["collect", "--synth", "1", "--noise", "white", "--mode", "single",
                   "--out", str(tmp_path / "x.npz")])
    with pytest.raises(ParameterError, match=r"--noise and --snr go together"):
        calibrate(["collect", "--synth", "1", "--snr", "10", "--mode", "single",
                   "--out", str(tmp_path / "x.npz")])
    # with both, the utterances are aligned in that noise (the features differ from clean)
    clean, noisy = tmp_path / "c.npz", tmp_path / "n.npz"
    assert calibrate(["collect", "--synth", "1", "--mode", "single", "--out", str(clean)]) == 0
    assert calibrate(["collect", "--synth", "1", "--mode", "single", "--noise", "white",
                      "--snr", "5", "--out", str(noisy)]) == 0
    zc, zn = np.load(clean), np.load(noisy)
    assert "--noise white --snr 5" in str(zn["command"])
    assert zc["words_X"].shape == zn["words_X"].shape
    assert not np.allclose(zc["words_X"], zn["words_X"], equal_nan=True)
