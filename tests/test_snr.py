"""The SNR of a recording estimated from the audio alone (vqalign.features.snr)."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.datasets import synth
from vqalign.features import snr as S

SR = 16000


def _mix(y, noise, snr_db):
    """``y`` plus ``noise`` scaled to ``snr_db`` (mean powers over the whole file)."""
    y = np.asarray(y, np.float64)
    g = np.sqrt(np.mean(y ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    return (y + g * noise).astype(np.float32)


def test_running_min_is_the_brute_force_minimum_over_neighbouring_blocks():
    rng = np.random.default_rng(0)
    for n, block, half in ((100, 7, 2), (5, 3, 1), (64, 8, 0), (50, 4, 9)):
        a = rng.random((n, 3))
        got = S.running_min(a, block, half)
        want = np.empty_like(a)
        for t in range(n):
            b = t // block
            lo = max(0, (b - half) * block)
            hi = min(n, (b + half + 1) * block)
            want[t] = a[lo:hi].min(axis=0)
        np.testing.assert_array_equal(got, want)


def test_noise_alone_is_estimated_at_its_own_power():
    """Stationary noise, white or low-passed, at any level: the minimum statistics with
    their bias give its mean power back within 0.5 dB."""
    rng = np.random.default_rng(11)
    white = rng.standard_normal(8 * SR)
    low = np.convolve(rng.standard_normal(8 * SR), np.ones(6) / 6, mode="same")
    for noise in (0.3 * white, 0.001 * white, 0.05 * low):
        P = S.power_spectrogram(noise)
        ratio = P.sum(1).mean() / S.noise_psd(P).sum(1).mean()
        assert abs(10 * np.log10(ratio)) < 0.5


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_speech_in_white_noise_at_a_known_snr(snr_db):
    """Synthesized speech of every voice mixed with white noise at a known SNR: the
    estimate is within 1.5 dB of it."""
    utts = synth.synthesize_corpus(n=4, seed=5)
    rng = np.random.default_rng(int(snr_db))
    for u in utts:
        y = _mix(u.audio, rng.standard_normal(u.audio.size), snr_db)
        est = S.estimate_snr_db(y)
        assert est == pytest.approx(snr_db, abs=1.5), (u.id, est)


def test_the_estimate_rises_with_the_snr_and_clean_speech_is_high():
    u = synth.synthesize_corpus(n=1, seed=2)[0]
    noise = np.random.default_rng(3).standard_normal(u.audio.size)
    est = [S.estimate_snr_db(_mix(u.audio, noise, d)) for d in (-5, 5, 15, 25)]
    assert np.all(np.diff(est) > 5)
    assert S.estimate_snr_db(u.audio) > 30


def test_short_or_silent_audio_has_no_estimate_and_extremes_are_clipped():
    assert S.estimate_snr_db(np.zeros(SR, np.float32)) is None
    assert S.estimate_snr_db(np.ones(1000, np.float32)) is None     # under 0.2 s
    noise = np.random.default_rng(4).standard_normal(2 * SR)
    lo, hi = S.SNR_RANGE_DB
    assert lo <= S.estimate_snr_db(noise) < 0                        # noise alone
    t = np.arange(3 * SR) / SR
    tone = np.sin(2 * np.pi * 300 * t) * ((t % 0.8) < 0.4)           # digital silence
    assert S.estimate_snr_db(tone) == hi                             # between its notes
    # a steady sound with no pause is what minimum statistics take for noise
    assert S.estimate_snr_db(np.sin(2 * np.pi * 300 * t)) < 0


def test_local_snr_is_near_0_db_in_noise_and_high_over_a_loud_sound():
    rng = np.random.default_rng(6)
    t = np.arange(4 * SR) / SR
    burst = (t >= 1.5) & (t < 2.0)
    tone = 0.3 * np.sin(2 * np.pi * 1000 * t) * burst                 # 1 kHz, in the band
    y = tone + 0.003 * rng.standard_normal(t.size)
    at = np.arange(0, y.size, 160)
    loc = S.local_snr_db(y, at)
    assert loc.shape == at.shape
    quiet = (at < 1.2 * SR) | (at > 2.3 * SR)
    assert abs(np.mean(loc[quiet])) < 1.5                            # the noise's own level
    inside = (at > 1.6 * SR) & (at < 1.9 * SR)
    assert np.all(loc[inside] > 30)
    np.testing.assert_array_equal(S.local_snr_db(y[:100], [0, 50]), [0.0, 0.0])
