"""MFCC vs librosa and kaldi-native-fbank, deltas vs a naive loop, CMVN vs numpy, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.exceptions import ParameterError
from vqalign.features import cmvn, delta, mfcc, n_frames


def _speechlike(rng, seconds=2.0, sr=16000):
    """Voiced bursts (harmonics with a moving pitch), noise bursts and pauses."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    gate = (np.sin(2 * np.pi * 1.3 * t) > -0.2).astype(float)
    noise = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 0.9 * t + 1.0) > 0.6)
    y = 0.2 * voiced * gate + 0.05 * noise + 1e-4 * rng.standard_normal(t.size)
    y[int(0.3 * sr):int(0.5 * sr)] = 0.0          # a digital-silence pause
    return y.astype(np.float32)


@pytest.mark.parametrize("kw", [
    dict(sr=16000),
    dict(sr=16000, n_mfcc=20, n_mels=64, fmax=7600.0),
    dict(sr=16000, n_mfcc=13, n_mels=26, fmin=60.0, win_length=0.032, hop_length=0.005,
         n_fft=1024),
    dict(sr=22050, n_mfcc=40, n_mels=40),
    dict(sr=8000, win_length=200, hop_length=80, n_fft=256, n_mels=24, n_mfcc=12),
    dict(sr=16000, center=False),
])
def test_mfcc_matches_librosa(rng, kw):
    librosa = pytest.importorskip("librosa")
    sr = kw["sr"]
    y = _speechlike(rng, 1.7, sr)
    ours = mfcc(y, **kw)
    win = kw.get("win_length", 0.025)
    hop = kw.get("hop_length", 0.010)
    win = win if isinstance(win, int) else int(round(win * sr))
    hop = hop if isinstance(hop, int) else int(round(hop * sr))
    n_fft = kw.get("n_fft", 1 << (win - 1).bit_length())
    ref = librosa.feature.mfcc(
        y=y, sr=sr, n_mfcc=kw.get("n_mfcc", 13), n_fft=n_fft, hop_length=hop, win_length=win,
        n_mels=kw.get("n_mels", 40), fmin=kw.get("fmin", 0.0), fmax=kw.get("fmax"),
        center=kw.get("center", True), pad_mode="constant").T
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    assert ours.shape[0] == n_frames(y.size, sr, win_length=kw.get("win_length", 0.025),
                                     hop_length=kw.get("hop_length", 0.010),
                                     n_fft=kw.get("n_fft"), center=kw.get("center"))
    span = ref.max() - ref.min()
    assert np.abs(ours - ref).max() <= 1e-3 * span


def test_mfcc_librosa_lifter_and_threads(rng):
    librosa = pytest.importorskip("librosa")
    y = _speechlike(rng, 3.0)
    ref = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=512, hop_length=160,
                               win_length=400, n_mels=40, lifter=22, pad_mode="constant").T
    for threads in (1, 2):
        ours = mfcc(y, 16000, lifter=22, n_threads=threads)
        assert np.abs(ours - ref).max() <= 1e-3 * (ref.max() - ref.min())


def _knf_mfcc(y, sr, **opts):
    knf = pytest.importorskip("kaldi_native_fbank")
    o = knf.MfccOptions()
    o.frame_opts.dither = 0.0
    o.frame_opts.samp_freq = sr
    for k, v in opts.items():
        if k in ("num_bins", "low_freq", "high_freq"):
            setattr(o.mel_opts, k, v)
        elif k in ("frame_shift_ms", "frame_length_ms", "preemph_coeff"):
            setattr(o.frame_opts, k, v)
        else:
            setattr(o, k, v)
    m = knf.OnlineMfcc(o)
    m.accept_waveform(sr, (y * 32768.0).tolist())
    m.input_finished()
    return np.array([m.get_frame(i) for i in range(m.num_frames_ready)], dtype=np.float32)


@pytest.mark.parametrize("ours_kw, knf_kw", [
    ({}, {}),
    (dict(n_mels=40, n_mfcc=20, fmin=64.0, fmax=7000.0, lifter=0),
     dict(num_bins=40, num_ceps=20, low_freq=64.0, high_freq=7000.0, cepstral_lifter=0.0)),
    (dict(use_energy=False, preemphasis=0.0, hop_length=0.0125),
     dict(use_energy=False, preemph_coeff=0.0, frame_shift_ms=12.5)),
])
def test_mfcc_matches_kaldi_native_fbank(rng, ours_kw, knf_kw):
    y = _speechlike(rng, 2.0)
    ref = _knf_mfcc(y, 16000, **knf_kw)
    ours = mfcc(y, 16000, convention="kaldi", **ours_kw)
    assert ours.shape == ref.shape
    assert np.all(np.abs(ours - ref) <= 5e-3 * (1.0 + np.abs(ref)))


