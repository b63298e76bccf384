"""What the tied-mixture E-step keeps and returns: each frame's Gaussian selection and
the additive sufficient statistics that the M-step (or a streamed corpus) sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Selection", "SufficientStats"]


@dataclass
class Selection:
    """Each frame's top-n Gaussians.

    Parameters
    ----------
    idx : ndarray, int32, shape (N, n)
        The n best Gaussians of every frame.
    eg : ndarray, float64, shape (N, n)
        ``exp(loglik - gmax)`` of each.
    gmax : ndarray, float64, shape (N,)
        The best log-likelihood of every frame.
    cand : ndarray, int32, shape (N, C), optional
        Wider candidates, re-scored after the Gaussians move.
    """

    idx: np.ndarray
    eg: np.ndarray
    gmax: np.ndarray
    cand: np.ndarray | None = None

    @classmethod
    def from_loglik(cls, idx, val, cand=None):
        """From the top-n indices ``idx`` (N, n) and their log-likelihoods ``val`` (N, n),
        best first."""
        gmax = val[:, 0].astype(np.float64)
        with np.errstate(under="ignore"):
            eg = np.exp(val.astype(np.float64) - gmax[:, None])
        return cls(np.ascontiguousarray(idx, dtype=np.int32), eg, gmax, cand)

    def rows(self, a, b):
        """The selection of frames ``a:b``."""
        return Selection(self.idx[a:b], self.eg[a:b], self.gmax[a:b],
                         None if self.cand is None else self.cand[a:b])


@dataclass
class SufficientStats:
    """Additive E-step statistics of a set of utterances (sum them with ``+``)."""

    counts: np.ndarray                 # (E, K) expected Gaussian counts per column
    trans: np.ndarray                  # (E, 3) expected self / next / skip per column
    silence: np.ndarray                # (2,) entries into / skips over the optional silence
    occ: np.ndarray | None = None      # (K,) Gaussian occupancy
    sx: np.ndarray | None = None       # (K, D) first moments
    sxx: np.ndarray | None = None      # (K, D) second moments
    loglik: float = 0.0                # total log-likelihood of the utterances that worked
    n_frames: int = 0
    n_utterances: int = 0
    failures: list = field(default_factory=list)   # (utterance id, message)
    status: np.ndarray | None = None   # per utterance of the last E-step (not summed)
    cells: np.ndarray | None = None    # band cells stored per utterance (not summed)

    def __add__(self, other: SufficientStats) -> SufficientStats:
        def add(a, b):
            return None if a is None or b is None else a + b
        return SufficientStats(self.counts + other.counts, self.trans + other.trans,
                               self.silence + other.silence, add(self.occ, other.occ),
                               add(self.sx, other.sx), add(self.sxx, other.sxx),
                               self.loglik + other.loglik, self.n_frames + other.n_frames,
                               self.n_utterances + other.n_utterances,
                               self.failures + other.failures)

    __radd__ = __add__


def join_frames(Xs):
    """The utterances' frames as one C-contiguous float32 array: a view when they are
    consecutive rows of one buffer (a long recording cut into windows), else a copy.

    Parameters
    ----------
    Xs : list of ndarray, shape (T_u, D)

    Returns
    -------
    ndarray, shape (sum T_u, D), float32
    """
    first = Xs[0]
    owner = first.base
    D = first.shape[1] if first.ndim == 2 else -1
    same = owner is not None and all(
        X.base is owner and X.ndim == 2 and X.shape[1] == D and X.dtype == np.float32
        and X.flags.c_contiguous for X in Xs)
    if same:
        ptr = first.__array_interface__["data"][0]
        for X in Xs:
            if X.__array_interface__["data"][0] != ptr:
                same = False
                break
            ptr += X.nbytes
    if same:   # rows of one allocation (their common base), back to back
        n = sum(X.shape[0] for X in Xs)
        # (writeable like its rows: a read-only view would be a new type for the kernels)
        return np.lib.stride_tricks.as_strided(first, shape=(n, D), strides=first.strides)
    return np.ascontiguousarray(np.concatenate(Xs), dtype=np.float32)
