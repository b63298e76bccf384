"""The long-recording front end read block by block (vqalign.features.blockwise,
vqalign.io.blocks, vqalign.align.longfile) against the whole-signal front end it replaces:
the same features, VAD and warnings; the errors of the loaded path; the memory budget
refused with the longest length that fits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from vqalign.align import longfile
from vqalign.align import windows as W
from vqalign.exceptions import ParameterError
from vqalign.features import blockwise as B
from vqalign.features import frontend as F
from vqalign.io.audio import load_audio
from vqalign.io.blocks import BlockReader


@pytest.fixture(scope="module")
def speech():
    """About 24 s of built-in synthesized speech with digital-silence gaps (seed 3)."""
    from vqalign.datasets import synth
    utts = synth.synthesize_corpus(6, seed=3)
    rng = np.random.default_rng(3)
    parts = []
    for u in utts:
        parts += [np.zeros(int(rng.uniform(0.2, 1.0) * u.sr), np.float32), u.audio]
    assert utts[0].sr == F.FEATURE_SR
    return np.concatenate(parts).astype(np.float32), " ".join(u.text for u in utts)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 8192 samples and 700 delta rows: a short file crosses many of them."""
    monkeypatch.setattr(F, "MEM_BLOCK", 1 << 13)
    monkeypatch.setattr(B, "_ROWS", 700)


def _whole(path, dither):
    y, _ = load_audio(path)
    y, warn = F.condition_audio(y, F.FEATURE_SR, path)
    speech = F.speech_frames(y)
    X, c0 = F.features(y, 0.010, 1, dither=dither)
    return X, c0, speech, warn


@pytest.mark.parametrize("dither", [F.SELF_DITHER, 0.0])
def test_blockwise_front_end_equals_the_whole_signal_bit_for_bit(speech, small_blocks,
                                                                  tmp_path, dither):
    y, _ = speech
    path = str(tmp_path / "a.wav")
    sf.write(path, y, F.FEATURE_SR, subtype="FLOAT")
    fe = B.long_front_end(BlockReader(path, block=5000), 0.010, dither=dither, name=path)
    X, c0, on, warn = _whole(path, dither)
    assert X.shape[0] > 3 * 256                       # several mel blocks, many reads
    np.testing.assert_array_equal(fe.X, X)
    np.testing.assert_array_equal(fe.c0, c0)
    np.testing.assert_array_equal(fe.speech, on)
    assert fe.warnings == warn and fe.n_samples == y.size


def test_dc_offset_and_clipping_are_reported_as_by_condition_audio(speech, small_blocks,
                                                                   tmp_path):
    y, _ = speech
    y = np.clip(y * 4.0, -0.6, 0.6) + np.float32(0.02)      # clipped, with a DC offset
    path = str(tmp_path / "dc.wav")
    sf.write(path, y.astype(np.float32), F.FEATURE_SR, subtype="FLOAT")
    fe = B.long_front_end(BlockReader(path, block=3000), 0.010, dither=F.SELF_DITHER,
                          name=path)
    X, c0, on, warn = _whole(path, F.SELF_DITHER)
    assert any("DC offset" in w for w in warn) and any("clipped" in w for w in warn)
    assert fe.warnings == warn
    # the mean is summed per block: the removed offset may differ in its last bit
    np.testing.assert_allclose(fe.X, X, atol=1e-3)
    np.testing.assert_array_equal(fe.speech, on)


def test_resampled_and_stereo_files_match_load_audio(speech, tmp_path):
    y, _ = speech
    import soxr
    y44 = np.asarray(soxr.resample(y, F.FEATURE_SR, 44100), np.float32)
    stereo = np.stack([y44, 0.5 * y44], axis=1)
    path = str(tmp_path / "s.wav")
    sf.write(path, stereo, 44100, subtype="FLOAT")
    blocks = np.concatenate(list(BlockReader(path, block=10000)))
    ref, _ = load_audio(path)
    assert abs(blocks.size - ref.size) <= 2
    n = min(blocks.size, ref.size)
    # soxr's streaming and one-shot resamplers: the same filter, float32 rounding apart
    assert np.max(np.abs(blocks[:n] - ref[:n])) < 1e-4


def test_a_silent_channel_is_left_out_with_a_warning(speech, tmp_path):
    y, _ = speech
    path = str(tmp_path / "m.wav")
    sf.write(path, np.stack([y, 1e-5 * y], axis=1), F.FEATURE_SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"channel\(s\) 1 of 2 are silent"):
        got = np.concatenate(list(BlockReader(path)))
    np.testing.assert_array_equal(got, y)


def test_bad_files_get_the_loaded_paths_errors(tmp_path):
    p = tmp_path / "z.wav"
    sf.write(str(p), np.zeros(16000, np.float32), F.FEATURE_SR)
    with pytest.raises(ParameterError, match=r"is silent \(all 16000 samples are zero"):
        B.long_front_end(BlockReader(p), 0.010, name=str(p))
    q = tmp_path / "nan.wav"
    y = np.full(20000, 0.1, np.float32)
    y[12345] = np.nan
    sf.write(str(q), y, F.FEATURE_SR, subtype="FLOAT")
    with pytest.raises(ParameterError, match=r"1 NaN or Inf samples \(first at index 12345\)"):
        B.long_front_end(BlockReader(q, block=4096), 0.010, name=str(q))
    with pytest.raises(ParameterError, match="does not exist"):
        BlockReader(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ParameterError, match="cannot read audio file"):
        BlockReader(tmp_path / "bad.wav")


