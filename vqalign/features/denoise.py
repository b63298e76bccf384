"""Stationary noise taken out of a short recording before it is aligned.

White or other steady noise at 5-15 dB SNR fills the pauses and the weak consonants with
frames that every model (the self-trained ones, vqalign's English prior, the Sphinx model)
scores as speech: on the 40 TIMIT dev files in white noise at 10 dB the default's words
were 30.9 ms mean against 17.5 clean. :func:`spectral_subtract` estimates the noise's power
spectrum from the quietest frames and subtracts it (power spectral subtraction with
over-subtraction and a spectral floor, Boll 1979 / Berouti et al. 1979; the a posteriori
SNR is averaged over 5 frames and 3 bins first, against musical noise), keeping the noisy
phase. :func:`vqalign.align.utterance.prepare` applies it to recordings of up to 90 s whose
loudness range shows heavy noise (:data:`DENOISE_BELOW_DB`) and whose quietest frames are
broadband noise (:data:`MIN_FLATNESS`), and says so in a warning: on
clean speech it costs accuracy (TIMIT 17.5 -> 19.9 ms when applied to every file), and on
babble it does not help.

Measured with ``vqalign bench timit --corpus ../shared/devdata/timit --noise KIND --snr DB``
(default mode, words mean; before -> with it; pocketsphinx in the same run): white 10 dB
30.9 -> 22.7 ms (33.9), white 5 dB 52.2 -> 25.1 ms (51.3), babble 10 dB 29.8 -> 29.8 ms
(36.3); clean files are not touched (their ranges are 30-60 dB). On the built-in
synthesizer's voices (8 utterances each, white noise): 5 dB 39.5 -> 26.1 ms; 10 dB mixed,
17.6 -> 17.6, 24.5 -> 24.7 and 18.8 -> 25.3 ms on three seeds (a word then sometimes takes
in the pause after it).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vqalign.features.snr import box_mean as _box

#: a recording whose loudness range (dB, :func:`vqalign.align.utterance.loudness_range_db`)
#: is under this gets the subtraction: white noise at 10 dB SNR gives 14-19 dB on the TIMIT
#: dev files (helped), at 20 dB 24-29 dB (hurt); real read speech (LibriVox, pocketsphinx's
#: test data) 23-27 dB and clean TIMIT 30-60 dB stay as they are. None: never.
DENOISE_BELOW_DB: float | None = 20.0
#: FFT size and hop (samples at 16 kHz: 32 ms windows every 8 ms)
N_FFT = 512
HOP = 128
#: over-subtraction factor and spectral floor (of the noisy power)
OVER = 2.0
FLOOR = 0.05
#: the a posteriori SNR averaged over (frames, bins) before the gain (against musical
#: noise); None: not smoothed
SMOOTH: tuple | None = (5, 3)
#: the share of frames, the quietest, that the noise spectrum is averaged over
QUIET_SHARE = 0.1
#: ... and the spectral flatness (geometric over arithmetic mean, DC left out) it must have:
#: the subtraction is for broadband noise. White noise at 5-10 dB SNR gives 0.965-0.99
#: (TIMIT dev files, built-in voices); a small loudness range without noise does not: clean
#: eSpeak files with few pauses 0.16-0.45 (two of devdata's 200 were denoised without
#: this check, and its corpus-mode phones went 12.8 -> 13.6 ms), babble at 10 dB
#: 0.08-0.46, LibriVox and pocketsphinx's recordings 0.03-0.34
MIN_FLATNESS = 0.9


def spectral_subtract(y16: np.ndarray) -> np.ndarray | None:
    """``y16`` with its stationary noise subtracted (see the module docstring).

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)
        Audio at 16 kHz.

    Returns
    -------
    ndarray, shape (n_samples,), float32, or None
        The same length; ``y16`` itself (as float32) when it is shorter than one window;
        None when its quietest frames are not broadband noise (:data:`MIN_FLATNESS`).
    """
    y = np.asarray(y16, np.float32)
    if y.size < N_FFT:
        return y
    pad = np.concatenate([np.zeros(N_FFT, np.float32), y, np.zeros(N_FFT, np.float32)])
    frames = sliding_window_view(pad, N_FFT)[::HOP]            # (n_frames, N_FFT), a view
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    X = np.fft.rfft(frames * win, axis=1)
    P = (X.real ** 2 + X.imag ** 2).astype(np.float32)
    e = P.sum(axis=1)
    quiet = e <= np.quantile(e, QUIET_SHARE)
    noise = P[quiet].mean(axis=0)
    n1 = noise[1:].astype(np.float64) + 1e-30
    if np.exp(np.mean(np.log(n1))) / np.mean(n1) < MIN_FLATNESS:
        return None
    snr = P / np.maximum(noise, 1e-20)
    if SMOOTH:
        snr = _box(snr, *SMOOTH)
    gain = np.sqrt(np.maximum(1.0 - OVER / np.maximum(snr, 1e-20), FLOOR))
    Y = np.fft.irfft(X * gain, n=N_FFT, axis=1).astype(np.float32) * win
    # overlap-add: every output hop is the sum of the 4 frame quarters that cover it
    k = N_FFT // HOP
    n = Y.shape[0]
    quarters = Y.reshape(n, k, HOP)
    out = np.zeros((n + k - 1, HOP), np.float32)
    for j in range(k):                                          # 4 shifted adds
        out[j:j + n] += quarters[:, j]
    norm = float(np.sum(win ** 2) / HOP)                        # periodic Hann: constant
    flat = out.ravel() / norm
    return np.ascontiguousarray(flat[N_FFT:N_FFT + y.size])


def wanted(range_db) -> bool:
    """Whether a recording of loudness range ``range_db`` (dB, or None) is denoised."""
    return (DENOISE_BELOW_DB is not None and range_db is not None
            and range_db < DENOISE_BELOW_DB)
