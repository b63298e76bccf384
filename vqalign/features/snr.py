"""The signal-to-noise ratio of a recording, estimated from the audio alone.

The noise's power spectrum is tracked by minimum statistics (Martin 2001, offline form):
the power spectrogram is smoothed over a few frames and bins, its minimum over a window
of about 1.7 s around each frame (:func:`local_snr_db`; 3.2 s for the whole recording's
:func:`estimate_snr_db`) is taken per bin (long enough to span a pause or a weak
consonant of running speech) and scaled by the bias of a minimum of smoothed noise power
(:data:`MIN_BIAS`). Unlike the mean of the quietest frames, this follows noise
whose level changes over the file and needs no share of pauses.

:func:`estimate_snr_db` returns ``10 log10(speech power / noise power)`` with both
averaged over the whole recording (the definition ``vqalign bench timit --snr`` mixes
at). Built-in synthesized speech (8 files of the four voices) in white noise mixed at
0 / 10 / 20 dB is estimated at -0.9..-0.3 / 9.3..9.6 / 19.1..19.5 dB (see
``tests/test_snr.py``); babble (5 other talkers), whose quietest moments are quieter than
its mean, at 8..15 / 15..23 / 23..32 dB: speech-like noise is partly taken for speech.
Clean recordings: 32-54 dB (TIMIT dev files), 24-60 dB (devdata's synthetic voices).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: FFT size and hop (samples at 16 kHz: 32 ms windows every 8 ms)
N_FFT = 512
HOP = 128
#: the power spectrogram is averaged over this many (frames, bins) before its minimum is
#: taken
SMOOTH = (9, 5)
#: frames per block and blocks per window of the running minimum: 24 frames of 8 ms
#: (0.19 s) and 4 blocks either side of the frame's own (9 blocks, 1.7 s)
BLOCK = 24
HALF_BLOCKS = 4
#: mean power of stationary Gaussian noise over the minimum statistics' estimate of it,
#: with the settings above: measured on white Gaussian noise alone (10 s, seeds 0-4:
#: 2.08-2.12; noise low-passed by a one-pole filter at 0.9: 2.13)
MIN_BIAS = 2.1
#: :func:`estimate_snr_db` takes the minimum over 8 blocks either side (3.2 s): a clean
#: recording of running speech with no pause within 0.8 s either side of a frame (devdata's
#: short eSpeak files) otherwise has its speech taken for noise there (with 4 blocks, 9 of
#: its 200 clean files were estimated at 16-27 dB; with 8, 6 at 24-30 dB; clean TIMIT dev
#: files 29-52 -> 32-54 dB); its bias, measured as MIN_BIAS's: 2.25-2.29
GLOBAL_HALF_BLOCKS = 8
GLOBAL_MIN_BIAS = 2.27
#: the estimate is clipped to this range (dB): below, the speech is lost in the noise;
#: above, the noise floor is that of a clean recording
SNR_RANGE_DB = (-20.0, 60.0)


def box_mean(a, nt, nf):
    """Mean of ``a`` (frames, bins) over ``nt`` frames and ``nf`` bins around each cell
    (edges: the cells there are)."""
    for axis, n in ((0, nt), (1, nf)):
        if n <= 1:
            continue
        h = n // 2
        c = np.cumsum(np.concatenate([np.zeros_like(np.take(a, [0], axis=axis)), a],
                                     axis=axis), axis=axis)
        m = a.shape[axis]
        lo = np.clip(np.arange(m) - h, 0, m)
        hi = np.clip(np.arange(m) + h + 1, 0, m)
        a = (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / np.expand_dims(
            hi - lo, 1 - axis).astype(a.dtype)
    return a


def power_spectrogram(y16: np.ndarray) -> np.ndarray:
    """|STFT|^2 of ``y16`` (Hann, :data:`N_FFT` / :data:`HOP`): (n_frames, N_FFT // 2 + 1)
    float64, frames whose window lies inside the signal (none for shorter audio)."""
    y = np.asarray(y16, np.float64)
    if y.size < N_FFT:
        return np.zeros((0, N_FFT // 2 + 1))
    frames = sliding_window_view(y, N_FFT)[::HOP]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    X = np.fft.rfft(frames * win, axis=1)
    return X.real ** 2 + X.imag ** 2


def running_min(a: np.ndarray, block: int = BLOCK, half_blocks: int = HALF_BLOCKS):
    """Per column of ``a`` (n_frames, n_bins): the minimum over the frames of its own
    block of ``block`` frames and of ``half_blocks`` blocks either side (fewer at the
    edges), every frame of a block getting its block's value.

    Returns
    -------
    ndarray, the shape of ``a``
    """
    n, m = a.shape
    nb = -(-n // block)
    pad = np.full((nb * block - n, m), np.inf)
    bmin = np.concatenate([a, pad]).reshape(nb, block, m).min(axis=1)   # (nb, m)
    ext = np.concatenate([np.full((half_blocks, m), np.inf), bmin,
                          np.full((half_blocks, m), np.inf)])
    win = sliding_window_view(ext, 2 * half_blocks + 1, axis=0).min(axis=-1)  # (nb, m)
    return np.repeat(win, block, axis=0)[:n]


def noise_psd(P: np.ndarray, half_blocks: int = HALF_BLOCKS,
              bias: float = MIN_BIAS) -> np.ndarray:
    """The noise's power per frame and bin of the power spectrogram ``P`` (n_frames,
    n_bins) by minimum statistics (see the module docstring) over ``half_blocks`` blocks
    either side, times ``bias``: the same shape."""
    if P.shape[0] == 0:
        return P.copy()
    S = box_mean(P, *SMOOTH)
    return bias * running_min(S, BLOCK, half_blocks)


def estimate_snr_db(y16: np.ndarray) -> float | None:
    """The recording's SNR (dB): mean speech power over mean noise power, the noise by
    :func:`noise_psd` over :data:`GLOBAL_HALF_BLOCKS`; clipped to :data:`SNR_RANGE_DB`. None for audio shorter than
    ``BLOCK`` frames (0.2 s) or all zeros.

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)
        Audio at 16 kHz.

    Returns
    -------
    float or None
    """
    P = power_spectrogram(y16)
    if P.shape[0] < BLOCK:
        return None
    total = float(P.sum(axis=1).mean())
    if total <= 0:
        return None
    noise = float(noise_psd(P, GLOBAL_HALF_BLOCKS, GLOBAL_MIN_BIAS).sum(axis=1).mean())
    lo, hi = SNR_RANGE_DB
    if noise <= total * 10.0 ** (-hi / 10):
        return hi
    speech = total - noise
    if speech <= noise * 10.0 ** (lo / 10):
        return lo
    return float(np.clip(10 * np.log10(speech / noise), lo, hi))


#: the band (Hz) whose power :func:`local_snr_db` compares: where speech has most of its
#: power and babble or white noise do not hide it wholly
LOCAL_BAND_HZ = (300.0, 4000.0)


def local_snr_db(y16: np.ndarray, at_samples: np.ndarray) -> np.ndarray:
    """The SNR (dB) of the frame of ``y16`` centred nearest each of ``at_samples``: its
    power in :data:`LOCAL_BAND_HZ` over the noise's there (:func:`noise_psd`), the
    frames' values interpolated in time. A frame of noise alone is near 0 dB (the noise
    estimate is its mean); speech well above the noise is well above 0 dB.

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)
        Audio at 16 kHz.
    at_samples : ndarray, shape (n,)
        Sample positions.

    Returns
    -------
    ndarray, shape (n,), float64
        All zeros for audio shorter than one window.
    """
    at = np.asarray(at_samples, np.float64)
    P = power_spectrogram(y16)
    if P.shape[0] == 0:
        return np.zeros(at.shape)
    b0, b1 = (int(round(f / 16000.0 * N_FFT)) for f in LOCAL_BAND_HZ)
    ps = P[:, b0:b1].sum(axis=1)
    ns = noise_psd(P)[:, b0:b1].sum(axis=1)
    loc = 10.0 * np.log10(np.maximum(ps, 1e-30) / np.maximum(ns, 1e-30))
    centres = np.arange(P.shape[0]) * HOP + N_FFT / 2.0
    return np.interp(at, centres, loc)