def test_kaldi_waveform_scale_only_shifts_logs(rng):
    y = _speechlike(rng, 1.0)
    a = mfcc(y, convention="kaldi", lifter=0)
    b = mfcc(y, convention="kaldi", lifter=0, waveform_scale=1.0)
    # log energies shift by 2 ln(32768); the other cepstra are unchanged where no floor bites
    live = b[:, 0] > -10.0          # frames in the digital-silence pause sit on the floor
    assert 50 < live.sum() < len(b)
    np.testing.assert_allclose(a[live, 0] - b[live, 0], 2 * np.log(32768.0), atol=1e-3)


def _naive_delta(c, width):
    T = c.shape[0]
    out = np.zeros_like(c, dtype=np.float64)
    denom = 2 * sum(n * n for n in range(1, width + 1))
    for t in range(T):
        for n in range(1, width + 1):
            out[t] += n * (c[min(t + n, T - 1)] - c[max(t - n, 0)])
    return out / denom


@pytest.mark.parametrize("order, width", [(0, 2), (1, 1), (2, 2), (3, 3)])
def test_delta_matches_naive_loop(rng, order, width):
    X = rng.standard_normal((57, 5)).astype(np.float32)
    out = delta(X, order=order, width=width)
    assert out.shape == (57, 5 * (order + 1)) and out.dtype == np.float32
    expect = [X.astype(np.float64)]
    for _ in range(order):
        expect.append(_naive_delta(expect[-1], width))
    np.testing.assert_allclose(out, np.hstack(expect), rtol=1e-5, atol=1e-5)


def test_delta_short_input(rng):
    X = rng.standard_normal((1, 3)).astype(np.float32)
    np.testing.assert_array_equal(delta(X)[:, 3:], 0.0)


def test_cmvn_utterance_matches_numpy(rng):
    X = (rng.standard_normal((300, 13)) * 4 + 7).astype(np.float32)
    out = cmvn(X)
    ref = (X - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    out = cmvn(X, variance=False)
    np.testing.assert_allclose(out, X - X.mean(0), atol=1e-4)


def test_cmvn_in_place_is_the_copying_result_without_a_copy(rng):
    X = (rng.standard_normal((300, 13)) * 4 + 7).astype(np.float32)
    want = cmvn(X)
    got = cmvn(X, in_place=True)
    assert got is X
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ParameterError, match=r"in_place=True\) needs window=None"):
        cmvn(X, window=50, in_place=True)
    with pytest.raises(ParameterError, match="float32 C-contiguous"):
        cmvn(X.astype(np.float64), in_place=True)


