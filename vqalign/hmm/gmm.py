"""Diagonal-covariance Gaussian mixtures that stream over large frame matrices.

Log-likelihoods are computed in row blocks (never an N x K matrix for large N):
a BLAS expansion for large ``K * D`` and a fused numba loop for small models.
With ``top_n`` the E-step keeps only each frame's ``n`` best Gaussians
(the usual Gaussian selection of semi-continuous HMMs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from vqalign._validation import (
    check_features,
    check_finite_block,
    check_positive_int,
    check_random_state,
)
from vqalign.exceptions import ConvergenceWarning, ParameterError
from vqalign.hmm import _kernels as K
from vqalign.hmm.monitor import ConvergenceMonitor

__all__ = ["DiagGMM", "diag_gmm"]

LOG_2PI = math.log(2.0 * math.pi)
#: elements per (block, K) scratch matrix (~32 MB of float64)
BLOCK_ELEMENTS = 1 << 22
#: below this K * D the fused numba loop beats BLAS
FUSED_MAX_KD = 2048
#: below this many multiply-adds a kernel runs on the calling thread (thread start-up
#: costs more than the work, and far more when the cores are shared)
PARALLEL_MIN_WORK = 4_000_000


def _fused_loglik(b, means, inv_var, log_const, out):
    T = b.shape[0]
    if T * means.size >= PARALLEL_MIN_WORK:
        K.diag_gauss_loglik(b, means, inv_var, log_const, out)
    else:
        K.diag_gauss_loglik_rows(b, means, inv_var, log_const, out, 0, T)


def _fused_topn(b, means, inv_var, log_const, idx, val):
    T = b.shape[0]
    if T * means.size >= PARALLEL_MIN_WORK:
        K.diag_gauss_topn(b, means, inv_var, log_const, idx, val)
    else:
        K.diag_gauss_topn_rows(b, means, inv_var, log_const, idx, val, 0, T)


def _topn_select(ll, idx, val):
    if ll.size >= PARALLEL_MIN_WORK:
        K.topn_from_block(ll, idx, val)
    else:
        K.topn_from_block_rows(ll, idx, val, 0, ll.shape[0])


def _as_frames(X, name="X"):
    """An (N, D) float array, or the ``.X`` memmap of a feature store."""
    if hasattr(X, "X") and not isinstance(X, np.ndarray):
        X = X.X
    return check_features(X, name=name, dtype=X.dtype if getattr(X, "dtype", None) in
                          (np.float32, np.float64) else np.float32)


def _augment(b):
    """[x^2, x, 1] rows (float64) for the one-GEMM Gaussian log-likelihoods."""
    B, D = b.shape
    z = np.empty((B, 2 * D + 1))
    z[:, D:2 * D] = b
    np.multiply(z[:, D:2 * D], z[:, D:2 * D], out=z[:, :D])
    z[:, 2 * D] = 1.0
    return z


def _blocks(N, K, block_size=None):
    b = block_size or max(256, min(65536, BLOCK_ELEMENTS // max(K, 1)))
    for i in range(0, N, b):
        yield i, min(N, i + b)


def _read_block(X, i, j, name="X"):
    blk = np.ascontiguousarray(X[i:j])
    if isinstance(X, np.memmap):
        check_finite_block(blk, name=name, offset=i)
    return blk


class DiagGMM:
    """Gaussian mixture with diagonal covariances, trained by EM.

    Parameters
    ----------
    n_components : int
        Number of Gaussians K.
    var_floor : float
        Variance floor as a fraction of the data's per-dimension variance
        (HTK/Kaldi style); variances never fall below it.
    n_iter : int
        Maximum EM iterations.
    tol : float
        Stop when the mean log-likelihood per frame improves by less than this.
    init_means : (K, D) array, optional
        Initial means (e.g. an LBG codebook); otherwise K random distinct frames.
        Initial variances and weights come from the hard assignment of every frame
        to its nearest mean (per-cluster statistics).
    random_state : int, Generator or None
    top_n : int, optional
        Keep only each frame's ``top_n`` most likely Gaussians in the E-step.
    block_size : int, optional
        Rows per block (default: about 8M / K).
    shortlist : int, optional
        Gaussian selection for large models (needs ``top_n``): each frame's
        E-step scores only the ``shortlist`` Gaussians whose means are nearest
        (Euclidean) to the frame's nearest mean, instead of all K (the
        codebook-based selection of semi-continuous HMMs). That mean comes from
        :func:`vqalign.lbg.nearest.near_codes` (the exact nearest, or one of
        the nearest few when proving it would need a full search); the
        neighbour lists are rebuilt from the means at every iteration. The log-likelihood is
        then summed over the selected Gaussians only (a lower bound of the
        full mixture's).

    Attributes
    ----------
    weights_ (K,), means_ (K, D), variances_ (K, D) float64, history_ (History),
    n_iter_, converged_, var_floor_ (D,) absolute floor used.
    """

    def __init__(self, n_components, *, var_floor=1e-3, n_iter=20, tol=1e-4, init_means=None,
                 random_state=None, top_n=None, block_size=None, verbose=False,
                 shortlist=None):
        self.n_components = n_components
        self.var_floor = var_floor
        self.n_iter = n_iter
        self.tol = tol
        self.init_means = init_means
        self.random_state = random_state
        self.top_n = top_n
        self.block_size = block_size
        self.verbose = verbose
        self.shortlist = shortlist

    # ------------------------------------------------------------------ setup
    def _check_params(self, D=None):
        K_ = check_positive_int(self.n_components, "n_components")
        if not (isinstance(self.var_floor, (int, float)) and 0 <= self.var_floor < 1):
            raise ParameterError(f"var_floor={self.var_floor!r}; use a fraction of the global "
                                 "variance in [0, 1), e.g. 1e-3")
        check_positive_int(self.n_iter, "n_iter", minimum=0)
        if self.top_n is not None:
            n = check_positive_int(self.top_n, "top_n")
            if n > K_:
                raise ParameterError(f"top_n={n} exceeds n_components={K_}")
        if getattr(self, "shortlist", None) is not None:
            m = check_positive_int(self.shortlist, "shortlist")
            if self.top_n is None or m < int(self.top_n) or m > K_:
                raise ParameterError(
                    f"shortlist={m} needs top_n <= shortlist <= n_components={K_} (top_n="
                    f"{self.top_n!r}): the E-step keeps each frame's top_n of its shortlist")
        return K_

    @classmethod
    def from_codebook(cls, codebook, X, *, var_floor=1e-3, shrinkage=0.0, max_frames=None,
                      **kwargs) -> DiagGMM:
        """A GMM whose means are ``codebook`` and whose variances and weights are the
        per-cluster statistics of ``X`` assigned to its nearest code (one pass of
        :func:`vqalign.lbg.nearest.assign`, the project's one nearest-code search).

        ``shrinkage`` (frames) pulls each cluster's variance towards the global one,
        ``n / (n + shrinkage)`` of its own (small clusters stay usable); clusters with
        at most one frame then take the global variance. ``max_frames`` computes the
        statistics on that many evenly spaced frames of ``X`` (plenty for variances).
        Returns an initialized model (``fit`` may refine it further with EM).
        """
        C = check_features(codebook, name="codebook", dtype=np.float64)
        gmm = cls(C.shape[0], var_floor=var_floor, init_means=C, **kwargs)
        X = _as_frames(X)
        if X.shape[1] != C.shape[1]:
            raise ParameterError(f"codebook has {C.shape[1]} dimensions but X has {X.shape[1]}; "
                                 "use a codebook trained on the same features")
        if isinstance(shrinkage, bool) or not (isinstance(shrinkage, (int, float))
                                               and shrinkage >= 0):
            raise ParameterError(f"shrinkage={shrinkage!r}; use a number of frames >= 0")
        if max_frames is not None:
            max_frames = check_positive_int(max_frames, "max_frames", minimum=2)
            if X.shape[0] > max_frames:
                X = np.asarray(X[np.linspace(0, X.shape[0] - 1, max_frames).astype(np.int64)])
        gmm._check_params()
        gmm._init_from_means(X, C, shrinkage=float(shrinkage))
        gmm.history_ = None
        gmm.n_iter_ = 0
        gmm.converged_ = False
        return gmm

    def _global_stats(self, X):
        n = 0
        s = np.zeros(X.shape[1])
        ss = np.zeros(X.shape[1])
        for i, j in _blocks(X.shape[0], 1, 1 << 18):
            b = _read_block(X, i, j).astype(np.float64)
            n += b.shape[0]
            s += b.sum(0)
            ss += (b * b).sum(0)
        mean = s / n
        var = np.maximum(ss / n - mean ** 2, 0.0)
        return mean, var

    def _init_from_means(self, X, C, shrinkage=0.0):
        from vqalign.lbg.nearest import assign, prepare  # noqa: PLC0415

        N, D = X.shape
        Kc = C.shape[0]
        _, gvar = self._global_stats(X)
        self.var_floor_ = np.maximum(self.var_floor * gvar, 1e-10)
        nk = np.zeros(Kc)
        fk = np.zeros((Kc, D))
        sk = np.zeros((Kc, D))
        one = np.ones((1, 1))
        P = prepare(np.asarray(C, dtype=np.float32))
        for i, j in _blocks(N, Kc, self.block_size):
            b = _read_block(X, i, j)
            labels = assign(np.ascontiguousarray(b, dtype=np.float32), P).labels
            K.accumulate_gauss_stats(b, labels.reshape(-1, 1),
                                     np.broadcast_to(one, (b.shape[0], 1)).copy(), nk, fk, sk)
        self._m_step(nk, fk, sk, N, init=True, C=C, gvar=gvar, shrinkage=shrinkage)

    def _m_step(self, nk, fk, sk, N, *, init=False, C=None, gvar=None, shrinkage=0.0):
        Kc = nk.shape[0]
        used = nk > (1.0 if shrinkage > 0 else 1e-10)
        if init:
            means = np.array(C, dtype=np.float64, copy=True)
            variances = np.tile(gvar, (Kc, 1)).astype(np.float64)
        else:
            means = self.means_.copy()
            variances = self.variances_.copy()
        safe = np.where(used, nk, 1.0)[:, None]
        if not init:
            means[used] = (fk / safe)[used]
        mu = means
        var = sk / safe - 2.0 * mu * fk / safe + mu * mu
        variances[used] = var[used]
        if shrinkage > 0 and gvar is not None:
            w = (nk / (nk + shrinkage))[:, None]
            variances = w * variances + (1.0 - w) * gvar[None, :]
        variances = np.maximum(variances, self.var_floor_[None, :])
        w = nk / max(N, 1)
        w = np.maximum(w, 1e-10)
        self.weights_ = w / w.sum()
        self.means_ = means
        self.variances_ = variances
        self._cache()

    def _cache(self):
        self._inv_var = 1.0 / self.variances_
        self._log_const = -0.5 * (self.means_.shape[1] * LOG_2PI
                                  + np.log(self.variances_).sum(1))
        mu_iv = self.means_ * self._inv_var
        # log N(x | k) = [x^2, x, 1] @ aug[:, k]: one GEMM per block of rows
        self._aug = np.ascontiguousarray(np.concatenate(
            [-0.5 * self._inv_var.T, mu_iv.T,
             (self._log_const - 0.5 * (self.means_ * mu_iv).sum(1))[None, :]], axis=0))

    def _check_fitted(self):
        if not hasattr(self, "means_"):
            raise ParameterError("this DiagGMM is not fitted yet; call fit(X) or "
                                 "DiagGMM.from_codebook(codebook, X) first")

    # ------------------------------------------------------------- likelihoods
    def _block_buffer(self, N):
        """One (rows, K) float64 scratch reused by every block of a call: fresh large
        allocations page-fault on each block, which costs more than the GEMM."""
        rows = min(N, next(iter(_blocks(N, self.n_components, self.block_size)))[1])
        return np.empty((rows, self.n_components))

    def _component_block(self, b, buf=None):
        """(B, K) float64 log N(x | k) (no weights) for one block of rows (into buf)."""
        Kc, D = self.means_.shape
        out = np.empty((b.shape[0], Kc)) if buf is None else buf[:b.shape[0]]
        if Kc * D <= FUSED_MAX_KD:
            _fused_loglik(b, self.means_, self._inv_var, self._log_const, out)
        else:
            np.dot(_augment(b), self._aug, out=out)
        return out

    def log_component_likelihoods(self, X, *, weighted=False) -> np.ndarray:
        """(T, K) float64 ``log N(x_t | k)`` (plus ``log w_k`` if ``weighted``), in blocks.

        This materializes T x K: use :meth:`top_n_components` for long inputs.
        """
        self._check_fitted()
        X = _as_frames(X)
        self._check_dim(X)
        out = np.empty((X.shape[0], self.n_components))
        for i, j in _blocks(X.shape[0], self.n_components, self.block_size):
            self._component_block(_read_block(X, i, j), out[i:j])
        if weighted:
            out += np.log(self.weights_)[None, :]
        return out

    def _check_dim(self, X):
        if X.shape[1] != self.means_.shape[1]:
            raise ParameterError(f"X has {X.shape[1]} features per frame but the GMM was trained "
                                 f"on {self.means_.shape[1]}; use the same feature settings")

    def top_n_components(self, X, n=None):
        """Each frame's ``n`` most likely Gaussians (by ``log N(x | k)``, unweighted).

        Returns ``(idx int32 (T, n), loglik float32 (T, n))`` best first, computed
        block by block (fused numba loop for small models, BLAS + selection else);
        no (T, K) array is built.
        """
        self._check_fitted()
        n = check_positive_int(self.top_n if n is None else n, "n")
        Kc, D = self.means_.shape
        if n > Kc:
            raise ParameterError(f"n={n} exceeds the {Kc} Gaussians of the model")
        X = _as_frames(X)
        self._check_dim(X)
        T = X.shape[0]
        idx = np.empty((T, n), dtype=np.int32)
        val = np.empty((T, n), dtype=np.float32)
        buf = self._block_buffer(T) if Kc * D > FUSED_MAX_KD else None
        for i, j in _blocks(T, Kc, self.block_size):
            b = _read_block(X, i, j)
            if buf is None:
                _fused_topn(b, self.means_, self._inv_var, self._log_const, idx[i:j], val[i:j])
            else:
                _topn_select(self._component_block(b, buf), idx[i:j], val[i:j])
        return idx, val

    def rescore(self, X, candidates, n):
        """Like :meth:`top_n_components`, but only among each frame's ``candidates``.

        ``candidates`` (T, C) int32 are Gaussian indices (e.g. a wider top-3n list taken
        before the Gaussians moved a little in an EM update); they are scored exactly and
        the best ``n`` returned as ``(idx int32 (T, n), loglik float32 (T, n))``.
        """
        self._check_fitted()
        X = np.ascontiguousarray(_as_frames(X), dtype=np.float32)
        self._check_dim(X)
        cand = np.ascontiguousarray(candidates, dtype=np.int32)
        if cand.ndim != 2 or cand.shape[0] != X.shape[0]:
            raise ParameterError(f"candidates must be (n_frames, n_candidates) = ({X.shape[0]}, "
                                 f"C), got shape {cand.shape}")
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_components):
            raise ParameterError(f"candidates must be Gaussian indices in [0, "
                                 f"{self.n_components})")
        n = min(check_positive_int(n, "n"), cand.shape[1])
        idx = np.empty((X.shape[0], n), np.int32)
        val = np.empty((X.shape[0], n), np.float32)
        K.rescore_candidates(X, cand, self.means_.astype(np.float32),
                             self._inv_var.astype(np.float32),
                             self._log_const.astype(np.float32), n, idx, val)
        return idx, val

    def update_from_stats(self, nk, fk, sk, *, min_count=3.0, means=True, variances=True):
        """M-step from accumulated statistics: occupancy ``nk`` (K,), first and second
        moments ``fk``, ``sk`` (K, D). Components with ``nk <= min_count`` keep their
        parameters; variances are floored at ``var_floor_``. Returns self."""
        self._check_fitted()
        nk = np.asarray(nk, dtype=np.float64)
        live = nk > float(min_count)
        if not live.any():
            return self
        mean = np.asarray(fk, np.float64)[live] / nk[live, None]
        m = self.means_.copy()
        if means:
            m[live] = mean
        if variances:
            var = np.asarray(sk, np.float64)[live] / nk[live, None] - mean ** 2
            v = self.variances_.copy()
            v[live] = var
            self.variances_ = np.maximum(v, self.var_floor_[None, :])
        self.means_ = m
        self._cache()
        return self

    def score_samples(self, X) -> np.ndarray:
        """(T,) float64 ``log p(x_t)`` under the full mixture (blocks, no T x K kept)."""
        self._check_fitted()
        X = _as_frames(X)
        self._check_dim(X)
        out = np.empty(X.shape[0])
        lw = np.log(self.weights_)[None, :]
        buf = self._block_buffer(X.shape[0])
        for i, j in _blocks(X.shape[0], self.n_components, self.block_size):
            ll = self._component_block(_read_block(X, i, j), buf)
            ll += lw
            m = ll.max(axis=1)
            ll -= m[:, None]
            np.exp(ll, out=ll)
            out[i:j] = m + np.log(ll.sum(1))
        return out

    def score(self, X) -> float:
        """Mean log-likelihood per frame."""
        return float(self.score_samples(X).mean())

    # -------------------------------------------------------------------- EM
    def _e_step_shortlist(self, X):
        """E-step over each frame's shortlist (see ``shortlist``): (total, nk, fk, sk)."""
        from vqalign.lbg.nearest import code_neighbours, near_codes, prepare  # noqa: PLC0415

        Kc, D = self.means_.shape
        M = int(self.shortlist)
        n = int(self.top_n)
        P = prepare(self.means_.astype(np.float32))
        nbr, rad = code_neighbours(P, M)
        means = self.means_.astype(np.float32)
        iv = self._inv_var.astype(np.float32)
        lc = self._log_const.astype(np.float32)
        lw = np.log(self.weights_)
        nk = np.zeros(Kc)
        fk = np.zeros((Kc, D))
        sk = np.zeros((Kc, D))
        total = 0.0
        for i, j in _blocks(X.shape[0], 1, 1 << 20):
            b = np.ascontiguousarray(_read_block(X, i, j), dtype=np.float32)
            lab = near_codes(b, P)
            idx = np.empty((b.shape[0], n), np.int32)
            val = np.empty((b.shape[0], n), np.float32)
            K.rescore_candidates(b, nbr[lab], means, iv, lc, n, idx, val)
            ll = val.astype(np.float64) + lw[idx]
            m = ll.max(axis=1, keepdims=True)
            r = np.exp(ll - m)
            s_ = r.sum(1, keepdims=True)
            total += float((m[:, 0] + np.log(s_[:, 0])).sum())
            r /= s_
            K.accumulate_gauss_stats(b, idx, r, nk, fk, sk)
        return total, nk, fk, sk

    def _e_step(self, X):
        """One pass: (total log-likelihood, nk, fk, sk)."""
        if getattr(self, "shortlist", None) is not None:
            return self._e_step_shortlist(X)
        Kc, D = self.means_.shape
        nk = np.zeros(Kc)
        fk = np.zeros((Kc, D))
        sk = np.zeros((Kc, D))
        total = 0.0
        lw = np.log(self.weights_)
        buf = self._block_buffer(X.shape[0]) if (self.top_n is None
                                                  or Kc * D > FUSED_MAX_KD) else None
        for i, j in _blocks(X.shape[0], Kc, self.block_size):
            b = _read_block(X, i, j)
            if self.top_n is not None:
                n = int(self.top_n)
                idx = np.empty((b.shape[0], n), dtype=np.int32)
                val = np.empty((b.shape[0], n), dtype=np.float32)
                if buf is None:
                    _fused_topn(b, self.means_, self._inv_var, self._log_const, idx, val)
                else:
                    _topn_select(self._component_block(b, buf), idx, val)
                ll = val.astype(np.float64) + lw[idx]
                m = ll.max(axis=1, keepdims=True)
                r = np.exp(ll - m)
                s = r.sum(1, keepdims=True)
                total += float((m[:, 0] + np.log(s[:, 0])).sum())
                r /= s
                K.accumulate_gauss_stats(b, idx, r, nk, fk, sk)
            else:
                r = self._component_block(b, buf)
                r += lw[None, :]
                m = r.max(axis=1, keepdims=True)
                r -= m
                np.exp(r, out=r)
                s = r.sum(1, keepdims=True)
                total += float((m[:, 0] + np.log(s[:, 0])).sum())
                r /= s
                b64 = b.astype(np.float64)
                nk += r.sum(0)
                fk += r.T @ b64
                sk += r.T @ (b64 * b64)
        return total, nk, fk, sk

    def fit(self, X) -> DiagGMM:
        """EM on ``X`` ((N, D) array, memmap, or a feature store with ``.X``)."""
        Kc = self._check_params()
        X = _as_frames(X)
        N, D = X.shape
        if N < Kc:
            raise ParameterError(f"X has {N} frames but n_components={Kc}; use fewer Gaussians "
                                 "or more data")
        if self.init_means is not None:
            C = check_features(self.init_means, name="init_means", dtype=np.float64)
            if C.shape != (Kc, D):
                raise ParameterError(f"init_means has shape {C.shape}, expected ({Kc}, {D})")
        else:
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(N, size=Kc, replace=False))
            C = np.asarray(X[rows], dtype=np.float64)
            # break exact duplicates so every Gaussian starts somewhere distinct
            C += 1e-6 * rng.standard_normal(C.shape) * (np.abs(C).mean() + 1e-12)
        self._init_from_means(X, C)
        monitor = ConvergenceMonitor(tol=self.tol, n_iter=self.n_iter, verbose=self.verbose,
                                     name="DiagGMM")
        for _ in range(int(self.n_iter)):
            total, nk, fk, sk = self._e_step(X)
            monitor.report(total, N, n_codes=Kc, samples_seen=N * (monitor.iter + 1),
                           counts=nk)
            if monitor.reached_tol:
                break
            self._m_step(nk, fk, sk, N)
        self.history_ = monitor.history
        self.n_iter_ = monitor.iter
        self.converged_ = monitor.reached_tol
        if not self.converged_ and self.n_iter > 0:
            warnings.warn(f"DiagGMM did not converge in {self.n_iter} iterations (tol={self.tol}); "
                          "increase n_iter", ConvergenceWarning, stacklevel=2)
        self.fit_seconds_ = monitor.elapsed
        return self

    def __repr__(self):
        return (f"DiagGMM(n_components={self.n_components}, var_floor={self.var_floor}, "
                f"top_n={self.top_n})")


def diag_gmm(X, n_components, **kwargs):
    """Fit a :class:`DiagGMM` and return ``(weights, means, variances)``."""
    g = DiagGMM(n_components, **kwargs).fit(X)
    return g.weights_, g.means_, g.variances_

