"""Numba kernels of the codec: closed-loop differential (DPCM) coding of F0 contours."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def dpcm_encode(lf, voiced, book, start, codes, dec):
    """Closed-loop DPCM vector quantization of log-F0 contours.

    lf (k, n) float32 contours; voiced (k,) bool; book (K, n) float32 codes of
    the change from the previous decoded value; start: the value before the first
    voiced token. Fills codes (k,) int32 (0 for unvoiced tokens) and dec (k, n)
    float32 (the decoder's contours; the previous value where unvoiced). Returns 0.
    """
    k, n = lf.shape
    K = book.shape[0]
    prev = start
    for i in range(k):
        if not voiced[i]:
            codes[i] = 0
            for j in range(n):
                dec[i, j] = prev
            continue
        best = 0
        bd = np.inf
        for c in range(K):
            d = 0.0
            for j in range(n):
                e = lf[i, j] - prev - book[c, j]
                d += e * e
            if d < bd:
                bd = d
                best = c
        codes[i] = best
        for j in range(n):
            dec[i, j] = prev + book[best, j]
        prev = dec[i, n - 1]
    return 0


@njit(cache=True)
def dpcm_decode(codes, voiced, book, start, dec):
    """The contours (k, n) float32 that :func:`dpcm_encode` reconstructs from codes (k,)."""
    k = codes.shape[0]
    n = book.shape[1]
    prev = start
    for i in range(k):
        if not voiced[i]:
            for j in range(n):
                dec[i, j] = prev
            continue
        for j in range(n):
            dec[i, j] = prev + book[codes[i], j]
        prev = dec[i, n - 1]
    return 0