@pytest.mark.parametrize("window", [1, 5, 50, 51, 299, 300, 1000])
def test_cmvn_sliding_matches_naive(rng, window):
    X = (rng.standard_normal((300, 4)) * 3 + 5).astype(np.float64)
    X[:, 1] += np.linspace(0, 20, 300)        # a drift the window should follow
    out = cmvn(X.astype(np.float32), window=window)
    T = X.shape[0]
    ref = np.empty_like(X)
    for t in range(T):
        w = min(window, T)
        s = min(max(t - window // 2, 0), T - w)
        seg = X[s:s + w]
        sd = seg.std(0)
        ref[t] = (X[t] - seg.mean(0)) / np.maximum(sd, 1e-8)
    # window=1: zero variance, the floor leaves (x - x) / 1e-8 = 0
    np.testing.assert_allclose(out, ref, atol=2e-3, rtol=1e-3)
    ref_mean = np.array([X[t] - X[min(max(t - window // 2, 0), T - min(window, T)):][
        :min(window, T)].mean(0) for t in range(T)])
    np.testing.assert_allclose(cmvn(X.astype(np.float32), window=window, variance=False),
                               ref_mean, atol=1e-3)


@pytest.mark.parametrize("y, kw, match", [
    (np.zeros(0, np.float32), {}, "empty"),
    (np.zeros(16000, np.float32), {}, "silent"),
    (np.array([0.1, np.nan] * 8000, np.float32), {}, "NaN"),
    (np.array([0.1, np.inf] * 8000, np.float32), {}, "NaN or Inf"),
    (np.ones(16000, np.int16), {}, "integer dtype"),
    (np.ones((2, 16000), np.float32), {}, "mono"),
    (np.ones(16000, np.float32), dict(sr=4000), "below the 8000 Hz"),
    (np.ones(300, np.float32), {}, "shorter than one analysis window"),
    (np.ones(300, np.float32), dict(convention="kaldi"), "shorter than one analysis window"),
    ("abc", {}, "numpy array"),
    (np.ones(16000, np.float32), dict(convention="htk"), "convention"),
    (np.ones(16000, np.float32), dict(n_mfcc=50), "n_mfcc=50 exceeds n_mels=40"),
    (np.ones(16000, np.float32), dict(n_fft=256), "n_fft=256 is shorter than the window"),
    (np.ones(16000, np.float32), dict(fmax=9000.0), "fmax=9000"),
    (np.ones(16000, np.float32), dict(fmin=500.0, fmax=400.0), "fmin < fmax"),
    (np.ones(16000, np.float32), dict(hop_length=0.0), "less than one sample"),
    (np.ones(16000, np.float32), dict(win_length="25ms"), "seconds"),
    (np.ones(16000, np.float32), dict(convention="kaldi", center=True), "snips edges"),
    (np.ones(16000, np.float32), dict(top_db=-1.0), "top_db"),
    (np.ones(16000, np.float32), dict(n_threads=0), "n_threads"),
])
def test_mfcc_bad_inputs(y, kw, match):
    with pytest.raises(ParameterError, match=match):
        mfcc(y, **kw)


def test_delta_cmvn_bad_inputs(rng):
    X = rng.standard_normal((10, 3)).astype(np.float32)
    with pytest.raises(ParameterError, match="order"):
        delta(X, order=-1)
    with pytest.raises(ParameterError, match="width"):
        delta(X, width=0)
    with pytest.raises(ParameterError, match="2-D"):
        delta(X[:, 0])
    with pytest.raises(ParameterError, match="NaN"):
        cmvn(np.full((4, 2), np.nan, np.float32))
    with pytest.raises(ParameterError, match="window"):
        cmvn(X, window=0)
    with pytest.raises(ParameterError, match="dtype"):
        cmvn(X.astype(np.int32))


def test_devdata_agreement(devdata):
    """Real synthesized speech (Festival / eSpeak voices): both conventions vs their peers."""
    librosa = pytest.importorskip("librosa")
    from vqalign.io import load_audio
    rows = [line.split("\t") for line in (devdata / "MANIFEST.tsv").read_text().splitlines()[1:]]
    for row in rows[::25]:
        y, sr = load_audio(devdata / row[1], 16000)
        ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=512, hop_length=160,
                                   win_length=400, n_mels=40, pad_mode="constant").T
        assert np.abs(mfcc(y, sr) - ref).max() <= 1e-3 * (ref.max() - ref.min())
        kref = _knf_mfcc(y, sr)
        ours = mfcc(y, sr, convention="kaldi")
        assert np.all(np.abs(ours - kref) <= 5e-3 * (1.0 + np.abs(kref))), row[1]


def _child_mfcc(y, q):
    q.put(mfcc(y, 16000, n_threads=2))


def test_threads_survive_fork(rng):
    """A forked child (multiprocessing 'fork') gets its own thread pool instead of hanging."""
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    y = _speechlike(rng, 8.0)
    parent = mfcc(y, 16000, n_threads=2)       # creates the pool in the parent
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_mfcc, args=(y, q))
    p.start()
    child = q.get(timeout=120)
    p.join(timeout=30)
    np.testing.assert_array_equal(child, parent)


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large:UserWarning")
@pytest.mark.parametrize("n", [400, 401, 511, 512, 513, 999, 16001])
@pytest.mark.parametrize("center", [True, False])
def test_mfcc_lengths_match_librosa(rng, n, center):
    librosa = pytest.importorskip("librosa")
    if not center and n < 512:
        with pytest.raises(ParameterError, match="shorter than one analysis window"):
            mfcc(_speechlike(rng, 1.1)[:n], center=False)
        return
    y = _speechlike(rng, 1.1)[8500:8500 + n]
    ref = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=512, hop_length=160,
                               win_length=400, n_mels=40, center=center, pad_mode="constant").T
    ours = mfcc(y, center=center)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-3 * (ref.max() - ref.min())


@pytest.mark.parametrize("kind,args", [
    ("slaney", (16000, 512, 40, 0.0, 8000.0)),
    ("slaney", (22050, 1024, 64, 60.0, 7600.0)),
    ("kaldi", (16000, 512, 23, 20.0, 8000.0)),
    ("slaney", (8000, 256, 24, 0.0, 4000.0)),
])
def test_sparse_filterbank_equals_dense(rng, kind, args):
    """The per-band spans rebuild the dense matrix, and the fused kernel equals power @ W.T."""
    import importlib

    from vqalign.features import _kernels as K
    mod = importlib.import_module("vqalign.features.mfcc")  # the package's `mfcc` is the function
    dense = (mod.slaney_filterbank if kind == "slaney" else mod.kaldi_filterbank)(*args)
    bank = mod.sparse_filterbank(dense)
    rebuilt = np.zeros_like(dense)
    for m in range(bank.n_mels):
        w = bank.weights[bank.band_off[m]:bank.band_off[m + 1]]
        rebuilt[m, bank.band_lo[m]:bank.band_lo[m] + w.size] = w
    np.testing.assert_array_equal(rebuilt, dense)
    assert np.all(dense[:, :bank.bin_lo] == 0) and np.all(dense[:, bank.bin_hi:] == 0)

    n_fft = args[1]
    frames = rng.standard_normal((37, n_fft)).astype(np.float32)
    frames[5] = 0.0                                   # a silent frame hits the floor
    spec = np.fft.rfft(frames.astype(np.float64), axis=1)
    expect = np.maximum((np.abs(spec) ** 2) @ dense.T.astype(np.float64), 1e-10)
    out = np.empty((37, bank.n_mels), dtype=np.float32)
    spec32 = np.ascontiguousarray(spec.T.astype(np.complex64))      # bins x frames
    K.mel_power(spec32.view(np.float32), bank.bin_lo, bank.bin_hi, bank.band_lo, bank.band_off,
                bank.weights, np.float32(1e-10), np.empty((n_fft // 2 + 1, 37), np.float32),
                np.empty(37, np.float32), out)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-10)
    assert np.all(out[5] == np.float32(1e-10))


def test_fill_digital_silence_fills_frame_long_zero_runs_only():
    from vqalign.features.frontend import ZERO_LEVEL, fill_digital_silence
    sr = 16000
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(sr)).astype(np.float32)
    y[1000:1159] = 0.0          # 159 zeros: under one 10 ms step, a quiet signal's
    y[5000:8200] = 0.0          # 3200 zeros: digital silence
    y[9000:9160] = 0.0          # exactly one step
    out = fill_digital_silence(y, sr, level=3e-4)
    assert out is not y and out.dtype == np.float32
    changed = np.flatnonzero(out != y)
    # every sample of the two long runs replaced, nothing else touched
    np.testing.assert_array_equal(changed, np.r_[5000:8200, 9000:9160])
    assert abs(np.std(out[5000:8200]) - 3e-4) < 3e-5
    assert np.all(y[1000:1159] == 0.0)                      # the input is not changed
    np.testing.assert_array_equal(out, fill_digital_silence(y, sr, level=3e-4))  # seeded
    quiet = y.copy()
    quiet[5000:8200] = quiet[9000:9160] = 0.5 * ZERO_LEVEL
    assert np.array_equal(np.flatnonzero(fill_digital_silence(quiet, sr) != quiet),
                          changed)                          # near-zero counts as zero
    short = y.copy()
    short[5000:8200] = short[9000:9160] = 0.2
    assert fill_digital_silence(short, sr) is short          # no run: no copy


def test_true_runs_match_a_brute_force_scan():
    from vqalign.features.frontend import true_runs
    rng = np.random.default_rng(4)
    for n in [0, 1, 2, 7, 50, 300]:
        for p in (0.1, 0.5, 0.9):
            m = rng.random(n) < p
            want, i = [], 0
            while i < n:
                if m[i]:
                    j = i
                    while j < n and m[j]:
                        j += 1
                    want.append((i, j))
                    i = j
                else:
                    i += 1
            a, b = true_runs(m)
            assert a.dtype == np.int64 and b.dtype == np.int64
            assert list(zip(a.tolist(), b.tolist())) == want
