"""Cepstral mean (and variance) normalization, per utterance or over a sliding window."""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_features, check_positive_int
from vqalign.exceptions import ParameterError

_STD_FLOOR = 1e-8
_ROWS = 1 << 16


def cmvn(features, window=None, variance=True, *, in_place=False) -> np.ndarray:
    """Subtract the mean (and divide by the standard deviation) of each feature.

    Parameters
    ----------
    features : ndarray (n_frames, n_features), float
    window : int or None
        None: statistics over the whole utterance. An int: statistics over a
        centred window of ``window`` frames (``t - window // 2`` to
        ``t - window // 2 + window - 1``); near the ends the window is shifted to
        stay inside the utterance with its full size, as Kaldi's
        ``apply-cmvn-sliding --center=true`` does (shorter utterances use all
        their frames). Computed from cumulative sums, without a loop over frames.
    variance : bool
        Also scale to unit variance (standard deviations below 1e-8 are floored).
    in_place : bool
        With ``window=None``: normalize ``features`` itself (float32, C-contiguous),
        without a copy (a long recording's features, :mod:`vqalign.features.blockwise`).

    Returns
    -------
    ndarray (n_frames, n_features) float32
    """
    X = check_features(features, name="features")
    T = X.shape[0]
    if in_place and (window is not None or X is not features
                     or not X.flags.c_contiguous):
        raise ParameterError("cmvn(in_place=True) needs window=None and float32 C-contiguous "
                             "features; pass a copy without in_place otherwise")
    if window is None or check_positive_int(window, "window") >= T:
        mean = X.mean(axis=0, dtype=np.float64)
        if in_place:
            out = X
            out -= mean.astype(np.float32)
        else:
            out = (X - mean.astype(np.float32)).astype(np.float32, copy=False)
        if variance:
            # squares summed in float64 over row blocks: no (T, D) float64 copies (a
            # 3-hour recording's 1.1 M frames x 39 would be two of 337 MB)
            ss = np.zeros(out.shape[1])
            for a in range(0, T, _ROWS):
                blk = out[a:a + _ROWS].astype(np.float64)
                ss += np.einsum("ij,ij->j", blk, blk)
            std = np.sqrt(np.maximum(ss / max(T, 1), 0.0))
            out /= np.maximum(std, _STD_FLOOR).astype(np.float32)
        return out
    w = int(window)
    t = np.arange(T)
    start = np.clip(t - w // 2, 0, T - w)
    end = start + w
    X64 = X.astype(np.float64)
    c1 = np.zeros((T + 1, X.shape[1]))
    np.cumsum(X64, axis=0, out=c1[1:])
    mean = (c1[end] - c1[start]) / w
    out = X64 - mean
    if variance:
        c2 = np.zeros_like(c1)
        np.cumsum(X64 * X64, axis=0, out=c2[1:])
        var = np.maximum((c2[end] - c2[start]) / w - mean * mean, 0.0)
        out /= np.maximum(np.sqrt(var), _STD_FLOOR)
    return out.astype(np.float32)
