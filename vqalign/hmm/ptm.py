"""Phonetically-tied-mixture (PTM) emissions, as in CMU Sphinx's ``ptm_mgau``.

Each CI phone owns one codebook of diagonal Gaussians per feature stream; a senone
(a tied triphone state) has its own mixture weights over its phone's codebook. The
log emission of senone ``s`` at frame ``t`` is

    sum over streams f of  log sum_{k in top-N(cb(s), f, t)} w_f[k, s] N(x_ft; mu_fk, var_fk)

with the top-N Gaussians of each codebook and stream (``topn``, 4 in pocketsphinx).
As in pocketsphinx, each density is floored at the best density of its stream over the
codebooks in use (those of the senones asked for, pocketsphinx's active codebooks) minus
``clamp`` nats (96 quantization units of 1024 ln 1.0001), which bounds how
badly one stream can score a senone.

Gaussian log densities of one stream for all the codebooks an utterance needs are one
matrix product ``[x^2, x] @ B`` (BLAS); the top-N selection and the weighted sums are
numba kernels in :mod:`vqalign.hmm._ptm_kernels`.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.hmm import _ptm_kernels as K

__all__ = ["PTMEmissions"]

SPHINX_CLAMP = 96 * 1024.0 * math.log(1.0001)
_BLAS = None


def _one_blas_thread():
    """BLAS limited to one thread (threadpoolctl): the GEMMs here are small (frames x 26 x
    128), and waking OpenBLAS's threads costs more than the product (measured on a loaded
    2-core machine: 15 ms per product with its threads, 0.05 ms with one)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS = ThreadpoolController()
        except Exception:  # pragma: no cover - threadpoolctl is a dependency
            _BLAS = False
    if _BLAS is False:  # pragma: no cover
        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")
_LOGADD = K.logadd_table()


