"""Baum-Welch training of a tied-mixture HMM over many utterances.

Every utterance is a linear chain of its symbols; states of the same
(symbol, sub-state) share one emission column (one mixture-weight vector over
the K shared Gaussians), so parameters are pooled across the corpus. The E-step
is the scaled forward-backward over each chain; the M-step re-estimates the
mixture weights (and optionally self-loop probabilities, means and variances).
"""

from __future__ import annotations

import warnings

import numpy as np

from vqalign._validation import check_features, check_lengths, check_positive_int
from vqalign.exceptions import ConvergenceWarning, ParameterError
from vqalign.hmm.gmm import DiagGMM
from vqalign.hmm.inference import forward_backward, viterbi
from vqalign.hmm.monitor import ConvergenceMonitor
from vqalign.hmm.tied import TiedMixture
from vqalign.hmm.topology import MAX_SELF_LOOP, linear_chain

__all__ = ["TiedMixtureHMM"]


class TiedMixtureHMM:
    """Semi-continuous HMM aligner model trained by Baum-Welch.

    Parameters
    ----------
    n_components : int
        Shared Gaussians K (ignored when ``gmm`` is given).
    gmm : DiagGMM or (K, D) codebook, optional
        Pretrained Gaussians, or a codebook (e.g. from LBG) turned into Gaussians
        with :meth:`DiagGMM.from_codebook`. Default: a DiagGMM fitted on all frames.
    states_per_symbol : int or dict
    optional_silence : str, optional
        Skippable silence symbol between symbols and at both ends.
    top_n : int
        Gaussians kept per frame (Gaussian selection); None keeps all K.
    n_iter, tol : int, float
        Baum-Welch iterations and stop threshold on the per-frame log-likelihood gain.
    update : str
        Parameters to re-estimate: "w" mixture weights, "t" self-loop probabilities
        of non-skippable states (per emission column), "m" means, "v" variances.
    weight_floor : float
        Floor of every mixture weight after the M-step.
    min_self_loop : float
        Lower bound of self loops (initial and re-estimated).
    gmm_iter : int
        EM iterations of the default GMM.
    hop_s : float
        Frame hop, for error messages in seconds.

    Attributes
    ----------
    gmm_, tied_ (TiedMixture), emit_index_ (dict (symbol, substate) -> column),
    emit_labels_, self_loop_ (E,) or None, history_ (History), n_iter_, converged_.
    """

    def __init__(self, n_components=256, *, gmm=None, states_per_symbol=1, optional_silence=None,
                 top_n=8, n_iter=10, tol=1e-4, update="w", weight_floor=1e-5,
                 min_self_loop=0.0, var_floor=1e-3, gmm_iter=5, random_state=None,
                 hop_s=0.01, verbose=False):
        self.n_components = n_components
        self.gmm = gmm
        self.states_per_symbol = states_per_symbol
        self.optional_silence = optional_silence
        self.top_n = top_n
        self.n_iter = n_iter
        self.tol = tol
        self.update = update
        self.weight_floor = weight_floor
        self.min_self_loop = min_self_loop
        self.var_floor = var_floor
        self.gmm_iter = gmm_iter
        self.random_state = random_state
        self.hop_s = hop_s
        self.verbose = verbose

    # ---------------------------------------------------------------- helpers
    def _check_data(self, data):
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
            data = [data]
        try:
            items = list(data)
        except TypeError:
            raise ParameterError("data must be a list of (X, symbols) pairs") from None
        if not items:
            raise ParameterError("data is empty; pass at least one (X, symbols) pair")
        out = []
        D = None
        for u, item in enumerate(items):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ParameterError(f"data[{u}] must be an (X, symbols) pair")
            X, symbols = item
            X = check_features(X, name=f"data[{u}] X")
            if D is None:
                D = X.shape[1]
            elif X.shape[1] != D:
                raise ParameterError(f"data[{u}] has {X.shape[1]} features per frame but "
                                     f"data[0] has {D}; use one feature setting for all")
            if isinstance(symbols, str):
                symbols = symbols.split()
            out.append((X, [str(s) for s in symbols]))
        return out

    def _keys(self, symbols):
        n_sub = self.states_per_symbol
        keys = []
        for s in symbols:
            k = n_sub.get(s, 1) if isinstance(n_sub, dict) else int(n_sub)
            keys.extend((s, i) for i in range(k))
        if self.optional_silence is not None:
            keys.append((self.optional_silence, 0))
        return keys

    def _update_flags(self):
        if not isinstance(self.update, str) or set(self.update) - set("wtmv"):
            raise ParameterError(f"update={self.update!r}; use letters from 'wtmv' (weights, "
                                 "transitions, means, variances)")
        return {c: c in self.update for c in "wtmv"}

    def topology(self, symbols, n_frames):
        """The linear chain used for ``symbols`` over ``n_frames`` frames."""
        self._check_fitted()
        if isinstance(symbols, str):
            symbols = symbols.split()
        missing = [k for k in self._keys(symbols) if k not in self.emit_index_]
        if missing:
            raise ParameterError(f"symbol {missing[0][0]!r} (sub-state {missing[0][1]}) was not "
                                 "seen in training; the model has no emission for it")
        topo = linear_chain(symbols, states_per_symbol=self.states_per_symbol,
                            emit_index=self.emit_index_, n_frames=n_frames,
                            optional_silence=self.optional_silence,
                            min_self_loop=self.min_self_loop)
        if self.self_loop_ is not None:
            self._apply_self_loops(topo)
        return topo

    def _apply_self_loops(self, topo):
        p = self.self_loop_[topo.emit_ids]
        has = np.isfinite(p) & ~topo.skippable
        lt = np.exp(topo.log_trans)
        for s in np.flatnonzero(has):
            rest_old = 1.0 - lt[s, 0]
            lt[s, 0] = p[s]
            if rest_old > 0:
                lt[s, 1:] *= (1.0 - p[s]) / rest_old
        with np.errstate(divide="ignore"):
            topo.log_trans = np.log(lt)

    def _check_fitted(self):
        if not hasattr(self, "tied_"):
            raise ParameterError("this TiedMixtureHMM is not fitted yet; call fit(data) first")

    # -------------------------------------------------------------------- fit
    def _init_gmm(self, data):
        if isinstance(self.gmm, DiagGMM):
            self.gmm._check_fitted()
            return self.gmm
        allX = np.concatenate([X for X, _ in data], axis=0)
        if self.gmm is not None:
            return DiagGMM.from_codebook(self.gmm, allX, var_floor=self.var_floor,
                                         top_n=self.top_n)
        k = check_positive_int(self.n_components, "n_components")
        with warnings.catch_warnings():     # a few EM steps are a start, not a result
            warnings.filterwarnings("ignore", message="DiagGMM did not converge",
                                    category=ConvergenceWarning)
            return DiagGMM(k, var_floor=self.var_floor, n_iter=self.gmm_iter, top_n=self.top_n,
                           random_state=self.random_state).fit(allX)

    def fit(self, data) -> TiedMixtureHMM:
        """Baum-Welch over ``data``: a list of ``(X (T, D) float32, symbols)`` pairs."""
        data = self._check_data(data)
        flags = self._update_flags()
        check_positive_int(self.n_iter, "n_iter", minimum=0)
        if self.top_n is not None:
            check_positive_int(self.top_n, "top_n")
        gmm = self._init_gmm(data)
        if data[0][0].shape[1] != gmm.means_.shape[1]:
            raise ParameterError(f"the GMM has {gmm.means_.shape[1]} dimensions but the frames "
                                 f"have {data[0][0].shape[1]}")
        table: dict = {}
        for _, symbols in data:
            for key in self._keys(symbols):
                if key not in table:
                    table[key] = len(table)
        self.emit_index_ = table
        self.emit_labels_ = [f"{s}.{k}" for (s, k) in table]
        self.gmm_ = gmm
        top_n = self.top_n if self.top_n is not None and self.top_n < gmm.n_components else None
        self.tied_ = TiedMixture.uniform(gmm, len(table), top_n=top_n)
        self.self_loop_ = None
        E, Kc = len(table), gmm.n_components
        topos = []
        for u, (X, symbols) in enumerate(data):
            topo = linear_chain(symbols, states_per_symbol=self.states_per_symbol,
                                emit_index=table, n_frames=X.shape[0],
                                optional_silence=self.optional_silence,
                                min_self_loop=self.min_self_loop)
            if X.shape[0] < topo.min_frames:
                check_lengths(X.shape[0], topo.min_frames, hop_s=self.hop_s,
                              what=f"transcript of utterance {u}")
            topos.append(topo)
        n_frames = sum(X.shape[0] for X, _ in data)
        refresh = flags["m"] or flags["v"]
        selected = [self.tied_.select(X) for X, _ in data] if top_n else [None] * len(data)
        monitor = ConvergenceMonitor(tol=self.tol, n_iter=self.n_iter, verbose=self.verbose,
                                     name="TiedMixtureHMM")
        for _ in range(int(self.n_iter)):
            counts = np.zeros((E, Kc))
            gstats = (np.zeros(Kc), np.zeros((Kc, gmm.means_.shape[1])),
                      np.zeros((Kc, gmm.means_.shape[1]))) if refresh else None
            occ = np.zeros(E)
            visits = np.zeros(E)
            total = 0.0
            for (X, _), topo, sel in zip(data, topos, selected):
                cols = np.unique(topo.emit_ids)
                le = self.tied_.emissions(X, selected=sel, columns=cols)
                if flags["t"]:
                    post_s, ll = forward_backward(le, topo, posteriors="states",
                                                  hop_s=self.hop_s)
                    post = np.zeros((X.shape[0], E))
                    np.add.at(post.T, topo.emit_ids, post_s.T)
                    keep = ~topo.skippable
                    np.add.at(occ, topo.emit_ids[keep], post_s[:, keep].sum(0))
                    np.add.at(visits, topo.emit_ids[keep], 1.0)
                else:
                    post, ll = forward_backward(le, topo, posteriors="emit", hop_s=self.hop_s)
                total += ll
                self.tied_.accumulate(post, X, selected=sel, counts=counts, gauss_stats=gstats)
            monitor.report(total, n_frames, n_codes=Kc, samples_seen=n_frames * (monitor.iter + 1),
                           counts=counts.sum(0))
            if monitor.reached_tol:
                break
            if flags["w"]:
                self.tied_.update_weights(counts, floor=self.weight_floor)
            if flags["t"]:
                self._update_self_loops(occ, visits, topos)
            if refresh:
                self._update_gaussians(gstats, flags, n_frames)
                if top_n:
                    selected = [self.tied_.select(X) for X, _ in data]
        self.history_ = monitor.history
        self.n_iter_ = monitor.iter
        self.converged_ = monitor.reached_tol
        return self

    def _update_self_loops(self, occ, visits, topos):
        # a non-skippable state of a left-to-right chain is left exactly once, so the
        # ML self loop is 1 - visits / expected frames (E[d] = 1 / (1 - p))
        p = np.full(occ.shape[0], np.nan)
        ok = visits > 0
        p[ok] = 1.0 - visits[ok] / np.maximum(occ[ok], visits[ok])
        p = np.where(ok, np.clip(p, self.min_self_loop, MAX_SELF_LOOP), np.nan)
        self.self_loop_ = p
        for topo in topos:
            self._apply_self_loops(topo)

    def _update_gaussians(self, gstats, flags, n_frames):
        gmm = self.gmm_
        nk, fk, sk = gstats
        used = nk > 1e-6
        safe = np.where(used, nk, 1.0)[:, None]
        means = gmm.means_.copy()
        if flags["m"]:
            means[used] = (fk / safe)[used]
        if flags["v"]:
            var = sk / safe - 2.0 * means * fk / safe + means * means
            v = gmm.variances_.copy()
            v[used] = var[used]
            gmm.variances_ = np.maximum(v, gmm.var_floor_[None, :])
        gmm.means_ = means
        gmm._cache()

    # ---------------------------------------------------------------- decode
    def emissions(self, X, symbols=None):
        """(T, E) emission log-likelihoods of frames X (only the symbols' columns if given)."""
        self._check_fitted()
        X = check_features(X, n_features=self.gmm_.means_.shape[1])
        cols = None
        if symbols is not None:
            if isinstance(symbols, str):
                symbols = symbols.split()
            cols = [self.emit_index_[k] for k in self._keys(symbols) if k in self.emit_index_]
        return self.tied_.emissions(X, columns=cols)

    def decode(self, X, symbols):
        """Viterbi state path ``int32 (T,)`` of ``X`` through the chain of ``symbols``.

        Use :meth:`topology` (same arguments) with
        :func:`vqalign.hmm.segments_from_path` to turn it into segments.
        """
        X = check_features(X)
        topo = self.topology(symbols, X.shape[0])
        path, _ = viterbi(self.emissions(X, symbols), topo, hop_s=self.hop_s)
        return path

    def score(self, X, symbols) -> float:
        """Total log-likelihood of ``X`` given ``symbols``."""
        X = check_features(X)
        topo = self.topology(symbols, X.shape[0])
        _, ll = forward_backward(self.emissions(X, symbols), topo, posteriors=None,
                                 hop_s=self.hop_s)
        return ll

