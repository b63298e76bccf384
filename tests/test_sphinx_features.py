"""The Sphinx front end (vqalign.features.sphinx, mfcc(convention="sphinx")).

Against pocketsphinx's own cepstra (its -mfclogdir writes them, before CMN) on the same
int16 audio, and against values worked out by hand from fe_sigproc.c / feat.c on small
signals.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from vqalign.exceptions import ParameterError
from vqalign.features import mfcc
from vqalign.features import sphinx as FS

EN_US = {"lowerf": "130", "upperf": "6800", "nfilt": "25", "transform": "dct", "lifter": "22",
         "feat": "1s_c_d_dd", "svspec": "0-12/13-25/26-38", "agc": "none", "cmn": "batch",
         "varnorm": "no", "model": "ptm", "remove_noise": "yes"}


@pytest.fixture(scope="module")
def speech16():
    from vqalign.datasets.synth import synthesize

    u = synthesize("the quick brown fox jumps over the lazy dog", seed=3)
    y = np.clip(np.round(u.audio * 32767), -32768, 32767).astype(np.int16)
    return y


def _pocketsphinx_cepstra(tmp_path, y16, **config):
    ps = pytest.importorskip("pocketsphinx")
    d = tmp_path / "mfc"
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    dec = ps.Decoder(lm=None, mfclogdir=str(d), loglevel="FATAL", **config)
    dec.set_align_text("hello")
    dec.start_utt()
    dec.process_raw(y16.tobytes(), full_utt=True)
    dec.end_utt()
    raw = (d / os.listdir(d)[0]).read_bytes()
    n = int(np.frombuffer(raw[:4], ">i4")[0])          # big-endian count, then floats
    return np.frombuffer(raw[4:], ">f4").reshape(n // 13, 13)


@pytest.mark.parametrize("cut", [0, 1, 97, 250])
def test_cepstra_match_pocketsphinx_en_us(tmp_path, speech16, cut):
    y16 = speech16[:len(speech16) - cut] if cut else speech16
    ref = _pocketsphinx_cepstra(tmp_path, y16)          # the en-us model's feat.params
    got = FS.mfcc_sphinx(y16 / 32768.0, 16000, params=EN_US)
    assert got.shape == ref.shape                       # frame count incl. the partial frame
    # float32 in pocketsphinx vs float64 here: measured max 2.5e-5 on speech
    np.testing.assert_allclose(got, ref, atol=1e-3 * (1 + np.abs(ref).max()), rtol=0)
    assert np.abs(got - ref).max() < 2e-3


def test_cepstra_match_pocketsphinx_other_feat_params(tmp_path, speech16):
    """A copy of the en-us model whose feat.params asks for Sphinx's legacy transform, 40
    filters, no lifter, no noise removal and a different band."""
    import shutil

    ps = pytest.importorskip("pocketsphinx")
    src = os.path.join(ps.get_model_path(), "en-us", "en-us")
    hmm = tmp_path / "model"
    shutil.copytree(src, hmm)
    params = {"nfilt": "40", "transform": "legacy", "lowerf": "200", "upperf": "7000",
              "feat": "1s_c_d_dd", "svspec": "0-12/13-25/26-38", "cmn": "batch",
              "remove_noise": "no", "alpha": "0.9"}
    (hmm / "feat.params").write_text("".join(f"-{k} {v}\n" for k, v in params.items()))
    ref = _pocketsphinx_cepstra(tmp_path, speech16, hmm=str(hmm),
                                dict=os.path.join(ps.get_model_path(), "en-us", "cmudict-en-us.dict"))
    got = FS.mfcc_sphinx(speech16 / 32768.0, 16000, params=params)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 2e-3


def test_mfcc_convention_sphinx_dispatches(speech16):
    y = speech16 / 32768.0
    np.testing.assert_array_equal(mfcc(y, convention="sphinx", params=EN_US),
                                  FS.mfcc_sphinx(y, 16000, params=EN_US))
    with pytest.raises(ParameterError, match="not n_mels=30.*'nfilt'"):
        mfcc(y, convention="sphinx", n_mels=30)
    with pytest.raises(ParameterError, match="convention='sphinx' only"):
        mfcc(y, params=EN_US)


def test_hamming_filterbank_dct_by_hand():
    w = FS._hamming(410)
    i = np.arange(205)
    np.testing.assert_allclose(w[:205], 0.54 - 0.46 * np.cos(2 * np.pi * i / 409.0))
    np.testing.assert_allclose(w[205:], w[:205][::-1])
    W = FS.sphinx_filterbank(16000.0, 512, 25, 130.0, 6800.0)
    # first filter by hand: mel edges 2595 log10(1 + f/700) split in 26, rounded to bins
    mel = lambda f: 2595 * math.log10(1 + f / 700)           # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)              # noqa: E731
    bw = (mel(6800) - mel(130)) / 26
    edges = [round(inv(mel(130) + k * bw) / 31.25) * 31.25 for k in range(3)]
    nz = np.flatnonzero(W[0])
    assert nz[0] * 31.25 >= edges[0] and nz[-1] * 31.25 <= edges[2]
    k = nz[0] + 1
    hz = k * 31.25
    expect = min((hz - edges[0]) / (edges[1] - edges[0]), (edges[2] - hz) / (edges[2] - edges[1]))
    assert W[0, k] == pytest.approx(expect * 2 / (edges[2] - edges[0]), rel=1e-5)
    # dct of a constant log spectrum v: c0 = sqrt(N) v, others 0; legacy: c0 = v (N - .5)/N
    N, v = 25, 3.0
    c = FS._dct("dct", 13, N) @ np.full(N, v)
    assert c[0] == pytest.approx(math.sqrt(N) * v) and np.abs(c[1:]).max() < 1e-12
    c = FS._dct("legacy", 13, N) @ np.full(N, v)
    assert c[0] == pytest.approx(v * (N - 0.5) / N)


def test_remove_noise_against_naive_loop():
    rng = np.random.default_rng(0)
    E = np.exp(rng.normal(8, 2, (60, 7)))
    got = E.copy()
    FS.K.sphinx_remove_noise(got, *[np.empty(7) for _ in range(6)])
    # fe_noise.c, written out plainly
    P, Nz, Fl, Pk = E[0].copy(), E[0] / 20, E[0] / 20, np.zeros(7)
    ref = E.copy()
    for t in range(60):
        P = 0.7 * P + 0.3 * E[t]
        Nz = np.where(P >= Nz, 0.995 * Nz + 0.005 * P, 0.5 * Nz + 0.5 * P)
        sig = np.maximum(P - Nz, 1.0)
        Fl = np.where(sig >= Fl, 0.995 * Fl + 0.005 * sig, 0.5 * Fl + 0.5 * sig)
        cur = sig.copy()
        Pk = Pk * 0.85
        sig = np.where(sig < 0.85 * Pk, Pk * 0.2, sig)
        Pk = np.where(cur > Pk, cur, Pk)
        sig = np.maximum(sig, Fl)
        gain = np.where(sig < 20 * P, sig / P, 20.0)
        gain = np.maximum(gain, 1 / 20)
        for i in range(7):
            lo, hi = max(i - 4, 0), min(i + 4, 6)
            ref[t, i] = E[t, i] * gain[lo:hi + 1].mean()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_cmn_and_deltas_by_hand():
    c = np.arange(10, dtype=np.float32)[:, None] * np.array([[1.0, 2.0]], np.float32) + 5
    z = FS.cmn_batch(c)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-6)
    f = FS.deltas_1s_c_d_dd(c)
    assert f.shape == (10, 6)
    # interior: d = c[t+2] - c[t-2] = 4 slope; dd = (c[t+3]-c[t-1]) - (c[t+1]-c[t-3]) = 0
    np.testing.assert_allclose(f[3:7, 2:4], [[4, 8]] * 4)
    np.testing.assert_allclose(f[3:7, 4:6], 0, atol=1e-6)
    # edges repeat the first frame: d[0] = c[2] - c[0]; dd[0] = (c[3]-c[0]) - (c[1]-c[0])
    np.testing.assert_allclose(f[0, 2:4], c[2] - c[0])
    np.testing.assert_allclose(f[0, 4:6], (c[3] - c[0]) - (c[1] - c[0]))
    np.testing.assert_allclose(f[9, 2:4], c[9] - c[7])


def test_frame_count_rule():
    fe = FS.front_end_from_params(EN_US)
    assert (fe.frame_size, fe.frame_shift, fe.fft_size) == (410, 160, 512)
    assert FS.n_frames_sphinx(410, fe) == 1
    assert FS.n_frames_sphinx(411, fe) == 2          # 1 sample left over: a partial frame
    assert FS.n_frames_sphinx(570, fe) == 2
    assert FS.n_frames_sphinx(100, fe) == 1


@pytest.mark.parametrize("opt,value", [("feat", "s2_4x"), ("transform", "fancy"),
                                       ("cmn", "live"), ("lda", "x.lda"),
                                       ("agc", "max"), ("dither", "yes")])
def test_unimplemented_front_end_is_refused(opt, value):
    with pytest.raises(ParameterError, match=f"-{opt} {value}.*does not implement"):
        FS.front_end_from_params({**EN_US, opt: value}, source="my/feat.params")


def test_unknown_option_and_wrong_rate():
    with pytest.raises(ParameterError, match="-frobnicate"):
        FS.front_end_from_params({"frobnicate": "1"})
    with pytest.raises(ParameterError, match="-samprate 16000"):
        FS.mfcc_sphinx(np.zeros(8000, np.float32), 8000)


def test_batch_cmn_mean_matches_pocketsphinx(speech16):
    """pocketsphinx exposes its cepstral mean after a batch-CMN utterance (get_cmn)."""
    ps = pytest.importorskip("pocketsphinx")
    dec = ps.Decoder(lm=None, loglevel="FATAL")
    dec.set_align_text("hello")
    dec.start_utt()
    dec.process_raw(speech16.tobytes(), full_utt=True)
    dec.end_utt()
    theirs = np.array([float(v) for v in dec.get_cmn().split(",")])
    cep = FS.mfcc_sphinx(speech16 / 32768.0, 16000, params=EN_US)
    assert np.all(np.abs(cep.mean(axis=0) - theirs) <= 2e-3 * (1 + np.abs(theirs))), \
        (cep.mean(axis=0), theirs)
    np.testing.assert_allclose(FS.sphinx_features(speech16 / 32768.0, 16000, params=EN_US)
                               [:, :13], cep - cep.mean(axis=0), atol=1e-4)