def test_deltas_cmvn_in_place_equals_delta_then_cmvn():
    from vqalign.features.cmvn import cmvn
    from vqalign.features.deltas import delta
    c = np.random.default_rng(0).standard_normal((1234, 13)).astype(np.float32)
    for width in (1, 2):
        np.testing.assert_array_equal(B.deltas_cmvn(c, width),
                                      cmvn(delta(c, order=2, width=width)))


# --------------------------------------------------------------------------- the aligner
def test_long_file_is_prepared_from_blocks_as_from_samples(speech, tmp_path, monkeypatch):
    from vqalign.align import Aligner
    from vqalign.align import utterance as U
    y, text = speech
    path = str(tmp_path / "long.wav")
    sf.write(path, y, F.FEATURE_SR, subtype="FLOAT")
    monkeypatch.setattr(longfile, "STREAM_MIN_S", 10.0)
    monkeypatch.setattr(U, "LONG_AUDIO_S", 10.0)
    monkeypatch.setenv("VQALIGN_RESUME_DIR", str(tmp_path / "resume"))
    a = Aligner(unit="phones")
    a.check_params()
    audio, sr = longfile.open_audio(path)
    assert isinstance(audio, longfile.LongFile) and sr == F.FEATURE_SR
    p = a.prepare(audio, sr, text, path, a._lexicon(), None)
    q = a.prepare(load_audio(path)[0], F.FEATURE_SR, text, path, a._lexicon(), None)
    np.testing.assert_array_equal(p.X, q.X)
    np.testing.assert_array_equal(p.energy, q.energy)
    np.testing.assert_array_equal(p.speech, q.speech)
    assert p.warnings == q.warnings and p.duration == q.duration and p.y16 is None
    # the front end is kept under the file's digest: a second run reads it back
    assert (tmp_path / "resume" / p.long_key / "front-end.pkl").is_file()
    other = a.prepare(audio, sr, text + " a", path, a._lexicon(), None)
    monkeypatch.setattr(B, "long_front_end", lambda *a, **k: pytest.fail("recomputed"))
    r = a.prepare(audio, sr, text, path, a._lexicon(), None)
    np.testing.assert_array_equal(r.X, p.X)
    assert r.long_key == p.long_key != other.long_key


def test_short_files_are_still_loaded_whole(speech, tmp_path):
    y, _ = speech
    path = str(tmp_path / "short.wav")
    sf.write(path, y, F.FEATURE_SR, subtype="FLOAT")
    audio, sr = longfile.open_audio(path)
    assert isinstance(audio, np.ndarray) and audio.size == y.size
    audio, sr = longfile.open_audio(path, blocks=False)
    assert isinstance(audio, np.ndarray)


def test_a_recording_over_the_memory_budget_is_refused_with_its_longest_length(tmp_path):
    """``vqalign align`` on a file longer than the budget allows: a clear error naming the
    longest recording that fits, before any sample is read -- not a killed process."""
    minutes = 12.0
    path = tmp_path / "long.wav"
    n = int(minutes * 60 * F.FEATURE_SR)
    with sf.SoundFile(str(path), "w", F.FEATURE_SR, 1, subtype="PCM_16") as fh:
        block = (0.1 * np.sin(np.arange(1 << 20) * 0.05)).astype(np.float32)
        for a in range(0, n, block.size):
            fh.write(block[:min(block.size, n - a)])
    (tmp_path / "long.txt").write_text("hello world\n")
    budget = W.MEMORY_BASE_MB + W.MEMORY_MB_PER_MIN * 5          # 5 minutes fit
    env = {**os.environ, "VQALIGN_MEMORY_MB": str(budget)}
    run = subprocess.run([sys.executable, "-m", "vqalign", "align", str(path),
                          str(tmp_path / "long.txt"), "--out", str(tmp_path / "o.json")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"lasts {minutes:.1f} min" in run.stderr
    assert "recordings of up to 5 min fit it" in run.stderr
    assert "VQALIGN_MEMORY_MB" in run.stderr
    assert not (tmp_path / "o.json").exists()


def test_samples_given_as_an_array_are_budgeted_at_their_own_rate():
    budget = W.MEMORY_BASE_MB + 100 * W.MEMORY_MB_PER_MIN          # 100 min from a file
    W.memory_check(100 * 60.0, budget_mb=budget)
    longest = 100 * W.MEMORY_MB_PER_MIN / W.MEMORY_MB_PER_MIN_ARRAY
    assert longest < 100
    with pytest.raises(ParameterError, match=rf"up to {longest:.0f} min fit"):
        W.memory_check(100 * 60.0, budget_mb=budget, per_min=W.MEMORY_MB_PER_MIN_ARRAY)
