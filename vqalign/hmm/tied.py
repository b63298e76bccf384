"""Tied-mixture (semi-continuous) emissions: K shared Gaussians, one weight vector per state.

``log p_e(x) = logsumexp_k (log w[e, k] + log N(x | k))``. With Gaussian
selection the sum runs over each frame's top-n Gaussians only, computed in one
numba pass without any (T, E, K) array; without it, in row blocks through a
(B, K) x (K, E) product.
"""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_positive_int
from vqalign.exceptions import ParameterError
from vqalign.hmm import _kernels as K
from vqalign.hmm.gmm import PARALLEL_MIN_WORK, DiagGMM, _as_frames, _blocks, _read_block

__all__ = ["TiedMixture"]


class TiedMixture:
    """Shared :class:`DiagGMM` Gaussians plus a weight matrix ``(E, K)``.

    Parameters
    ----------
    gmm : DiagGMM
        Fitted Gaussians (its own ``weights_`` are not used).
    log_weights : (E, K) array
        Log mixture weights per emission column; each row must sum to 1 in
        probability (``logsumexp(row) == 0``).
    top_n : int, optional
        Gaussians kept per frame when :meth:`emissions` is given raw frames
        (default: the GMM's ``top_n``, else all of them).
    """

    def __init__(self, gmm: DiagGMM, log_weights, *, top_n=None):
        if not isinstance(gmm, DiagGMM):
            raise ParameterError(f"gmm must be a fitted DiagGMM, got {type(gmm).__name__}")
        gmm._check_fitted()
        self.gmm = gmm
        self.log_weights = self._check_log_weights(log_weights, gmm.n_components)
        self.top_n = top_n if top_n is not None else gmm.top_n
        self._W = None

    @staticmethod
    def _check_log_weights(log_weights, n_components):
        lw = np.asarray(log_weights, dtype=np.float64)
        if lw.ndim != 2 or lw.shape[1] != n_components:
            raise ParameterError(f"log_weights must be (n_emit, {n_components}) for the "
                                 f"{n_components} Gaussians, got shape {lw.shape}")
        if np.isnan(lw).any() or np.any(lw > 1e-9):
            raise ParameterError("log_weights hold NaN or a weight > 1; pass logs of "
                                 "probabilities (np.log(weights))")
        sums = np.exp(lw).sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if bad.size:
            e = int(bad[0])
            raise ParameterError(
                f"mixture weights of emission column {e} sum to {sums[e]:.6g}, not 1 "
                f"({bad.size} of {lw.shape[0]} rows are off); normalize each row "
                "(w / w.sum(axis=1, keepdims=True))")
        return np.ascontiguousarray(lw)

    @classmethod
    def uniform(cls, gmm: DiagGMM, n_emit: int, **kwargs) -> TiedMixture:
        """Every column with equal weights 1/K (a flat start)."""
        n_emit = check_positive_int(n_emit, "n_emit")
        k = gmm.n_components
        return cls(gmm, np.full((n_emit, k), -np.log(k)), **kwargs)

    @property
    def n_emit(self) -> int:
        return self.log_weights.shape[0]

    @property
    def weights(self) -> np.ndarray:
        return np.exp(self.log_weights)

    def select(self, X, n=None):
        """Top-n Gaussians of each frame: ``(idx int32 (T, n), loglik float32 (T, n))``."""
        n = n or self.top_n or self.gmm.n_components
        return self.gmm.top_n_components(X, n)

    def _columns(self, columns):
        if columns is None:
            return np.arange(self.n_emit, dtype=np.int32)
        cols = np.unique(np.asarray(columns, dtype=np.int64))
        if cols.size and (cols[0] < 0 or cols[-1] >= self.n_emit):
            raise ParameterError(f"columns must lie in [0, {self.n_emit}), got {cols[[0, -1]]}")
        return cols.astype(np.int32)

    def emissions(self, X=None, *, selected=None, columns=None, dtype=np.float64):
        """(T, E) log-likelihood of every frame under every emission column.

        Pass raw frames ``X`` or a precomputed ``(idx, loglik)`` from :meth:`select`
        (positionally or as ``selected=``). ``columns`` restricts the work to those columns (others
        are -inf), e.g. the emission ids of one utterance.
        """
        cols = self._columns(columns)
        if selected is None and isinstance(X, tuple) and len(X) == 2:
            X, selected = None, X                      # emissions((idx, loglik))
        if selected is None and X is None:
            raise ParameterError("pass frames X or selected=(idx, loglik)")
        if selected is None and (self.top_n is None or self.top_n >= self.gmm.n_components):
            return self._emissions_full(X, cols, dtype)
        idx, val = selected if selected is not None else self.select(X)
        idx, val = self._check_selected(idx, val)
        out = np.full((idx.shape[0], self.n_emit), -np.inf, dtype=dtype)
        W = self._linear_weights()
        if idx.size * cols.size >= PARALLEL_MIN_WORK:
            K.tied_emissions_topn(idx, val, W, self.log_weights, cols, out)
        else:
            K.tied_emissions_rows(idx, val, W, self.log_weights, cols, out, 0, idx.shape[0])
        return out

    def _linear_weights(self):
        # cached exp(log_weights); invalidated by update_weights
        if getattr(self, "_W", None) is None:
            self._W = np.exp(self.log_weights)
        return self._W

    def _check_selected(self, idx, val):
        idx = np.ascontiguousarray(idx, dtype=np.int32)
        val = np.ascontiguousarray(val)
        if idx.ndim != 2 or idx.shape != val.shape:
            raise ParameterError(f"selected=(idx, loglik) must be two (T, n) arrays, got shapes "
                                 f"{idx.shape} and {val.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.gmm.n_components):
            raise ParameterError(f"selected Gaussian indices must lie in [0, "
                                 f"{self.gmm.n_components})")
        if val.dtype not in (np.float32, np.float64):
            val = val.astype(np.float64)
        if np.isnan(val).any():
            raise ParameterError("selected log-likelihoods contain NaN; check the features")
        return idx, val

    def _emissions_full(self, X, cols, dtype):
        X = _as_frames(X)
        self.gmm._check_dim(X)
        T = X.shape[0]
        out = np.full((T, self.n_emit), -np.inf, dtype=dtype)
        W = np.exp(self.log_weights[cols]).T          # (K, C)
        buf = self.gmm._block_buffer(T)
        for i, j in _blocks(T, self.gmm.n_components, self.gmm.block_size):
            ll = self.gmm._component_block(_read_block(X, i, j), buf)
            m = ll.max(axis=1, keepdims=True)
            ll -= m
            np.exp(ll, out=ll)
            with np.errstate(divide="ignore"):
                out[i:j, cols] = np.log(ll @ W) + m
        return out

    def accumulate(self, post_emit, X=None, *, selected=None, counts=None, gauss_stats=None):
        """Expected mixture counts (E, K) from emission posteriors ``post_emit`` (T, E).

        The responsibility of Gaussian k in column e at frame t is
        ``w[e, k] N(x_t | k) / p_e(x_t)`` (over the selected Gaussians when
        ``selected`` is given). Adds into ``counts`` if given. With
        ``gauss_stats=(nk, fk, sk)`` also accumulates per-Gaussian occupancy and
        moments (needs ``X``) for re-estimating means and variances.
        """
        post = np.ascontiguousarray(post_emit, dtype=np.float64)
        if post.ndim != 2 or post.shape[1] != self.n_emit:
            raise ParameterError(f"post_emit must be (T, {self.n_emit}), got shape {post.shape}")
        if counts is None:
            counts = np.zeros((self.n_emit, self.gmm.n_components))
        if selected is None and self.top_n is not None and self.top_n < self.gmm.n_components:
            selected = self.select(X)
        if selected is not None:
            idx, val = self._check_selected(*selected)
            if idx.shape[0] != post.shape[0]:
                raise ParameterError(f"post_emit has {post.shape[0]} frames but selected has "
                                     f"{idx.shape[0]}")
            if gauss_stats is not None:
                Xf = np.ascontiguousarray(_as_frames(X))
                nk, fk, sk = gauss_stats
                K.tied_accumulate_stats(idx, val, self._linear_weights(), self.log_weights,
                                        post, Xf, counts, nk, fk, sk, True)
            else:
                dummy = np.zeros((1, 1))
                K.tied_accumulate_stats(idx, val, self._linear_weights(), self.log_weights,
                                        post, dummy, counts, dummy[0], dummy, dummy, False)
            return counts
        return self._accumulate_full(post, X, counts, gauss_stats)

    def _accumulate_full(self, post, X, counts, gauss_stats):
        X = _as_frames(X)
        self.gmm._check_dim(X)
        W = np.exp(self.log_weights)                   # (E, K)
        buf = self.gmm._block_buffer(X.shape[0])
        for i, j in _blocks(X.shape[0], self.gmm.n_components, self.gmm.block_size):
            b = _read_block(X, i, j)
            N = self.gmm._component_block(b, buf)
            N -= N.max(axis=1, keepdims=True)
            np.exp(N, out=N)                           # (B, K) scaled densities
            P = N @ W.T                                # (B, E) scaled p_e(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                G = np.where(post[i:j] > 0, post[i:j] / P, 0.0)
            counts += W * (G.T @ N)
            if gauss_stats is not None:
                occ = N * (G @ W)                      # (B, K) per-Gaussian occupancy
                nk, fk, sk = gauss_stats
                b64 = b.astype(np.float64)
                nk += occ.sum(0)
                fk += occ.T @ b64
                sk += occ.T @ (b64 * b64)
        return counts

    def update_weights(self, counts, floor=1e-5) -> TiedMixture:
        """M-step: ``w[e] = counts[e] / counts[e].sum()``, floored at ``floor`` and
        renormalized. Rows without counts keep their weights. Returns self."""
        c = np.asarray(counts, dtype=np.float64)
        if c.shape != self.log_weights.shape:
            raise ParameterError(f"counts must be {self.log_weights.shape}, got {c.shape}")
        if not (0 <= floor < 1.0 / self.gmm.n_components):
            raise ParameterError(f"floor={floor} must be in [0, 1/K) = [0, "
                                 f"{1.0 / self.gmm.n_components:.3g})")
        tot = c.sum(axis=1)
        rows = tot > 0
        w = c[rows] / tot[rows, None]
        if floor > 0:
            w = np.maximum(w, floor)
            w /= w.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            self.log_weights[rows] = np.log(w)
        self._W = None
        return self
