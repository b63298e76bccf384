"""Frame-level speech features: MFCC (librosa or Kaldi convention), deltas, CMVN.

All functions return ``(n_frames, n_features)`` float32 matrices::

    from vqalign.features import mfcc, delta, cmvn
    X = cmvn(delta(mfcc(y, sr)))
"""

from vqalign.features.cmvn import cmvn
from vqalign.features.deltas import delta
from vqalign.features.mfcc import (
    dct_matrix,
    kaldi_filterbank,
    mfcc,
    n_frames,
    slaney_filterbank,
)

__all__ = ["mfcc", "delta", "cmvn", "n_frames", "slaney_filterbank", "kaldi_filterbank",
           "dct_matrix"]