class PTMEmissions:
    """Log emissions of senones from per-phone codebooks and senone weights.

    Parameters
    ----------
    means, variances : list of float32 (n_cb, n_density, dim_f), one per stream
    log_mixw : float32 (n_stream, n_density, n_senone)
        Log mixture weight of each codeword for each senone.
    sen2cb : int (n_senone,)
        Codebook of each senone.
    streams : list of (start, stop)
        Columns of the feature matrix read by each stream.
    topn : int
    clamp : float or None
        Dynamic-range floor (nats below the frame's best density per stream); None: off.
    """

    def __init__(self, means, variances, log_mixw, sen2cb, streams, *, topn: int = 4,
                 clamp: float | None = SPHINX_CLAMP):
        if len(means) != len(variances) or len(means) != len(streams):
            raise ParameterError(f"{len(means)} mean streams, {len(variances)} variance "
                                 f"streams and {len(streams)} feature streams; they must agree")
        self.streams = [(int(a), int(b)) for a, b in streams]
        self.n_cb, self.n_density = int(means[0].shape[0]), int(means[0].shape[1])
        if not 1 <= int(topn) <= self.n_density:
            raise ParameterError(f"topn={topn} must be between 1 and the {self.n_density} "
                                 "Gaussians of a codebook")
        self.topn = int(topn)
        self.clamp = None if clamp is None else float(clamp)
        self.log_mixw = np.ascontiguousarray(log_mixw, dtype=np.float32)
        self.sen2cb = np.asarray(sen2cb, dtype=np.int32)
        if self.log_mixw.shape[:2] != (len(means), self.n_density):
            raise ParameterError(f"log_mixw has shape {self.log_mixw.shape}; expected "
                                 f"({len(means)}, {self.n_density}, n_senone)")
        if self.sen2cb.shape != (self.log_mixw.shape[2],) or self.sen2cb.min() < 0 or \
                self.sen2cb.max() >= self.n_cb:
            raise ParameterError("sen2cb must give a codebook in [0, n_cb) for every senone")
        self._B, self._c = [], []
        for (a, b), m, v in zip(self.streams, means, variances):
            m = np.asarray(m, dtype=np.float64)
            v = np.asarray(v, dtype=np.float64)
            if m.shape != v.shape or m.shape[:2] != (self.n_cb, self.n_density) or \
                    m.shape[2] != b - a:
                raise ParameterError(f"stream {a}-{b - 1}: means {m.shape} / variances "
                                     f"{v.shape} do not fit ({self.n_cb}, {self.n_density}, "
                                     f"{b - a})")
            if np.any(v <= 0):
                raise ParameterError("variances must be positive (floor them first)")
            iv = 1.0 / v
            # log N = c - 0.5 x^2.iv + x.(m iv)
            const = -0.5 * (np.log(2 * np.pi * v).sum(axis=2) + (m * m * iv).sum(axis=2))
            B = np.concatenate([-0.5 * iv, m * iv], axis=2)          # (n_cb, D, 2L)
            self._B.append(np.ascontiguousarray(B.transpose(2, 0, 1), dtype=np.float32))
            self._c.append(const.astype(np.float32))

    @classmethod
    def from_sphinx(cls, model, *, topn: int = 4, clamp: float | None = SPHINX_CLAMP):
        """From a :class:`vqalign.io.sphinx.SphinxModel` with one codebook per CI phone."""
        from vqalign.features.sphinx import front_end_from_params

        fe = front_end_from_params(model.feat_params, source=str(model.path / "feat.params"))
        n_mgau = model.means[0].shape[0]
        if n_mgau == model.mdef.n_ci:
            sen2cb = model.mdef.sen2ci
        elif n_mgau == 1:
            sen2cb = np.zeros(model.mdef.n_sen, dtype=np.int32)
        else:
            raise ParameterError(f"{model.path}: {n_mgau} codebooks; only PTM (one per CI "
                                 "phone) and semi-continuous (one) models are implemented")
        return cls(model.means, model.variances, model.log_mixw, sen2cb, fe.streams,
                   topn=topn, clamp=clamp)

    def _check_X(self, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind != "f":
            raise ParameterError(f"features must be a 2-D float array (n_frames, dim), got "
                                 f"{X.dtype} {X.shape}")
        dim = self.streams[-1][1]
        if X.shape[1] != dim:
            raise ParameterError(f"features have {X.shape[1]} columns but the model's streams "
                                 f"need {dim} (Sphinx 1s_c_d_dd features: "
                                 "vqalign.features.sphinx.sphinx_features)")
        if not np.isfinite(X).all():
            t = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
            raise ParameterError(f"features hold NaN or inf at frame {t}")
        return X

    def _check_senones(self, senones):
        sen = np.asarray(senones, dtype=np.int64)
        n_sen_total = self.log_mixw.shape[2]
        if sen.ndim != 1 or sen.size == 0 or sen.min() < 0 or sen.max() >= n_sen_total:
            raise ParameterError(f"senones must be a non-empty list of ids in [0, {n_sen_total})")
        return sen

    def top_densities(self, X, codebooks, *, frames=None):
        """Top-N Gaussians of the given codebooks for every frame and stream.

        ``frames`` (len(codebooks), 2) int, optional: codebook ``k`` is evaluated only at
        frames ``frames[k, 0] <= t < frames[k, 1]`` (e.g. where an alignment can reach its
        phones); its densities are -inf elsewhere. ``codebooks`` must then be unique.

        Returns a dict ``{"codebooks", "lo", "hi", "idx", "val", "floor"}`` that
        :meth:`senone_log_emit` reads: idx/val (n_stream, T, n_cb, topn), floor
        (n_stream, T); a senone's emission is -inf outside its codebook's frames.
        """
        X = self._check_X(X)
        T = X.shape[0]
        cb_in = np.asarray(codebooks, dtype=np.int64).ravel()
        cbs, first = np.unique(cb_in, return_index=True)
        if cbs.size == 0 or cbs.min() < 0 or cbs.max() >= self.n_cb:
            raise ParameterError(f"codebooks must be ids in [0, {self.n_cb})")
        if frames is None:
            lo = np.zeros(cbs.size, dtype=np.int64)
            hi = np.full(cbs.size, T, dtype=np.int64)
        else:
            fr = np.asarray(frames, dtype=np.int64)
            if cbs.size != cb_in.size or fr.shape != (cb_in.size, 2):
                raise ParameterError("frames must be (len(codebooks), 2) [start, stop) per "
                                     "codebook, with each codebook given once")
            lo = np.clip(fr[first, 0], 0, T)
            hi = np.clip(fr[first, 1], 0, T)
        F = len(self.streams)
        out = {"codebooks": cbs, "lo": lo, "hi": hi,
               "idx": np.empty((F, T, cbs.size, self.topn), dtype=np.int32),
               "val": np.empty((F, T, cbs.size, self.topn), dtype=np.float32),
               "floor": np.empty((F, T), dtype=np.float32)}
        with _one_blas_thread():
            self._top_streams(X, cbs, lo, hi, out)
        return out

    def _top_streams(self, X, cbs, lo, hi, out):
        T = X.shape[0]
        for f, (a, b) in enumerate(self.streams):
            x = np.ascontiguousarray(X[:, a:b], dtype=np.float32)
            feats = np.concatenate([x * x, x], axis=1)                    # (T, 2L)
            D = self.n_density
            scores = np.empty((cbs.size, T, D), dtype=np.float32)
            for k, c in enumerate(cbs):          # one GEMM per codebook, on its frames only
                if hi[k] > lo[k]:
                    blk = scores[k, lo[k]:hi[k]]
                    np.matmul(feats[lo[k]:hi[k]], self._B[f][:, c, :], out=blk)
                    blk += self._c[f][c]
            idx, val = out["idx"][f], out["val"][f]
            st = K.topn_per_codebook(scores, self.topn, lo, hi, idx, val)
            if st != K.OK:
                raise ParameterError(f"Gaussian log densities are NaN at frame "
                                     f"{int(idx[0, 0, 0])}; check the model's variances")
            K.frame_floor(val, np.inf if self.clamp is None else self.clamp, out["floor"][f])

    def senone_log_emit(self, top, senones) -> np.ndarray:
        """(T, len(senones)) float32 log emissions from :meth:`top_densities` output."""
        sen = self._check_senones(senones)
        cbs = top["codebooks"]
        need = self.sen2cb[sen]
        local = np.searchsorted(cbs, need)
        if np.any(local >= cbs.size) or np.any(cbs[np.minimum(local, cbs.size - 1)] != need):
            raise ParameterError("a senone's codebook is missing from the top densities; "
                                 "pass its codebook to top_densities")
        local = local.astype(np.int32)
        T = top["idx"].shape[1]
        out = np.empty((T, sen.size), dtype=np.float32)
        lw = np.ascontiguousarray(self.log_mixw[:, :, sen])
        K.senone_scores(top["idx"], top["val"], top["floor"], lw, local, top["lo"], top["hi"],
                        _LOGADD, out)
        return out

    def log_emit(self, X, senones) -> np.ndarray:
        """(T, len(senones)) float32 log emissions of the given senones."""
        sen = self._check_senones(senones)
        return self.senone_log_emit(self.top_densities(X, self.sen2cb[sen]), sen)
