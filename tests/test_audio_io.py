"""load_audio: formats, downmix, resampling, and the errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vqalign.exceptions import ParameterError
from vqalign.io import load_audio


def _tone(sr, seconds=1.0, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.mark.parametrize("fmt, subtype, tol", [("WAV", "FLOAT", 1e-7), ("WAV", "PCM_16", 1e-4),
                                               ("FLAC", "PCM_16", 1e-4), ("OGG", "VORBIS", 0.05)])
def test_round_trip(tmp_path, fmt, subtype, tol):
    x = _tone(16000)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    y, sr = load_audio(path)
    assert sr == 16000 and y.dtype == np.float32 and y.ndim == 1
    assert y.size == x.size
    if fmt == "OGG":   # lossy: compare energy, not samples
        assert abs(np.sqrt(np.mean(y ** 2)) - np.sqrt(np.mean(x ** 2))) < tol
    else:
        assert np.abs(y - x).max() <= tol


def test_stereo_downmix_and_keep_channels(tmp_path, rng):
    left = _tone(16000, f=300.0)
    right = (0.1 * rng.standard_normal(left.size)).astype(np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y, _ = load_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)
    y2, _ = load_audio(tmp_path / "s.wav", mono=False)
    assert y2.shape == (2, left.size)
    np.testing.assert_allclose(y2[1], right, atol=1e-7)


@pytest.mark.parametrize("native", [22050, 44100, 8000])
def test_resampling(tmp_path, native):
    x = _tone(native, seconds=1.5, f=440.0)
    sf.write(tmp_path / "r.wav", x, native, subtype="FLOAT")
    y, sr = load_audio(tmp_path / "r.wav", sr=16000)
    assert sr == 16000
    assert abs(y.size - round(1.5 * 16000)) <= 1
    ref = _tone(16000, seconds=1.5, f=440.0)
    mid = slice(1000, y.size - 1000)       # away from the filter's edge transients
    assert np.abs(y[mid] - ref[mid]).max() < 2e-3
    # the spectral peak stays at 440 Hz
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / y.size - 440.0) < 2.0


def test_native_rate_kept(tmp_path):
    sf.write(tmp_path / "n.wav", _tone(22050), 22050)
    y, sr = load_audio(tmp_path / "n.wav", sr=None)
    assert sr == 22050 and y.size == 22050


def test_missing_file(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(ParameterError, match="is a directory"):
        load_audio(tmp_path)


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(200)))
    with pytest.raises(ParameterError, match=r"cannot read audio file .*bad\.wav"):
        load_audio(bad)
    txt = tmp_path / "notes.flac"
    txt.write_text("this is not audio")
    with pytest.raises(ParameterError, match="cannot read audio file"):
        load_audio(txt)


def test_empty_file(tmp_path):
    zero = tmp_path / "zero.wav"
    zero.write_bytes(b"")
    with pytest.raises(ParameterError, match="zero.wav"):
        load_audio(zero)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(ParameterError, match="holds no samples"):
        load_audio(empty)


def test_bad_target_rate(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(16000), 16000)
    with pytest.raises(ParameterError, match="below the 8000 Hz"):
        load_audio(tmp_path / "a.wav", sr=4000)
