"""The MFCC pipeline as separate numpy stages, for pictures and the MFCC animation.

The stages follow the librosa convention that ``vqalign.features.mfcc`` uses by
default: centred frames (zero padding of ``n_fft // 2`` on both sides), a
periodic Hann window of ``win_length`` samples centred in ``n_fft``, power
spectrum, Slaney-style mel filters (area-normalised; the filterbank and DCT are
``vqalign.features``' own), ``10 log10`` with an
80 dB floor below the utterance's maximum, and an orthonormal DCT-II.

Everything here is vectorised over frames; nothing loops per frame or sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vqalign._validation import check_audio, check_positive_int, check_sample_rate
from vqalign.exceptions import ParameterError
from vqalign.features.frontend import FEATURE_SR
from vqalign.features.mfcc import dct_matrix, slaney_filterbank

AMIN = 1e-10
TOP_DB = 80.0


@dataclass
class MFCCStages:
    """Every intermediate of the MFCC computation, one row per frame.

    Attributes: ``audio`` (n_samples,), ``sr``, ``hop`` and ``win`` and ``n_fft``
    (samples), ``window`` (n_fft,) (the Hann window centred in n_fft),
    ``frames`` (n_frames, n_fft) raw samples, ``windowed`` (n_frames, n_fft),
    ``power`` (n_frames, 1 + n_fft // 2), ``mel_fb`` (n_mels, 1 + n_fft // 2),
    ``mel`` (n_frames, n_mels), ``log_mel`` (n_frames, n_mels) in dB,
    ``dct`` (n_mfcc, n_mels) and ``mfcc`` (n_frames, n_mfcc) float32.
    """

    audio: np.ndarray
    sr: int
    hop: int
    win: int
    n_fft: int
    window: np.ndarray
    frames: np.ndarray
    windowed: np.ndarray
    power: np.ndarray
    mel_fb: np.ndarray
    mel: np.ndarray
    log_mel: np.ndarray
    dct: np.ndarray
    mfcc: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.mfcc.shape[0])

    def frame_start(self, i) -> np.ndarray:
        """Start time (s) in the original audio of frame ``i`` (may be negative: padding)."""
        return (np.asarray(i) * self.hop - self.n_fft // 2) / self.sr


def default_n_fft(win: int) -> int:
    """Smallest power of two holding the analysis window."""
    return int(2 ** int(np.ceil(np.log2(max(win, 2)))))


def mfcc_stages(y, sr: int = FEATURE_SR, *, n_mfcc: int = 13, n_mels: int = 40,
                win_length: float = 0.025, hop_length: float = 0.010, n_fft: int | None = None,
                fmin: float = 0.0, fmax: float | None = None) -> MFCCStages:
    """Compute every stage of the librosa-convention MFCC of ``y`` with numpy.

    ``win_length`` and ``hop_length`` are in seconds. The raw frames are strided
    views of the padded signal (no copy); the other stages hold one row per frame.
    """
    sr = check_sample_rate(sr)
    win = int(round(float(win_length) * sr))
    hop = int(round(float(hop_length) * sr))
    if win < 2 or hop < 1:
        raise ParameterError(
            f"win_length={win_length} s and hop_length={hop_length} s give {win} and {hop} samples "
            f"at {sr} Hz; use at least 2 and 1 samples (e.g. 0.025 and 0.010 s)")
    n_fft = default_n_fft(win) if n_fft is None else check_positive_int(n_fft, "n_fft", minimum=2)
    if n_fft < win:
        raise ParameterError(f"n_fft={n_fft} is shorter than the window ({win} samples = "
                             f"{win_length} s at {sr} Hz); use n_fft >= {win} or n_fft=None")
    n_mels = check_positive_int(n_mels, "n_mels")
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
    if n_mfcc > n_mels:
        raise ParameterError(f"n_mfcc={n_mfcc} exceeds n_mels={n_mels}; the DCT keeps at most "
                             "n_mels coefficients")
    fmax_v = sr / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= float(fmin) < fmax_v <= sr / 2.0:
        raise ParameterError(f"need 0 <= fmin < fmax <= sr/2 = {sr / 2:g} Hz, got fmin={fmin}, "
                             f"fmax={fmax}")
    y = check_audio(y, sr, allow_silent=True)
    pad = n_fft // 2
    padded = np.pad(y.astype(np.float64), (pad, pad))
    n_frames = 1 + (padded.size - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    windowed = frames * window
    power = np.abs(np.fft.rfft(windowed, axis=1)) ** 2
    fb = slaney_filterbank(sr, n_fft, n_mels, float(fmin), fmax_v).astype(np.float64)
    mel = power @ fb.T
    log_mel = 10.0 * np.log10(np.maximum(mel, AMIN))
    log_mel = np.maximum(log_mel, log_mel.max() - TOP_DB)
    dct = dct_matrix(n_mfcc, n_mels).astype(np.float64)
    mfcc = (log_mel @ dct.T).astype(np.float32)
    return MFCCStages(audio=y, sr=sr, hop=hop, win=win, n_fft=n_fft, window=window,
                      frames=frames, windowed=windowed, power=power, mel_fb=fb, mel=mel,
                      log_mel=log_mel, dct=dct, mfcc=mfcc)


def power_db(y, sr: int, *, win_length: float = 0.025, hop_length: float = 0.010,
             n_fft: int | None = None, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrogram in dB (n_frames, 1 + n_fft // 2) float32 and its bin frequencies (Hz).

    Same framing and window as :func:`mfcc_stages`, computed over blocks of
    ``block`` frames so long recordings never hold more than one block of frames.
    """
    sr = check_sample_rate(sr)
    y = check_audio(y, sr, allow_silent=True)
    win = int(round(float(win_length) * sr))
    hop = int(round(float(hop_length) * sr))
    if win < 2 or hop < 1:
        raise ParameterError(f"win_length={win_length} s / hop_length={hop_length} s are too "
                             f"short at {sr} Hz")
    n_fft = default_n_fft(win) if n_fft is None else check_positive_int(n_fft, "n_fft", minimum=2)
    pad = n_fft // 2
    padded = np.pad(y, (pad, pad))
    n_frames = 1 + (padded.size - n_fft) // hop
    window = np.zeros(n_fft, dtype=np.float32)
    left = (n_fft - win) // 2
    window[left:left + win] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    out = np.empty((n_frames, 1 + n_fft // 2), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    for a in range(0, n_frames, block):
        b = min(a + block, n_frames)
        spec = np.fft.rfft(view[a:b] * window, axis=1)
        out[a:b] = 10.0 * np.log10(np.maximum(spec.real ** 2 + spec.imag ** 2, AMIN))
    np.maximum(out, out.max() - TOP_DB, out=out)
    return out, np.linspace(0.0, sr / 2.0, out.shape[1])
