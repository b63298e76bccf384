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

Adaptation (MAP EM on utterances with fixed graphs): :class:`PTMStatistics` gathers the
Gaussian posteriors along Viterbi paths, :func:`map_mixture_weights` and
:func:`map_means` re-estimate, :class:`MAPAdaptation` runs the EM steps and keeps their
history (``vqalign.align.sphinx.SphinxAligner.adapt`` builds the graphs and calls it).
"""

from __future__ import annotations

import math

import numpy as np

from vqalign._threads import one_blas_thread
from vqalign.exceptions import ParameterError
from vqalign.hmm import _ptm_kernels as K

__all__ = ["PTMEmissions", "PTMStatistics", "MAPAdaptation", "map_mixture_weights",
           "map_means"]

SPHINX_CLAMP = 96 * 1024.0 * math.log(1.0001)
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
        self.means, self.variances = list(means), list(variances)
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

    def replace(self, *, means=None, log_mixw=None) -> PTMEmissions:
        """The same emissions (variances, codebook map, streams, topn, clamp) with other
        means and / or log mixture weights."""
        return PTMEmissions(self.means if means is None else means, self.variances,
                            self.log_mixw if log_mixw is None else log_mixw, self.sen2cb,
                            self.streams, topn=self.topn, clamp=self.clamp)

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
        with one_blas_thread():
            self._top_streams(X, cbs, lo, hi, out)
        return out

    def _top_streams(self, X, cbs, lo, hi, out):
        T = X.shape[0]
        D = self.n_density
        scores = np.empty((cbs.size, T, D), dtype=np.float32)       # reused by every stream
        clamp = np.inf if self.clamp is None else self.clamp
        for f, (a, b) in enumerate(self.streams):
            x = np.ascontiguousarray(X[:, a:b], dtype=np.float32)
            feats = np.concatenate([x * x, x], axis=1)                    # (T, 2L)
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
            K.frame_floor(val, clamp, out["floor"][f])

    def senone_log_emit(self, top, senones) -> np.ndarray:
        """(T, len(senones)) float32 log emissions from :meth:`top_densities` output."""
        sen = self._check_senones(senones)
        cbs = top["codebooks"]
        need = self.sen2cb[sen]
        local = np.searchsorted(cbs, need)
        if np.any(local >= cbs.size) or np.any(cbs[np.minimum(local, cbs.size - 1)] != need):
            raise ParameterError("a senone's codebook is missing from the top densities; "
                                 "pass its codebook to top_densities")
        T = top["idx"].shape[1]
        out = np.empty((T, sen.size), dtype=np.float32)
        # the senones grouped by codebook (the kernel's inner loop), each to its column
        order = np.argsort(local, kind="stable")
        grouped = local[order]
        first = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1])))
        lw = np.ascontiguousarray(self.log_mixw[:, :, sen[order]])
        K.senone_scores(top["idx"], top["val"], top["floor"], lw,
                        grouped[first].astype(np.int64),
                        np.append(first, sen.size).astype(np.int64), order.astype(np.int64),
                        top["lo"], top["hi"], _LOGADD, out, np.empty(sen.size, np.float32))
        return out

    def log_emit(self, X, senones) -> np.ndarray:
        """(T, len(senones)) float32 log emissions of the given senones."""
        sen = self._check_senones(senones)
        return self.senone_log_emit(self.top_densities(X, self.sen2cb[sen]), sen)


# --------------------------------------------------------------------------- adaptation

class PTMStatistics:
    """Sufficient statistics of the Gaussians along senone paths (an E-step).

    For every frame ``t`` of a path with senone ``s_t`` and every stream ``f``, the
    posterior of each of the senone's top-N Gaussians ``k`` (the emission's own terms
    ``w_f[k, s_t] max(N_k, floor)``, normalized over the top N) is added to

    * ``counts`` (n_stream, n_density, n_senone) float64: per senone and codeword;
    * with ``means=True``, ``g`` (list per stream of (n_cb, n_density)) and ``gx`` (list
      per stream of (n_cb, n_density, dim_f)): per codebook, the posteriors and the
      posterior-weighted features.

    ``loglik`` and ``n_frames`` sum what :meth:`add_path` is given.
    """

    def __init__(self, emissions: PTMEmissions, *, means: bool = False):
        em = emissions
        F, D, n_sen = em.log_mixw.shape
        self.emissions = em
        self.counts = np.zeros((F, D, n_sen))
        self.g = [np.zeros((em.n_cb, D)) for _ in range(F)] if means else None
        self.gx = [np.zeros((em.n_cb, D, b - a)) for a, b in em.streams] if means else None
        self.loglik, self.n_frames = 0.0, 0

    def add_path(self, X, top, senone_path, *, loglik: float = 0.0):
        """Add one utterance: features ``X`` (T, dim), ``top`` from
        :meth:`PTMEmissions.top_densities` on ``X`` (holding every codebook of the path,
        on all frames), ``senone_path`` (T,) the senone of every frame."""
        em = self.emissions
        F, D, n_sen = em.log_mixw.shape
        s_t = np.asarray(senone_path, dtype=np.int64)
        T = X.shape[0]
        if s_t.shape != (T,) or top["idx"].shape[1] != T:
            raise ParameterError(f"the senone path has shape {s_t.shape} and the top "
                                 f"densities {top['idx'].shape[1]} frames, but the features "
                                 f"have {T} frames; they must agree")
        cbs = top["codebooks"]
        c_t = np.searchsorted(cbs, em.sen2cb[s_t])
        if np.any(c_t >= cbs.size) or np.any(cbs[np.minimum(c_t, cbs.size - 1)] !=
                                              em.sen2cb[s_t]):
            raise ParameterError("a senone of the path has its codebook missing from the "
                                 "top densities; pass its codebook to top_densities")
        t = np.arange(T)
        for f, (a, b) in enumerate(em.streams):
            ix = top["idx"][f, t, c_t].astype(np.int64)          # (T, topn)
            dens = np.maximum(top["val"][f, t, c_t], top["floor"][f][:, None])
            lw = em.log_mixw[f][ix, s_t[:, None]].astype(np.float64)
            z = lw + dens
            z -= z.max(axis=1, keepdims=True)
            g = np.exp(z)
            g /= g.sum(axis=1, keepdims=True)
            # scatter-adds as bincounts over flat indices (np.add.at is ~10x slower)
            flat = (ix * n_sen + s_t[:, None]).ravel()
            self.counts[f] += np.bincount(flat, weights=g.ravel(),
                                          minlength=D * n_sen).reshape(D, n_sen)
            if self.g is not None:
                flat = (em.sen2cb[s_t][:, None].astype(np.int64) * D + ix).ravel()
                n_rows = em.n_cb * D
                self.g[f] += np.bincount(flat, weights=g.ravel(),
                                         minlength=n_rows).reshape(em.n_cb, D)
                xs = X[:, a:b].astype(np.float64)
                for j in range(b - a):
                    self.gx[f][:, :, j] += np.bincount(
                        flat, weights=(g * xs[:, j:j + 1]).ravel(),
                        minlength=n_rows).reshape(em.n_cb, D)
        self.loglik += float(loglik)
        self.n_frames += T
        return self


def map_mixture_weights(w0, counts, tau: float) -> np.ndarray:
    """MAP mixture weights under a Dirichlet prior ``tau * w0``: ``(tau w0_k + n_k) /
    (tau + N)`` (senones without counts keep ``w0``), normalized and floored as
    :func:`vqalign.io.sphinx.read_mixture_weights` would, so a saved model reads back as
    it was. ``w0``, ``counts``: (n_stream, n_density, n_senone); returns float32 logs."""
    from vqalign.io.sphinx import normalize_mixture_weights

    N = counts.sum(axis=1, keepdims=True)                  # (F, 1, n_sen)
    w = (tau * w0 + counts) / (tau + N)
    w = normalize_mixture_weights(w.transpose(0, 2, 1)).transpose(0, 2, 1)
    return np.ascontiguousarray(np.log(w.astype(np.float64)), dtype=np.float32)


def map_means(means0, g, gx, tau: float) -> list:
    """MAP Gaussian means ``(tau mu0 + sum g x) / (tau + sum g)`` per stream (float32)."""
    out = []
    for mu0, g_f, gx_f in zip(means0, g, gx):
        mu = (tau * mu0.astype(np.float64) + gx_f) / (tau + g_f[:, :, None])
        out.append(mu.astype(np.float32))
    return out


class MAPAdaptation:
    """MAP EM of a :class:`PTMEmissions` model on utterances with fixed graphs.

    Each step aligns every utterance through its graph (the engine's Viterbi) with the
    current model, the data log-likelihood being the sum of the best paths'
    log-probabilities; gathers :class:`PTMStatistics` along the paths; re-estimates each
    senone's weights by :func:`map_mixture_weights` under a Dirichlet prior of weight
    ``tau`` frames centred on the initial weights (and with ``update="means"`` the
    codebooks' means by :func:`map_means`, weight ``tau_means``; variances kept).

    With weights only, the emission is linear in the weights and the prior's mode is the
    initial model, so the first step cannot lower the data log-likelihood, and each step
    raises log-likelihood + log-prior; ``history_`` records both per step.

    Attributes after :meth:`fit`: ``emissions_`` (the adapted :class:`PTMEmissions`),
    ``log_mixw_``, ``means_``, ``history_`` (one dict per step: step, log_likelihood,
    frame_loglik, log_prior, objective, n_frames, n_senones_seen, seconds since fit
    began).
    """

    def __init__(self, *, update: str = "weights", tau: float = 10.0,
                 tau_means: float = 5.0, n_iter: int = 3):
        self.update = update
        self.tau = tau
        self.tau_means = tau_means
        self.n_iter = n_iter

    def _validate_params(self):
        if self.update not in ("weights", "means"):
            raise ParameterError(f"update={self.update!r}: use 'weights' (senone mixture "
                                 "weights) or 'means' (weights, then the Gaussian means too)")
        for name in ("tau", "tau_means"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"{name} must be a positive number of frames, got {v!r}")
        if not (isinstance(self.n_iter, int) and self.n_iter >= 1):
            raise ParameterError(f"n_iter must be an int >= 1, got {self.n_iter!r}")

    def fit(self, emissions: PTMEmissions, utterances, *, hop_s: float = 0.01):
        """``utterances``: ``[(X, senones, topology), ...]``: features (T, dim), the
        senones of the graph (unique, sorted: emission column ``j`` is ``senones[j]``),
        and a :class:`vqalign.hmm.Topology` over those columns. Returns self."""
        import time

        from vqalign.hmm import viterbi
        from vqalign.hmm.threads import threads

        self._validate_params()
        utts = list(utterances)
        if not utts:
            raise ParameterError("no utterances to adapt on")
        t0 = time.perf_counter()
        em0 = emissions
        w0 = np.exp(em0.log_mixw.astype(np.float64))
        w0 /= w0.sum(axis=1, keepdims=True)
        means = [np.asarray(x, dtype=np.float32) for x in em0.means]
        log_w = em0.log_mixw
        history = []
        want_means = self.update == "means"
        for step in range(self.n_iter + 1):
            em = em0.replace(means=means, log_mixw=log_w)
            stats = PTMStatistics(em, means=want_means)
            for X, senones, topo in utts:
                senones = np.asarray(senones, dtype=np.int64)
                cbs = np.unique(em.sen2cb[senones]).astype(np.int64)
                top = em.top_densities(X, cbs)
                le = em.senone_log_emit(top, senones)
                # one chain: the batch Viterbi's parallel loop costs more than it gains
                with threads(1):
                    path, best = viterbi(le, topo, hop_s=hop_s)
                stats.add_path(X, top, senones[topo.emit_ids[path]], loglik=float(best))
            w_cur = np.exp(log_w.astype(np.float64))
            w_cur /= w_cur.sum(axis=1, keepdims=True)
            seen = stats.counts.sum(axis=1) > 0          # (F, n_sen)
            # log Dirichlet prior density of the current weights (up to a constant)
            log_prior = float(self.tau * np.sum(w0 * np.log(w_cur), axis=1)[seen].sum())
            history.append({"step": step, "log_likelihood": stats.loglik,
                            "frame_loglik": stats.loglik / stats.n_frames,
                            "log_prior": log_prior,
                            "objective": stats.loglik + log_prior,
                            "n_frames": stats.n_frames,
                            "n_senones_seen": int(seen.any(axis=0).sum()),
                            "seconds": time.perf_counter() - t0})
            if step == self.n_iter:
                break
            log_w = map_mixture_weights(w0, stats.counts, self.tau)
            if want_means:
                means = map_means(em0.means, stats.g, stats.gx, self.tau_means)
        self.emissions_ = em
        self.log_mixw_ = log_w
        self.means_ = means
        self.history_ = history
        return self
