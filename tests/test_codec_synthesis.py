"""The codec's synthesis against pyworld's at WORLD's own analysis FFT size (the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.codec import analysis as A
from vqalign.datasets.synth import synthesize_corpus

pytest.importorskip("pyworld")

SR = 16000


@pytest.fixture(scope="module")
def frames():
    """WORLD parameters (f0, mcep) of two synthesized utterances, and a voiced aperiodicity
    on the analysis grid (513 bins)."""
    utts = synthesize_corpus(n=2, seed=2, voices=["bruno", "dana"])
    ap = np.clip(np.linspace(0, 1, A.fft_size(SR) // 2 + 1) ** 1.5 * 0.9 + 0.01, 0, 1)
    return [(u.audio.size, *A.analyze(u.audio, SR, frame_ms=10.0, order=24)) for u in utts], ap


def _snr_db(ref, x):
    return float(10 * np.log10((ref.astype(np.float64) ** 2).sum()
                               / ((x.astype(np.float64) - ref) ** 2).sum()))


def test_synthesis_fft_covers_the_span():
    assert A.synthesis_fft_size(16000) == 512
    assert A.synthesis_fft_size(8000) == 256
    assert A.synthesis_fft_size(SR) * 1000.0 / SR >= A.SYNTH_SPAN_MS
    assert A.synthesis_fft_size(SR) < A.fft_size(SR)


def test_resample_bins_nests_exactly():
    v = np.random.default_rng(0).random(513)
    np.testing.assert_array_equal(A.resample_bins(v, 257), v[::2])
    np.testing.assert_array_equal(A.resample_bins(v, 513), v)
    np.testing.assert_allclose(A.resample_bins(np.linspace(0, 1, 5), 9), np.linspace(0, 1, 9))


def test_short_synthesis_fft_matches_the_full_size(frames):
    """pyworld.synthesize at the 512-point default against the same call at the analysis
    size (1024): the envelope's impulse response fits in 32 ms, so the waveforms agree to
    better than 24 dB SNR (measured 28.3-28.7 dB; 256 points give 19.5-19.9 dB)."""
    from vqalign.eval import codec_metrics as M

    items, ap = frames
    full = A.envelope_basis(SR, 24, A.fft_size(SR))
    for n, f0, mc in items:
        ref = A.resynthesize(f0, mc, SR, frame_ms=10.0, voiced_ap=ap, n_samples=n, basis=full)
        out = A.resynthesize(f0, mc, SR, frame_ms=10.0, voiced_ap=ap, n_samples=n)
        assert out.shape == ref.shape == (n,)
        assert _snr_db(ref, out) > 24.0
        assert M.mcd_db(ref, out) < 0.5


# ------------------------------------------------------------------ analysis
def test_split_cheaptrick_matches_the_full_size():
    """Frames whose CheapTrick window fits half the FFT (F0 above 94.3 Hz at 16 kHz, and
    unvoiced frames) are analysed at 512 points, the others at 1024: the low-F0 frames are
    WORLD's own full-size result and the others within a small cepstral distance of it
    (measured on synthesized and TIMIT speech: 0.19-0.27 dB mean, 0.52 dB at most)."""
    import pyworld as pw

    y = synthesize_corpus(n=1, seed=2, voices=["bruno"])[0].audio.astype(np.float64)
    t = A.frame_times(y.size, SR, 10.0)
    f0 = np.zeros(t.size)
    f0[:] = A.track_f0(y, SR, 10.0)[: t.size]
    floor = pw.get_cheaptrick_f0_floor(SR, A.fft_size(SR) // 2)
    assert 94.0 < floor < 95.0
    f0[::7] = np.where(f0[::7] > 0, 80.0, 0.0)   # some frames below the half size's floor
    low = (f0 > 0) & (f0 <= floor)
    assert low.sum() >= 10 and (f0 > floor).sum() >= 10 and (f0 == 0).sum() >= 10
    ref = A.envelope_mcep(y, f0, t, SR, 24, split=False)
    got = A.envelope_mcep(y, f0, t, SR, 24)
    assert got.shape == ref.shape == (t.size, 24) and got.dtype == np.float32
    np.testing.assert_allclose(got[low], ref[low], atol=1e-4)
    dist = 10 / np.log(10) * np.sqrt(2 * ((got[:, 1:] - ref[:, 1:]) ** 2).sum(axis=1))
    assert dist[~low].mean() < 0.35 and dist.max() < 0.8
    assert np.abs(got[:, 0] - ref[:, 0]).max() < 0.1


# ------------------------------------------------------------------ postfilter
def test_postfilter_scales_and_keeps_each_frames_power():
    """c1.. are multiplied by the factor; with keep_energy the envelope's power per frame
    (sum over bins of exp(log power)) is unchanged, without it it changes."""
    import pyworld as pw

    rng = np.random.default_rng(0)
    mc = (rng.standard_normal((50, 24)) * np.r_[2.0, 1.0 / np.arange(1, 24)]).astype(np.float32)
    basis = A.envelope_basis(SR, 24, A.synthesis_fft_size(SR))
    n_fft = A.synthesis_fft_size(SR)

    def power(m):  # WORLD's own decoding as the reference
        return pw.decode_spectral_envelope(np.ascontiguousarray(m, np.float64), SR, n_fft).sum(1)

    out = A.postfilter(mc, 1.1, basis)
    np.testing.assert_allclose(out[:, 1:], mc[:, 1:] * 1.1, rtol=1e-6)
    np.testing.assert_allclose(power(out), power(mc), rtol=1e-4)
    plain = A.postfilter(mc, 1.1, basis, keep_energy=False)
    np.testing.assert_array_equal(plain[:, 0], mc[:, 0])
    assert np.abs(np.log(power(plain) / power(mc))).mean() > 0.01
    np.testing.assert_allclose(A.postfilter(mc, 1.0, basis), mc, rtol=1e-6, atol=1e-6)
