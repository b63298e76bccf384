"""Bad and awkward input on audio the project makes (vqalign.datasets.synth): long edge
silence, DC offset, clipping, 8 kHz audio, stereo with a silent channel, a transcript
that lacks most of the speech. Each aligns (boundaries checked against the
synthesizer's truth) or is refused, and gets a warning that names the problem."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.naive import word_errors_ms
from vqalign.align import align
from vqalign.align.utterance import missing_speech_warning
from vqalign.datasets import synth
from vqalign.exceptions import ParameterError
from vqalign.features.frontend import speech_frames, speech_span

SR = 16000


@pytest.fixture(scope="module")
def utts():
    return synth.synthesize_corpus(6, seed=11)


def _errors_ms(aln, utt, offset=0.0):
    return word_errors_ms(aln.tiers["words"], utt.words, offset)


def _padded(utt, lead=0.8, trail=1.5, noise=3e-3, seed=0):
    """The utterance with ``lead`` / ``trail`` s of extra silence and a noise floor over
    the whole recording (as a real room: the same noise in the pauses and the edges)."""
    y = np.concatenate([np.zeros(int(lead * SR)), utt.audio, np.zeros(int(trail * SR))])
    y = y + noise * np.random.default_rng(seed).standard_normal(y.size)
    return y.astype(np.float32)


# ----------------------------------------------------------------------------- edges
def test_speech_span_finds_tone_bursts():
    """Two 0.4 s tones in noise, 1.0 s of noise before, 2.0 s after: the span starts
    0.25 s before the first tone and ends 0.25 s after the last."""
    rng = np.random.default_rng(1)
    y = 1e-3 * rng.standard_normal(int(4.2 * SR))
    t = np.arange(int(0.4 * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    y[SR:SR + tone.size] += tone
    y[int(1.8 * SR):int(1.8 * SR) + tone.size] += tone
    a, b = speech_span(y.astype(np.float32))
    # within one 25 ms analysis window of the tone edges
    assert 0.75 - 0.026 <= a / SR <= 0.75
    assert 2.45 <= b / SR <= 2.45 + 0.026
    # edges of 0.5 s are kept (devdata's trailing silence reaches 0.56 s)
    assert speech_span(y[int(0.5 * SR):int(2.7 * SR)].astype(np.float32)) is None
    # noise alone has no speech to find
    assert speech_span((1e-3 * rng.standard_normal(3 * SR)).astype(np.float32)) is None


def test_long_edge_silence_is_not_given_to_words(utts):
    """0.8 s of leading and 1.5 s of trailing silence: the first word starts near its
    true time (not at 0.00 s) and no word reaches into the trailing silence (before
    this change the same recording put the first word at 0.00 s and the last word's end
    1.0 s late)."""
    utt = utts[1]
    y = _padded(utt)
    truth = [w for w in utt.words if w[2]]
    aln = align(y, utt.text, sr=SR)
    words = aln.tiers["words"]
    assert abs(words[0].start - (truth[0][0] + 0.8)) < 0.1, words[0]
    assert abs(words[-1].end - (truth[-1][1] + 0.8)) < 0.1, words[-1]
    assert aln.duration == pytest.approx(y.size / SR)
    lo, hi = aln.diagnostics["speech_span_s"]
    assert 0.5 < lo < truth[0][0] + 0.8 and truth[-1][1] + 0.8 < hi < aln.duration - 1.0
    assert np.median(_errors_ms(aln, utt, offset=0.8)) < 40.0
    assert all(s.end <= aln.duration + 1e-9 for s in aln.tiers["phones"])
    plain = align(y, utt.text, sr=SR, trim_silence=False)
    assert "speech_span_s" not in plain.diagnostics


# ----------------------------------------------------------------------------- signal
def test_dc_offset_is_removed_and_reported(utts):
    utt = utts[0]
    aln = align(utt.audio + np.float32(0.05), utt.text, sr=SR)
    assert any("DC offset of +0.050" in w for w in aln.diagnostics["warnings"])
    assert np.median(_errors_ms(aln, utt)) < 30.0
    clean = align(utt.audio, utt.text, sr=SR)
    assert not any("DC offset" in w for w in clean.diagnostics["warnings"])


def test_clipped_audio_aligns_with_a_warning(utts):
    utt = utts[0]
    y = np.clip(utt.audio * (6.0 / np.abs(utt.audio).max()), -1, 1).astype(np.float32)
    aln = align(y, utt.text, sr=SR)
    assert any("is clipped" in w for w in aln.diagnostics["warnings"])
    assert np.median(_errors_ms(aln, utt)) < 30.0
    clean = align(utt.audio, utt.text, sr=SR)
    assert not any("clipped" in w for w in clean.diagnostics["warnings"])


def test_telephone_rate_audio_aligns_with_a_warning(utts):
    """8 kHz audio: a warning naming the band, and boundaries near the truth over three
    utterances (one of them, seed 11's first, is the self-trained model's hard case at 8
    kHz: about 110 ms mean word error with or without the single-utterance policy)."""
    soxr = pytest.importorskip("soxr")
    err = []
    for utt in utts[:3]:
        y8 = soxr.resample(utt.audio, SR, 8000).astype(np.float32)
        aln = align(y8, utt.text, sr=8000)
        assert any("8000 Hz" in w and "4 kHz" in w for w in aln.diagnostics["warnings"])
        err.append(_errors_ms(aln, utt))
    err = np.concatenate(err)
    print(f"8 kHz, 3 utterances: median {np.median(err):.1f} ms, mean {np.mean(err):.1f} ms")
    assert np.median(err) < 30.0


def test_stereo_file_with_a_silent_channel(utts, tmp_path):
    sf = pytest.importorskip("soundfile")
    from vqalign.io.audio import load_audio
    utt = utts[0]
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([np.zeros_like(utt.audio), utt.audio], 1), SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"channel\(s\) 0 of 2 are silent"):
        y, sr = load_audio(path)
    np.testing.assert_array_equal(y, utt.audio)  # the loud channel, not half of it
    aln = align(y, utt.text, sr=sr)
    assert np.median(_errors_ms(aln, utt)) < 30.0
    # two live channels are still averaged, without a warning
    sf.write(path, np.stack([utt.audio, 0.5 * utt.audio], 1), SR, subtype="FLOAT")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y2, _ = load_audio(path)
    np.testing.assert_allclose(y2, 0.75 * utt.audio, atol=1e-6)
    with pytest.raises(ParameterError, match="must be mono"):
        align(np.stack([utt.audio, utt.audio]), utt.text, sr=SR)


# ----------------------------------------------------------------------------- transcript
def test_transcript_missing_most_of_the_speech_is_reported(utts):
    """Three sentences spoken, one transcribed: the warning gives the speech time and
    the stretches of speech (one of them holds the transcribed sentence); with the whole
    transcript there is no such warning."""
    gap = np.zeros(int(0.4 * SR), np.float32)
    parts = [utts[2].audio, gap, utts[3].audio, gap, utts[4].audio]
    y = np.concatenate(parts) + np.float32(5e-4) * np.random.default_rng(2).standard_normal(
        sum(p.size for p in parts)).astype(np.float32)
    aln = align(y, utts[2].text, sr=SR)
    msg = [w for w in aln.diagnostics["warnings"] if "(energy VAD)" in w]
    assert len(msg) == 1, aln.diagnostics["warnings"]
    # the stretches of speech it lists: one starts at each spoken sentence's first word
    spans = [tuple(map(float, m)) for m in re.findall(r"(\d+\.\d+)-(\d+\.\d+) s", msg[0])]
    offs = np.cumsum([0.0] + [(u.audio.size + gap.size) / SR for u in utts[2:4]])
    for u, off in zip(utts[2:5], offs):
        first = next(w for w in u.words if w[2])[0] + off
        assert min(abs(a - first) for a, _ in spans) < 0.1, (first, spans)
    full = " ".join(u.text for u in utts[2:5])
    ok = align(y, full, sr=SR)
    assert not any("(energy VAD)" in w for w in ok.diagnostics["warnings"])


def test_missing_speech_threshold():
    on = np.zeros(1000, bool)
    on[100:400] = True   # 3 s of speech
    assert missing_speech_warning(on, 30) is None          # 100 ms per phone
    w = missing_speech_warning(on, 10, offset_s=1.0)       # 300 ms per phone
    assert "3.0 s of speech" in w and "2.00-5.00 s" in w
    assert speech_frames(np.zeros(SR, np.float32) + 1e-3).sum() == 0
