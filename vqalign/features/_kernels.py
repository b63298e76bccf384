"""Numba kernels for feature extraction.

Flat arrays in, caller-allocated outputs, no exceptions: the Python side in
:mod:`vqalign.features.mfcc` validates every argument before calling. All
kernels are ``nogil`` so that blocks of frames can be processed by several
threads at once (framing -> FFT in scipy -> mel energies), each block staying
in the core's cache.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vqalign._jit import fast_cache_loads

FLT_EPSILON = np.float32(np.finfo(np.float32).eps)


@njit(cache=True, nogil=True)
def frame_window(y, start, hop, window, t0, out):
    """Windowed frames of ``y`` into ``out[:, :len(window)]``.

    Row ``i`` holds ``y[(t0 + i) * hop + start + j] * window[j]``; samples
    outside ``y`` are zero (the zero padding of ``center=True``). Columns from
    ``len(window)`` on are left untouched (the caller zeroes them once).
    Returns 0.
    """
    n = y.shape[0]
    L = window.shape[0]
    for i in range(out.shape[0]):
        base = (t0 + i) * hop + start
        if base >= 0 and base + L <= n:
            for j in range(L):
                out[i, j] = y[base + j] * window[j]
        else:
            for j in range(L):
                k = base + j
                if k >= 0 and k < n:
                    out[i, j] = y[k] * window[j]
                else:
                    out[i, j] = 0.0
    return 0


@njit(cache=True, nogil=True)
def frame_kaldi(y, hop, window, scale, preemph, remove_dc, t0, out, log_energy):
    """Kaldi-style frames (snip_edges): scale, remove DC, log raw energy, pre-emphasis, window.

    ``log_energy[t0 + i]`` receives ``log(max(sum(frame**2), FLT_EPSILON))`` of
    the frame after DC removal and before pre-emphasis (Kaldi's raw_energy).
    Returns 0.
    """
    L = window.shape[0]
    eps = 1.1920928955078125e-07
    for i in range(out.shape[0]):
        base = (t0 + i) * hop
        mean = 0.0
        if remove_dc:
            for j in range(L):
                mean += y[base + j]
            mean = mean * scale / L
        energy = 0.0
        for j in range(L):
            v = y[base + j] * scale - mean
            out[i, j] = v
            energy += v * v
        log_energy[t0 + i] = math.log(max(energy, eps))
        if preemph != 0.0:
            for j in range(L - 1, 0, -1):
                out[i, j] = out[i, j] - preemph * out[i, j - 1]
            out[i, 0] = out[i, 0] - preemph * out[i, 0]
        for j in range(L):
            out[i, j] = out[i, j] * window[j]
    return 0


@njit(cache=True, nogil=True, fastmath=True)
def mel_power(spec, bin_lo, bin_hi, band_lo, band_off, weights, floor, power_t, acc, out):
    """Power spectrum -> mel energies -> floor, fused, for a block of complex spectra.

    ``spec`` is ``complex64_spectra.view(np.float32)`` (n_bins, 2 * n_block):
    bins along rows, frames along columns (``scipy.fft.rfft(frames.T, axis=0)``),
    so that every step below runs over the frames of the block at once (SIMD).
    The filterbank is given band by band as its nonzero span: band ``m`` starts
    at bin ``band_lo[m]`` and has the weights ``weights[band_off[m]:band_off[m + 1]]``
    on consecutive bins. Only bins in ``[bin_lo, bin_hi)`` (the union of the
    spans) are squared, into the scratch ``power_t`` (n_bins, >= n_block)
    float32; each band's weighted sum accumulates in the scratch ``acc``
    (>= n_block) float32. ``out[i, m] = max(sum_k w_mk |X_ki|^2, floor)``.
    Returns 0.
    """
    nb = out.shape[0]
    n_mels = out.shape[1]
    for k in range(bin_lo, bin_hi):
        for i in range(nb):
            a = spec[k, 2 * i]
            b = spec[k, 2 * i + 1]
            power_t[k, i] = a * a + b * b
    for m in range(n_mels):
        o0 = band_off[m]
        s = band_lo[m]
        for i in range(nb):
            acc[i] = 0.0
        for j in range(band_off[m + 1] - o0):
            w = weights[o0 + j]
            for i in range(nb):
                acc[i] += w * power_t[s + j, i]
        for i in range(nb):
            v = acc[i]
            out[i, m] = v if v > floor else floor
    return 0


# --------------------------------------------------------------------------- Sphinx front end
# constants of pocketsphinx's fe_noise.c (spectral subtraction with temporal masking)
_NS_SMOOTH = 4
_NS_LAMBDA_POWER = 0.7
_NS_LAMBDA_A = 0.995
_NS_LAMBDA_B = 0.5
_NS_LAMBDA_T = 0.85
_NS_MU_T = 0.2
_NS_MAX_GAIN = 20.0


@njit(cache=True, nogil=True)
def sphinx_remove_noise(mfspec, power, noise, floor, peak, signal, gain):
    """Sphinx ``remove_noise``: noise estimation and spectral subtraction, in place.

    ``mfspec`` (T, n_filt) float64 holds mel energies (before the log); frame by frame
    the smoothed power, the noise (lower envelope of the power), the signal floor and
    the temporal-masking peak are updated and each band is multiplied by its gain
    smoothed over +-4 bands. ``power .. gain`` are (n_filt,) float64 scratch arrays
    (their content on entry is ignored: the state starts from frame 0). Returns 0.
    """
    T = mfspec.shape[0]
    nf = mfspec.shape[1]
    if T == 0:
        return 0
    for i in range(nf):
        power[i] = mfspec[0, i]
        noise[i] = mfspec[0, i] / _NS_MAX_GAIN
        floor[i] = mfspec[0, i] / _NS_MAX_GAIN
        peak[i] = 0.0
    for t in range(T):
        for i in range(nf):
            power[i] = _NS_LAMBDA_POWER * power[i] + (1.0 - _NS_LAMBDA_POWER) * mfspec[t, i]
        for i in range(nf):
            if power[i] >= noise[i]:
                noise[i] = _NS_LAMBDA_A * noise[i] + (1.0 - _NS_LAMBDA_A) * power[i]
            else:
                noise[i] = _NS_LAMBDA_B * noise[i] + (1.0 - _NS_LAMBDA_B) * power[i]
        for i in range(nf):
            s = power[i] - noise[i]
            signal[i] = s if s >= 1.0 else 1.0
        for i in range(nf):
            if signal[i] >= floor[i]:
                floor[i] = _NS_LAMBDA_A * floor[i] + (1.0 - _NS_LAMBDA_A) * signal[i]
            else:
                floor[i] = _NS_LAMBDA_B * floor[i] + (1.0 - _NS_LAMBDA_B) * signal[i]
        for i in range(nf):
            cur = signal[i]
            peak[i] *= _NS_LAMBDA_T
            if signal[i] < _NS_LAMBDA_T * peak[i]:
                signal[i] = peak[i] * _NS_MU_T
            if cur > peak[i]:
                peak[i] = cur
        for i in range(nf):
            if signal[i] < floor[i]:
                signal[i] = floor[i]
        for i in range(nf):
            if signal[i] < _NS_MAX_GAIN * power[i]:
                gain[i] = signal[i] / power[i]
            else:
                gain[i] = _NS_MAX_GAIN
            if gain[i] < 1.0 / _NS_MAX_GAIN:
                gain[i] = 1.0 / _NS_MAX_GAIN
        for i in range(nf):
            lo = i - _NS_SMOOTH if i - _NS_SMOOTH > 0 else 0
            hi = i + _NS_SMOOTH if i + _NS_SMOOTH < nf - 1 else nf - 1
            c = 0.0
            for j in range(lo, hi + 1):
                c += gain[j]
            mfspec[t, i] = mfspec[t, i] * (c / (hi - lo + 1))
    return 0


fast_cache_loads(globals())
