"""Stationary noise subtracted before aligning (vqalign.features.denoise)."""

from __future__ import annotations

import numpy as np
import pytest

from vqalign.align import Aligner
from vqalign.align.utterance import loudness_range_db
from vqalign.datasets import synth
from vqalign.features import denoise as D
from vqalign.features.frontend import frame_db

SR = 16000


def test_without_subtraction_the_overlap_add_gives_the_input_back(monkeypatch):
    monkeypatch.setattr(D, "OVER", 0.0)
    monkeypatch.setattr(D, "SMOOTH", None)
    y = np.random.default_rng(0).standard_normal(SR + 77).astype(np.float32)
    np.testing.assert_allclose(D.spectral_subtract(y), y, atol=1e-5)
    short = y[: D.N_FFT - 1]
    np.testing.assert_array_equal(D.spectral_subtract(short), short)


def test_box_mean_is_the_brute_force_window_mean():
    a = np.random.default_rng(1).random((9, 7))
    got = D._box(a, 5, 3)
    want = np.array([[a[max(0, i - 2):i + 3, max(0, j - 1):j + 2].mean() for j in range(7)]
                     for i in range(9)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_white_noise_goes_down_and_a_tone_stays():
    t = np.arange(3 * SR) / SR
    tone = 0.1 * np.sin(2 * np.pi * 440 * t) * (t >= 1.0)        # a silent first second
    noise = 0.01 * np.random.default_rng(2).standard_normal(t.size)
    out = D.spectral_subtract((tone + noise).astype(np.float32)).astype(np.float64)
    quiet_in = np.mean(noise[: SR // 2] ** 2)
    quiet_out = np.mean(out[: SR // 2] ** 2)
    assert 10 * np.log10(quiet_in / quiet_out) > 10          # the noise alone: > 10 dB less
    loud = slice(int(1.5 * SR), int(2.5 * SR))
    ratio_db = 10 * np.log10(np.mean(out[loud] ** 2) / np.mean((tone + noise)[loud] ** 2))
    assert abs(ratio_db) < 1.0                               # the tone keeps its power


def test_only_noisy_short_recordings_are_denoised_and_say_so():
    u = synth.synthesize_corpus(n=1, seed=3)[0]
    y = u.audio.astype(np.float64)
    al = Aligner()
    al.check_params()
    clean = al.prepare(u.audio, u.sr, u.text)
    assert not any("noise was subtracted" in w for w in clean.warnings)
    assert clean.range_db == pytest.approx(loudness_range_db(frame_db(clean.y16)))
    assert clean.range_db > D.DENOISE_BELOW_DB
    noisy = y + np.sqrt(np.mean(y ** 2) / 10) * np.random.default_rng(0).standard_normal(y.size)
    p = al.prepare(noisy.astype(np.float32), u.sr, u.text)
    assert p.range_db < D.DENOISE_BELOW_DB                  # white noise at 10 dB SNR
    assert any("stationary noise was subtracted" in w for w in p.warnings)
    # what was aligned is the denoised audio: its loudness range is wider than the input's
    assert loudness_range_db(frame_db(p.y16)) > p.range_db + 3
    # white noise alone is not "denoised" into something that looks like speech
    alone = np.random.default_rng(1).standard_normal(2 * SR).astype(np.float32) * 0.05
    q = al.prepare(alone, SR, "hello there")
    assert q.noise_db is not None
    assert not any("noise was subtracted" in w for w in q.warnings)


def test_a_small_loudness_range_without_noise_is_not_denoised():
    """Clean voiced sound with no pause has a small loudness range too (its quietest
    frames are sound, not noise): it is left as it is."""
    t = np.arange(2 * SR) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 1.5 * t)                # a gliding voice
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 25))
    voiced *= 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)             # syllable-like loudness
    y = (0.05 * voiced).astype(np.float32)
    r = loudness_range_db(frame_db(y.astype(np.float64)))
    assert D.wanted(r)                                          # the range alone says noisy
    assert D.spectral_subtract(y) is None                       # its quiet frames are not noise
    al = Aligner()
    al.check_params()
    p = al.prepare(y, SR, "hello")
    assert not any("noise was subtracted" in w for w in p.warnings)
