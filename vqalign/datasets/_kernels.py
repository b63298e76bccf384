"""Numba kernel of the synthesizer: time-varying formant filters.

Flat float64 arrays in, caller-allocated output, a status code out (0 = ok).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

STATUS_OK = 0
STATUS_BAD_SHAPE = 1


@njit(cache=True)
def render_tract(src, fric_src, freqs, bws, hop, fric_freq, fric_bw, sr, out):
    """Filter the glottal/aspiration source through a cascade of resonators and
    the frication noise through one parallel resonator; write the sum to ``out``.

    src, fric_src, fric_freq, fric_bw, out : (n,) float64
    freqs, bws : (n_formants, m) float64, centre frequency / bandwidth (Hz) of the
        cascade resonators at control points every ``hop`` samples (m = ceil(n / hop));
        sample i uses control point i // hop (the tracks are smooth: a hold of a
        fraction of a millisecond is inaudible and keeps the kernel cheap)

    Each resonator is the classic two-pole digital resonator
    ``y[n] = a x[n] + b y[n-1] + c y[n-2]`` with ``c = -exp(-2 pi B T)``,
    ``b = 2 exp(-pi B T) cos(2 pi F T)``; cascade resonators have unit gain at DC
    (``a = 1 - b - c``), the frication resonator about unit gain at its peak.
    A resonator whose frequency is <= 0 or above 0.45 sr passes its input through.
    The frication coefficients are recomputed whenever its per-sample track changes.
    Filter states carry across phones.
    """
    n = src.shape[0]
    nf = freqs.shape[0]
    if hop < 1:
        return STATUS_BAD_SHAPE
    m = (n + hop - 1) // hop
    if (fric_src.shape[0] != n or out.shape[0] != n or freqs.shape[1] != m
            or bws.shape[0] != nf or bws.shape[1] != m
            or fric_freq.shape[0] != n or fric_bw.shape[0] != n):
        return STATUS_BAD_SHAPE
    y1 = np.zeros(nf)
    y2 = np.zeros(nf)
    ca = np.zeros(nf)
    cb = np.zeros(nf)
    cc = np.zeros(nf)
    on = np.zeros(nf, dtype=np.bool_)
    fy1 = 0.0
    fy2 = 0.0
    T = 1.0 / sr
    lim = 0.45 * sr
    two_pi_t = 2.0 * math.pi * T
    last_f = -1.0
    last_b = -1.0
    fa = 1.0
    fb = 0.0
    fc = 0.0
    f_on = False
    for i in range(n):
        if i % hop == 0:
            j = i // hop
            for k in range(nf):
                f = freqs[k, j]
                on[k] = f > 0.0 and f < lim
                if on[k]:
                    r = math.exp(-math.pi * bws[k, j] * T)
                    cb[k] = 2.0 * r * math.cos(two_pi_t * f)
                    cc[k] = -r * r
                    ca[k] = 1.0 - cb[k] - cc[k]
        x = src[i]
        for k in range(nf):
            if on[k]:
                y = ca[k] * x + cb[k] * y1[k] + cc[k] * y2[k]
                y2[k] = y1[k]
                y1[k] = y
                x = y
        f = fric_freq[i]
        if f != last_f or fric_bw[i] != last_b:
            last_f = f
            last_b = fric_bw[i]
            f_on = f > 0.0 and f < lim
            if f_on:
                w = two_pi_t * f
                r = math.exp(-math.pi * last_b * T)
                fb = 2.0 * r * math.cos(w)
                fc = -r * r
                fa = (1.0 - r) * math.sqrt(1.0 - 2.0 * r * math.cos(2.0 * w) + r * r)
        if f_on:
            fy = fa * fric_src[i] + fb * fy1 + fc * fy2
        else:
            fy = fric_src[i]
        fy2 = fy1
        fy1 = fy
        out[i] = x + fy
    return STATUS_OK
