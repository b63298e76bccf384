"""Numba kernel of the synthesizer: glottal source and time-varying formant filters.

Flat float arrays in, caller-allocated output, a status code out (0 = ok).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vqalign._jit import fast_cache_loads

STATUS_OK = 0
STATUS_BAD_SHAPE = 1


_SQRT12 = math.sqrt(12.0)


@njit(cache=True)
def _next_uniform(state):
    """xorshift64 step (Marsaglia 13/7/17): (new state, uniform float in [-0.5, 0.5)).

    Only shifts and xors, so the pure-Python path (NUMBA_DISABLE_JIT=1) gives the
    same numbers without overflow warnings.
    """
    x = state
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x, (x >> np.uint64(11)) * (1.0 / 9007199254740992.0) - 0.5


@njit(cache=True)
def white_noise(seed, out):
    """Fill ``out`` with unit-variance uniform white noise from a xorshift64 stream.

    seed : int64, non-zero. Deterministic: the same seed gives the same samples.
    """
    state = np.uint64(seed) | np.uint64(1)
    for i in range(out.shape[0]):
        state, u = _next_uniform(state)
        out[i] = _SQRT12 * u
    return STATUS_OK


@njit(cache=True)
def render(f0c, hop, phase0, open_frac, close_frac, breath, av, ah, af, bp,
           seed_a, seed_f, freqs, bws, fric_freq, fric_bw, sr, out):
    """Render one utterance into ``out`` (n,) float64.

    f0c : (m,) f0 in Hz at control points every ``hop`` samples (m = ceil(n / hop))
    phase0 : initial glottal phase in [0, 1)
    open_frac, close_frac : Rosenberg pulse opening / closing fractions of a period
    breath : breathiness (aspiration noise gated by the open glottis, times ``av``)
    av, ah, af, bp : (n,) voicing, aspiration, frication and flat-noise amplitudes
    seed_a, seed_f : int64 seeds of the aspiration and frication noise streams
        (unit-variance uniform white noise, xorshift64)
    freqs, bws : (n_formants, m) cascade resonator frequencies / bandwidths (Hz)
        at the control points (sample i uses point i // hop: the tracks are smooth,
        so holding them for a fraction of a millisecond is inaudible and cheap)
    fric_freq, fric_bw : (n,) parallel frication resonator (coefficients are
        recomputed whenever the track changes)

    Source: the derivative of a Rosenberg glottal pulse (lip radiation included),
    plus breathiness and aspiration noise, into a cascade of two-pole resonators
    ``y[n] = a x[n] + b y[n-1] + c y[n-2]``, ``c = -exp(-2 pi B T)``,
    ``b = 2 exp(-pi B T) cos(2 pi F T)``, ``a = 1 - b - c`` (unit gain at DC).
    Frication: first-differenced noise through one resonator with about unit peak
    gain, plus ``bp`` times the differenced noise unfiltered. A resonator whose
    frequency is <= 0 or >= 0.45 sr passes its input through. Filter states carry
    across phones, so nothing clicks at a boundary.
    """
    n = out.shape[0]
    nf = freqs.shape[0]
    if hop < 1:
        return STATUS_BAD_SHAPE
    m = (n + hop - 1) // hop
    if (f0c.shape[0] != m or freqs.shape[1] != m or bws.shape[0] != nf or bws.shape[1] != m
            or av.shape[0] != n or ah.shape[0] != n or af.shape[0] != n or bp.shape[0] != n

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
    to = open_frac
    tc = close_frac
    k_open = 0.05 * math.pi / to
    k_close = -0.05 * math.pi / tc
    ph = phase0
    inc = 0.0
    prev_nf = 0.0
    sa = np.uint64(seed_a) | np.uint64(1)
    sf = np.uint64(seed_f) | np.uint64(1)
    for i in range(n):
        if i % hop == 0:
            j = i // hop
            inc = f0c[j] * T
            for k in range(nf):
                f = freqs[k, j]
                on[k] = f > 0.0 and f < lim
                if on[k]:
                    r = math.exp(-math.pi * bws[k, j] * T)
                    cb[k] = 2.0 * r * math.cos(two_pi_t * f)
                    cc[k] = -r * r
                    ca[k] = 1.0 - cb[k] - cc[k]
        # glottal source
        ph += inc
        if ph >= 1.0:
            ph -= math.floor(ph)
        if ph < to:
            dg = k_open * math.sin(math.pi * ph / to)
            gate = 1.0
        elif ph < to + tc:
            dg = k_close * math.sin(0.5 * math.pi * (ph - to) / tc)
            gate = 1.0
        else:
            dg = 0.0
            gate = 0.0
        sa, na = _next_uniform(sa)
        na *= _SQRT12
        x = av[i] * (dg + breath * na * gate) + 0.06 * ah[i] * na
        for k in range(nf):
            if on[k]:
                y = ca[k] * x + cb[k] * y1[k] + cc[k] * y2[k]
                y2[k] = y1[k]
                y1[k] = y
                x = y
        # frication
        sf, nf_i = _next_uniform(sf)
        nf_i *= _SQRT12
        hp = nf_i - prev_nf
        prev_nf = nf_i
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
            fy = fa * af[i] * hp + fb * fy1 + fc * fy2
        else:
            fy = af[i] * hp
        fy2 = fy1
        fy1 = fy
        out[i] = x + fy + bp[i] * hp
    return STATUS_OK


fast_cache_loads(globals())
