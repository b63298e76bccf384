"""Baum-Welch training of a tied-mixture HMM over many utterances: the alignment engine.

Every utterance is a linear chain of its words' symbols (``states_per_symbol`` states
each, an optional one-state silence between words and at both ends). States of the
same (symbol, sub-state) share one emission column: one mixture-weight vector over the
K shared :class:`~vqalign.hmm.DiagGMM` Gaussians. Each frame keeps its top-n Gaussians
(Gaussian selection); after the Gaussians move (every ``gaussians_every`` EM steps)
only a wider candidate list taken at the start is re-scored.

The E-step runs the engine's banded scaled forward-backward (with a beam; unpruned and
then log-space retries where it fails) over a :class:`~vqalign.hmm.ChainBatch`, in
parallel over chunks of utterances, and returns additive :class:`SufficientStats`
(weight counts, transition counts, Gaussian moments). The M-step runs on their sum, so
a corpus can be streamed chunk by chunk (``estep`` / ``mstep``) and the statistics
summed wherever they were computed. Decoding is the banded Viterbi with a beam.
"""

from __future__ import annotations

import warnings

import numpy as np

from vqalign._validation import check_features, check_lengths, check_positive_int
from vqalign.exceptions import AlignmentError, ConvergenceWarning, ParameterError
from vqalign.hmm import _kernels as K
from vqalign.hmm.gmm import DiagGMM
from vqalign.hmm.monitor import ConvergenceMonitor
from vqalign.hmm.stats import Selection, SufficientStats, join_frames
from vqalign.hmm.topology import ChainBatch, Topology

__all__ = ["TiedMixtureHMM", "SufficientStats", "Selection"]

#: frames per block when per-frame emission tables are built (confidence, log fallback)
_BLOCK = 65536
#: an utterance whose T x S exceeds this keeps forward checkpoints, not every band (the
#: whole chain of a long recording); below it the band of every frame is kept (faster)
MAX_CELLS = 1 << 26


def _words(symbols):
    """Normalize an utterance's symbols: 'a b c' / ['a', 'b'] (one word per symbol) or
    [['h', 'ay'], ['dh', 'eh', 'r']] (words of symbols)."""
    if isinstance(symbols, str):
        symbols = symbols.split()
    out = []
    for w in symbols:
        if isinstance(w, str):
            out.append([w])
        else:
            w = [str(x) for x in w]
            if not w:
                raise ParameterError("a word has no symbols; drop empty words from the "
                                     "transcript")
            out.append(w)
    return out


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
        Skippable one-state silence symbol between words and at both ends.
    top_n : int
        Gaussians kept per frame (Gaussian selection).
    n_iter, tol, min_iter : int, float, int
        EM stops after ``n_iter`` steps, or once ``min_iter`` steps are done and the
        log-likelihood per frame changes by less than ``tol`` (relative to
        ``max(1, |ll|)``).
    update : str
        Parameters to re-estimate: "w" mixture weights, "t" transitions (self loops
        per column, and the optional-silence probability), "m" means, "v" variances.
    gaussians_every : int
        Re-estimate means/variances only every this many steps (not at the last one).
    weight_floor : float
        Floor of the mixture weights relative to 1 / K.
    min_self_loop, max_self_loop : float
        Range of re-estimated self-loop probabilities.
    init_params : str
        What :meth:`fit` initializes ("w" weights, "t" self loops); "" keeps the
        values set by :meth:`initialize` (or an earlier fit).
    init_self_loop : float, optional
        Flat-start self loop of every symbol state (silence: 0.9). None: from
        durations (each symbol state gets its share of the non-silent frames).
    p_silence, p_edge_silence : float
        Initial P(optional silence between two words) and P(leading silence).
    beam : float
        Relative forward-backward beam (0: exact); failed utterances are retried
        unpruned, then in log space.
    viterbi_beam : float
        Log-probability margin of the Viterbi beam (negative; -inf: exact).
    min_post : float
        State posteriors below this are not accumulated.
    diagonal : float
        For chains over 2^26 cells (a long recording aligned whole): keep each frame's
        states within this fraction of the chain's states of its diagonal t * S / T
        (0: no corridor). Bounds the work of the first E-steps from a flat start.
    n_chunks : int
        Chunks of utterances the E-step runs in parallel (their sums are added in a
        fixed order, so results do not depend on the number of threads).
    var_floor, gmm_iter, random_state : see DiagGMM (default GMM only).
    hop_s : float
        Frame hop, for messages in seconds.

    Attributes
    ----------
    gmm_ (DiagGMM), weights_ (E, K) float32, self_loop_ (E,), p_silence_,
    p_edge_silence_, emit_index_ (dict (symbol, substate) -> column), emit_labels_,
    symbols_, history_ (History), n_iter_, converged_, failures_ (list of
    (utterance, message) of the last fit).
    """

    def __init__(self, n_components=256, *, gmm=None, states_per_symbol=1, optional_silence=None,
                 top_n=8, n_iter=10, tol=1e-4, min_iter=1, update="wt", gaussians_every=1,
                 weight_floor=1e-4, min_self_loop=0.05, max_self_loop=0.98, init_params="wt",
                 init_self_loop=None, p_silence=0.3, p_edge_silence=0.8, beam=1e-12,
                 viterbi_beam=-np.inf, min_post=1e-4, n_chunks=16, diagonal=0.0, var_floor=1e-3,
                 gmm_iter=5, random_state=None, hop_s=0.01, verbose=False):
        self.n_components = n_components
        self.gmm = gmm
        self.states_per_symbol = states_per_symbol
        self.optional_silence = optional_silence
        self.top_n = top_n
        self.n_iter = n_iter
        self.tol = tol
        self.min_iter = min_iter
        self.update = update
        self.gaussians_every = gaussians_every
        self.weight_floor = weight_floor
        self.min_self_loop = min_self_loop
        self.max_self_loop = max_self_loop
        self.init_params = init_params
        self.init_self_loop = init_self_loop
        self.p_silence = p_silence
        self.p_edge_silence = p_edge_silence
        self.beam = beam
        self.viterbi_beam = viterbi_beam
        self.min_post = min_post
        self.n_chunks = n_chunks
        self.diagonal = diagonal
        self.var_floor = var_floor
        self.gmm_iter = gmm_iter
        self.random_state = random_state
        self.hop_s = hop_s
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    def _check_data(self, data):
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray):
            data = [data]
        try:
            items = list(data)
        except TypeError:
            raise ParameterError("data must be a list of (X, symbols) pairs") from None
        if not items:
            raise ParameterError("data is empty; pass at least one (X, symbols) pair")
        Xs, words = [], []
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
            w = _words(symbols)
            if not w:
                raise ParameterError(f"data[{u}] has no symbols; the transcript produced no "
                                     "units to align")
            Xs.append(X)
            words.append(w)
        return Xs, words

    def _flags(self):
        if not isinstance(self.update, str) or set(self.update) - set("wtmv"):
            raise ParameterError(f"update={self.update!r}; use letters from 'wtmv' (weights, "
                                 "transitions, means, variances)")
        if not isinstance(self.init_params, str) or set(self.init_params) - set("wt"):
            raise ParameterError(f"init_params={self.init_params!r}; use letters from 'wt' "
                                 "(weights, self loops) or ''")
        check_positive_int(self.n_iter, "n_iter", minimum=0)
        check_positive_int(self.top_n, "top_n")
        check_positive_int(self.gaussians_every, "gaussians_every")
        check_positive_int(self.n_chunks, "n_chunks")
        if not (isinstance(self.beam, (int, float)) and 0 <= self.beam < 1):
            raise ParameterError(f"beam={self.beam!r}; use a relative threshold in [0, 1)")
        return {c: c in self.update for c in "wtmv"}

    def _check_fitted(self):
        if not hasattr(self, "weights_"):
            raise ParameterError("this TiedMixtureHMM is not fitted yet; call fit(data) first")

    def _n_sub(self, sym):
        if sym == self.optional_silence:
            return 1
        n = self.states_per_symbol
        return int(n.get(sym, 1)) if isinstance(n, dict) else int(n)

    # ---------------------------------------------------------------- structure
    def batch(self, words_list) -> ChainBatch:
        """The :class:`ChainBatch` of utterances given as lists of words."""
        self._check_fitted()
        return ChainBatch.from_words([_words(w) for w in words_list],
                                     emit_index=self.emit_index_,
                                     states_per_symbol=self._spu(),
                                     optional_silence=self.optional_silence)

    def _spu(self):
        n = self.states_per_symbol
        if isinstance(n, dict):
            return n
        return {s: (1 if s == self.optional_silence else int(n)) for s in self.symbols_}

    def transitions(self, batch: ChainBatch):
        """Linear (trans, start, end) of ``batch`` under the current parameters."""
        return batch.transitions(self.self_loop_, p_silence=self.p_silence_,
                                 p_edge_silence=self.p_edge_silence_,
                                 open_end=bool(getattr(self, "open_end_", False)))

    def topology(self, symbols, n_frames=None) -> Topology:
        """The single-utterance :class:`Topology` of ``symbols`` (a flat list: one word
        per symbol; or a list of words) under the current parameters."""
        self._check_fitted()
        words = _words(symbols)
        missing = [(s, j) for w in words for s in w for j in range(self._n_sub(s))
                   if (s, j) not in self.emit_index_]
        if missing:
            raise ParameterError(f"symbol {missing[0][0]!r} (sub-state {missing[0][1]}) was not "
                                 "seen in training; the model has no emission for it")
        b = self.batch([words])
        trans, start, end = self.transitions(b)
        labels = [self.emit_labels_[c] for c in b.emit_ids]
        with np.errstate(divide="ignore"):
            return Topology(labels=labels, symbols=[s for w in words for s in w],
                            unit_index=b.unit_index.copy(), emit_ids=b.emit_ids.copy(),
                            log_trans=np.log(trans), log_start=np.log(start),
                            log_end=np.log(end), skippable=b.skippable.copy(),
                            emit_labels=list(self.emit_labels_))

    # ---------------------------------------------------------------- selection
    def select(self, X, *, candidates=False) -> Selection:
        """Top-n Gaussians of every frame (and, with ``candidates``, the top 3n kept
        for re-scoring after Gaussian updates)."""
        gmm = self.gmm_
        n = min(self.top_n, gmm.n_components)
        if candidates:
            wide = min(3 * n, gmm.n_components)
            cand, val = gmm.top_n_components(X, wide)
            return Selection.from_loglik(np.ascontiguousarray(cand[:, :n]), val[:, :n],
                                         cand=cand)
        idx, val = gmm.top_n_components(X, n)
        return Selection.from_loglik(idx, val)

    def rescore(self, X, sel: Selection) -> Selection:
        """Re-score ``sel``'s candidates after the Gaussians moved."""
        if sel.cand is None:
            return self.select(X)
        idx, val = self.gmm_.rescore(X, sel.cand, min(self.top_n, self.gmm_.n_components))
        return Selection.from_loglik(idx, val, cand=sel.cand)

    # ---------------------------------------------------------------- initialization
    def _init_gmm(self, Xs):
        if isinstance(self.gmm, DiagGMM):
            self.gmm._check_fitted()
            return self.gmm
        allX = np.concatenate(Xs, axis=0)
        if self.gmm is not None:
            return DiagGMM.from_codebook(self.gmm, allX, var_floor=self.var_floor)
        k = check_positive_int(self.n_components, "n_components")
        with warnings.catch_warnings():     # a few EM steps are a start, not a result
            warnings.filterwarnings("ignore", message="DiagGMM did not converge",
                                    category=ConvergenceWarning)
            return DiagGMM(k, var_floor=self.var_floor, n_iter=self.gmm_iter,
                           top_n=min(self.top_n, k), random_state=self.random_state).fit(allX)

    def initialize(self, data, *, quiet=None, symbols=None, selection=None,
                   quiet_fraction=None):
        """Flat start: Gaussians, emission columns, weights and self loops.

        ``quiet`` (optional): per utterance a boolean mask of frames that are silence;
        the silence column's weights start from their best Gaussians and every symbol
        column's from the other frames' (else all weights are uniform). ``symbols``:
        the inventory (default: the data's symbols in order of appearance).
        ``quiet_fraction``: share of silence frames assumed by the duration start
        (default: the share of ``quiet`` frames). ``selection``: the frames' Selection
        if already computed. Returns self.
        """
        Xs, words = self._check_data(data)
        gmm = self._init_gmm(Xs)
        D = Xs[0].shape[1]
        if D != gmm.means_.shape[1]:
            raise ParameterError(f"the GMM has {gmm.means_.shape[1]} dimensions but the frames "
                                 f"have {D}")
        inv = list(symbols) if symbols is not None else []
        seen = set(inv)
        for w in words:
            for sym in (s for ww in w for s in ww):
                if sym not in seen:
                    seen.add(sym)
                    inv.append(sym)
        self.init_inventory(gmm, inv)
        n_frames = sum(X.shape[0] for X in Xs)
        if quiet is not None:
            quiet = [np.asarray(q, bool) for q in quiet]
            if len(quiet) != len(Xs) or any(q.shape != (X.shape[0],) for q, X in zip(quiet, Xs)):
                raise ParameterError("quiet must hold one boolean mask per utterance with one "
                                     "value per frame")
            sel = selection if selection is not None else self.select(np.concatenate(Xs))
            self.init_weights(*self.quiet_counts(sel.idx[:, 0], np.concatenate(quiet)))
        if self.init_self_loop is None:
            q = float(np.mean(np.concatenate(quiet))) if quiet is not None else 0.0
            if quiet_fraction is not None:
                q = float(quiet_fraction)
            n_speech = int(np.count_nonzero(~self.batch(words).skippable))
            self.init_durations(n_frames, len(Xs), n_speech, q)
        return self

    # The flat start in parts, for data that are never in memory at once (the corpus
    # pipeline sums quiet_counts and the frame / state counts over chunks).
    def init_inventory(self, gmm: DiagGMM, symbols) -> TiedMixtureHMM:
        """Emission columns for ``symbols`` (the optional silence first) over ``gmm``;
        uniform weights and the flat-start self loops (``init_self_loop``, silence 0.9)."""
        self.gmm_ = gmm
        inv = list(dict.fromkeys(symbols))
        sil = self.optional_silence
        if sil is not None:
            inv = [sil, *[s for s in inv if s != sil]]
        table = {}
        for sym in inv:
            for j in range(self._n_sub(sym)):
                table[(sym, j)] = len(table)
        self.emit_index_ = table
        self.emit_labels_ = [f"{s}.{j}" for (s, j) in table]
        self.symbols_ = inv
        E, Kc = len(table), gmm.n_components
        self.weights_ = np.full((E, Kc), 1.0 / Kc, np.float32)
        self.p_silence_ = float(self.p_silence)
        self.p_edge_silence_ = float(self.p_edge_silence)
        self.self_loop_ = np.full(E, 0.6 if self.init_self_loop is None
                                  else float(self.init_self_loop))
        self.self_loop_[self._silence_columns()] = 0.9
        return self

    def _silence_columns(self):
        sil = self.optional_silence
        return np.array([c for (s, _), c in self.emit_index_.items() if s == sil], np.int64)

    def quiet_counts(self, best, quiet_mask):
        """(silence, speech) int64 (K,) histograms of the frames' best Gaussians ``best``
        over the quiet frames and over the others (additive over chunks)."""
        Kc = self.gmm_.n_components
        best = np.asarray(best)
        qm = np.asarray(quiet_mask, bool)
        return (np.bincount(best[qm], minlength=Kc).astype(np.int64),
                np.bincount(best[~qm], minlength=Kc).astype(np.int64))

    def init_weights(self, silence_counts, speech_counts) -> TiedMixtureHMM:
        """Flat-start weights: the silence column's from the quiet frames' best-Gaussian
        histogram, every symbol column's from the other frames' (add-1/2 smoothed)."""
        sil_h = np.asarray(silence_counts, np.float64) + 0.5
        sp_h = np.asarray(speech_counts, np.float64) + 0.5
        sil = self.optional_silence
        for (s, _), c in self.emit_index_.items():
            h = sil_h if s == sil else sp_h
            self.weights_[c] = h / h.sum()
        self._floor_weights()
        return self

    def init_durations(self, n_frames, n_utterances, n_speech_states, quiet_share):
        """The "durations" flat start: every symbol state's self loop from its share of
        the non-silent frames, the silence's from the quiet frames at both ends."""
        q = min(max(float(quiet_share), 0.0), 0.9) if self.optional_silence is not None else 0.0
        d = max((1.0 - q) * n_frames / max(float(n_speech_states), 1.0), 1.05)
        d_sil = max(q * n_frames / (2.0 * n_utterances), 1.05)
        self.self_loop_[:] = 1.0 - 1.0 / d
        self.self_loop_[self._silence_columns()] = 1.0 - 1.0 / d_sil
        return self

    def add_symbols(self, symbols):
        """Give symbols never seen in training a generic model: the average symbol
        weights and self loop. Returns the new symbols."""
        self._check_fitted()
        new = [s for s in dict.fromkeys(symbols) if s not in set(self.symbols_)]
        if not new:
            return []
        speech = [c for (s, _), c in self.emit_index_.items() if s != self.optional_silence]
        avg = self.weights_[speech].mean(0) if speech else self.weights_.mean(0)
        ps = float(self.self_loop_[speech].mean()) if speech else 0.6
        rows = []
        for sym in new:
            self.symbols_.append(sym)
            for j in range(self._n_sub(sym)):
                self.emit_index_[(sym, j)] = len(self.emit_labels_)
                self.emit_labels_.append(f"{sym}.{j}")
                rows.append(avg)
        self.weights_ = np.vstack([self.weights_, np.asarray(rows, np.float32)])
        self.self_loop_ = np.concatenate([self.self_loop_, np.full(len(rows), ps)])
        return new

    def _floor_weights(self):
        w = np.maximum(self.weights_, self.weight_floor / self.gmm_.n_components)
        self.weights_ = (w / w.sum(1, keepdims=True)).astype(np.float32)

    # ---------------------------------------------------------------- E and M steps
    def estep(self, X, frame_off, batch: ChainBatch, sel: Selection, *, gaussian_stats=False,
              names=None) -> SufficientStats:
        """Statistics of the utterances of ``batch`` over frames ``X`` (rows
        ``frame_off[u]:frame_off[u + 1]`` are utterance u) with selection ``sel``.

        Utterances no path fits are left out and listed in ``failures`` with the reason.
        """
        self._check_fitted()
        U = batch.n_utterances
        frame_off = np.asarray(frame_off, np.int64)
        E, Kc = self.weights_.shape
        D = X.shape[1]
        trans, start, end = self.transitions(batch)
        chunk_off = _chunks(frame_off, self.n_chunks)
        C = chunk_off.shape[0] - 1
        counts = np.zeros((C, E, Kc))
        tcounts = np.zeros((batch.n_states, 3))
        if gaussian_stats:
            occ, sx, sxx = np.zeros((C, Kc)), np.zeros((C, Kc, D)), np.zeros((C, Kc, D))
        else:
            occ, sx, sxx = np.zeros((C, 1)), np.zeros((C, 1, 1)), np.zeros((C, 1, 1))
        loglik = np.zeros(U)
        status = np.zeros(U, np.int32)
        cells = np.zeros(U, np.int64)
        Xc = np.ascontiguousarray(X, dtype=np.float32)
        W = self.weights_
        args = (True, _DUMMY_BL, sel.idx, sel.eg, W, frame_off, batch.state_off,
                batch.emit_ids, trans, start, end)
        K.estep_batch(*args, float(self.beam), float(self.min_post), chunk_off, counts, tcounts,
                      loglik, status, Xc, occ, sx, sxx, gaussian_stats, cells, MAX_CELLS,
                      float(self.diagonal))
        failures = []
        # the beam can prune every path to an end state: redo those unpruned, then in log space
        for u in np.flatnonzero(status != K.OK):
            one = np.array([u, u + 1], np.int64)
            if self.beam > 0:
                K.estep_batch(*args, 0.0, float(self.min_post), one, counts[:1], tcounts,
                              loglik, status, Xc, occ[:1], sx[:1], sxx[:1], gaussian_stats,
                              cells, MAX_CELLS, float(self.diagonal))
            if status[u] == K.UNDERFLOW:
                st, ll = self._estep_log(Xc, frame_off, batch, u, trans, start, end, sel,
                                         counts[0], tcounts, occ[0], sx[0], sxx[0],
                                         gaussian_stats)
                status[u], loglik[u] = st, ll
            if status[u] != K.OK:
                name = names[u] if names is not None else u
                T = int(frame_off[u + 1] - frame_off[u])
                S = int(batch.state_off[u + 1] - batch.state_off[u])
                failures.append((name, f"utterance {name}: no path of its {S}-state chain fits "
                                       f"its {T} frames ({T * self.hop_s:.2f} s) in scaled or "
                                       "log space; check that audio and transcript belong "
                                       "together"))
        good = status == K.OK
        # per-column transition counts and the optional-silence counts
        tc = np.zeros((E, 3))
        np.add.at(tc, batch.emit_ids, tcounts)
        nxt_skip = np.zeros(batch.n_states, bool)
        nxt_skip[:-1] = batch.skippable[1:]
        m = ~batch.skippable & nxt_skip
        sil = np.array([tcounts[m, 1].sum(), tcounts[m, 2].sum()])
        fo = frame_off
        gsum = np.add.reduceat(sel.gmax, fo[:-1])[: U] if sel.gmax.size else np.zeros(U)
        gsum[fo[1:] == fo[:-1]] = 0.0
        nfr = int((fo[1:] - fo[:-1])[good].sum())
        stats = SufficientStats(counts.sum(0), tc, sil,
                                occ.sum(0) if gaussian_stats else None,
                                sx.sum(0) if gaussian_stats else None,
                                sxx.sum(0) if gaussian_stats else None,
                                float((loglik[good] + gsum[good]).sum()), nfr,
                                int(good.sum()), failures, status, cells)
        return stats

    def _estep_log(self, X, frame_off, batch, u, trans, start, end, sel, counts, tcounts, occ,
                   sx, sxx, gstats):
        """Log-space forward-backward of one utterance (where scaling underflows): the
        banded log twin of the scaled kernel, with the same checkpoints."""
        with np.errstate(divide="ignore"):
            lt, ls, le = np.log(trans), np.log(start), np.log(end)
        ll, st = K.estep_one_log(True, _DUMMY_BL, sel.idx, sel.eg, self.weights_, frame_off,
                                 batch.state_off, batch.emit_ids, lt, ls, le, 0.0,
                                 float(self.min_post), int(u), counts, tcounts, X, occ, sx,
                                 sxx, gstats, MAX_CELLS, float(self.diagonal))
        return st, float(ll)

    def scaled_emissions(self, sel: Selection, cols=None) -> np.ndarray:
        """Linear emission likelihoods of the selected frames, each frame scaled by its
        ``exp(-gmax)``: what the E-step's banded forward-backward consumes.

        Parameters
        ----------
        sel : Selection
            The frames' Gaussian selection (:meth:`select`), N frames.
        cols : array of int32, shape (C,), optional
            Emission columns (default: all E).

        Returns
        -------
        ndarray, float64, shape (N, C)
            ``out[t, j] = sum_n w[cols[j], idx[t, n]] * eg[t, n]``.
        """
        self._check_fitted()
        if cols is None:
            cols = np.arange(self.weights_.shape[0], dtype=np.int32)
        cols = np.ascontiguousarray(cols, dtype=np.int32)
        out = np.empty((sel.idx.shape[0], cols.size))
        K.tied_frame_emissions(sel.idx, sel.eg, self.weights_, cols, out)
        return out

    def _log_emissions(self, sel: Selection, cols):
        """(T, len(cols)) float64 log emissions without the frames' gmax, in blocks."""
        T = sel.idx.shape[0]
        out = np.empty((T, cols.size))
        for a in range(0, T, _BLOCK):
            b = min(T, a + _BLOCK)
            blk = np.empty((b - a, cols.size))
            K.tied_frame_emissions(sel.idx[a:b], sel.eg[a:b], self.weights_, cols, blk)
            with np.errstate(divide="ignore"):
                out[a:b] = np.log(blk)
        return out

    def mstep(self, stats: SufficientStats, *, gaussians=False) -> TiedMixtureHMM:
        """Re-estimate the parameters named in ``update`` from summed statistics."""
        self._check_fitted()
        flags = self._flags()
        if flags["w"]:
            counts = stats.counts
            occ = counts.sum(1)
            live = occ > 1e-3
            w = self.weights_.astype(np.float64)
            w[live] = counts[live] / occ[live, None]
            self.weights_ = w.astype(np.float32)
            self._floor_weights()
        if flags["t"]:
            tc = stats.trans
            tot = tc.sum(1)
            ok = tot > 1.0
            self.self_loop_[ok] = np.clip(tc[ok, 0] / tot[ok], self.min_self_loop,
                                          self.max_self_loop)
            enter, skip = stats.silence
            if enter + skip > 1.0:
                self.p_silence_ = float(np.clip(enter / (enter + skip), 0.02, 0.98))
        if gaussians and stats.occ is not None and (flags["m"] or flags["v"]):
            self.gmm_.update_from_stats(stats.occ, stats.sx, stats.sxx, means=flags["m"],
                                        variances=flags["v"])
        return self

    # ---------------------------------------------------------------- fit
    def fit(self, data, *, quiet=None, symbols=None, names=None, selection=None,
            on_step=None, resume=None, estep=None) -> TiedMixtureHMM:
        """Baum-Welch over ``data``: a list of ``(X (T, D) float32, symbols)`` pairs
        (symbols: a flat list, one word each, or a list of words of symbols).

        ``quiet``, ``symbols``: see :meth:`initialize` (used when ``init_params`` is set
        or the model is new). Utterances with more states than frames raise a
        ParameterError naming them; utterances no path fits are skipped and listed in
        ``failures_``. ``on_step(step, model, selection)`` is called after every M-step
        (``history_`` then holds that step). ``resume``: the History of an interrupted fit
        of the same data whose parameters this model holds (a saved step); its steps count
        against ``n_iter`` and the stop rule sees its last gain, so the continued run takes
        the steps the uninterrupted one would have. ``estep``: called in :meth:`estep`'s place.
        """
        flags = self._flags()
        Xs, words = self._check_data(data)
        if self.init_params or not hasattr(self, "weights_"):
            keep_t = "t" not in self.init_params and hasattr(self, "self_loop_")
            saved = (self.self_loop_.copy(), self.p_silence_) if keep_t else None
            keep_w = "w" not in self.init_params and hasattr(self, "weights_")
            saved_w = self.weights_.copy() if keep_w else None
            self.initialize(data, quiet=quiet, symbols=symbols)
            if saved is not None and saved[0].shape == self.self_loop_.shape:
                self.self_loop_, self.p_silence_ = saved
            if saved_w is not None and saved_w.shape == self.weights_.shape:
                self.weights_ = saved_w
        else:
            self.add_symbols([s for w in words for ww in w for s in ww])
        batch = self.batch(words)
        frame_off = np.zeros(len(Xs) + 1, np.int64)
        frame_off[1:] = np.cumsum([X.shape[0] for X in Xs])
        need = batch.min_frames()
        for u, X in enumerate(Xs):
            if X.shape[0] < need[u]:
                nm = names[u] if names is not None else u
                check_lengths(X.shape[0], int(need[u]), hop_s=self.hop_s,
                              what=f"transcript of utterance {nm}")
        Xcat = join_frames(Xs)
        refresh = flags["m"] or flags["v"]
        sel = selection if selection is not None else self.select(Xcat, candidates=refresh)
        self._fit_loop(Xcat, frame_off, batch, sel, flags, names=names, on_step=on_step,
                       resume=resume, estep=estep)
        self.selection_ = sel
        return self

    def _fit_loop(self, X, frame_off, batch, sel, flags, names=None, on_step=None,
                  resume=None, estep=None):
        refresh = flags["m"] or flags["v"]
        monitor = ConvergenceMonitor(tol=self.tol, n_iter=self.n_iter, verbose=self.verbose,
                                     name="TiedMixtureHMM", relative=True,
                                     min_iter=self.min_iter, drop_tol=1e-2)
        if resume is not None:
            monitor.resume(resume)
        self.history_ = monitor.history
        n_total = int(frame_off[-1])
        self.failures_ = []
        first = monitor.iter
        if resume is not None and first > 0 and monitor.reached_tol:
            first = int(self.n_iter)              # the interrupted fit had converged
        for it in range(first, int(self.n_iter)):
            gst = refresh and (it + 1) % self.gaussians_every == 0 and it + 1 < self.n_iter
            stats = (estep or self.estep)(X, frame_off, batch, sel, gaussian_stats=gst, names=names)
            if stats.n_utterances == 0:
                raise AlignmentError("forward-backward found no path through any utterance; "
                                     "check that the audio and transcripts belong together: "
                                     + (stats.failures[0][1] if stats.failures else ""))
            self.failures_ = stats.failures
            self.mstep(stats, gaussians=gst)
            if gst:
                sel = self.rescore(X, sel)
            monitor.report(stats.loglik, stats.n_frames, counts=stats.counts.sum(0),
                           level=1, n_codes=self.gmm_.n_components,
                           samples_seen=n_total * (it + 1),
                           failed_utterances=len(stats.failures))
            if on_step is not None:
                on_step(it, self, sel)
            if monitor.reached_tol:
                break
        self.history_ = monitor.history
        self.n_iter_ = monitor.iter
        self.converged_ = monitor.reached_tol
        self._last_selection = sel
        return sel

    # ---------------------------------------------------------------- decode
    def viterbi_batch(self, X, frame_off, batch: ChainBatch, sel: Selection | None = None, *,
                      beam=None, retry_exact=True, max_cells=None):
        """Best paths of every utterance of ``batch``: (path int32 (N,) of local state
        indices, score (U,) log-probabilities, status (U,), stored cells (U,)).

        ``beam``: this call's Viterbi beam (default ``viterbi_beam``). Utterances the beam
        loses are decoded again exactly unless ``retry_exact`` is False (a chain too long
        for T x S back-pointers; the caller then widens the beam itself). ``max_cells``: a
        band storing more back-pointers (bytes) stops with status OVER_BUDGET, no retry."""
        self._check_fitted()
        frame_off = np.asarray(frame_off, np.int64)
        sel = self.select(X) if sel is None else sel
        trans, start, end = self.transitions(batch)
        with np.errstate(divide="ignore"):
            lt, ls, le = np.log(trans), np.log(start), np.log(end)
        U = batch.n_utterances
        path = np.zeros(int(frame_off[-1]), np.int32)
        score = np.zeros(U)
        status = np.zeros(U, np.int32)
        cells = np.zeros(U, np.int64)
        vbeam = float(self.viterbi_beam if beam is None else beam)
        K.viterbi_batch(True, _DUMMY_BL32, sel.idx, sel.eg, self.weights_, frame_off,
                        batch.state_off, batch.emit_ids, lt, ls, le, vbeam,
                        path, score, status, cells, np.int64(max_cells or 0))
        if np.isfinite(vbeam) and retry_exact:
            for u in np.flatnonzero((status != K.OK) & (status != K.OVER_BUDGET)):  # redo
                self._viterbi_one_exact(sel, frame_off, batch, lt, ls, le, u, path, score,
                                        status, cells)
        gsum = np.add.reduceat(sel.gmax, frame_off[:-1])[:U] if sel.gmax.size else np.zeros(U)
        gsum[frame_off[1:] == frame_off[:-1]] = 0.0
        return path, score + gsum, status, cells

    def _viterbi_one_exact(self, sel, frame_off, batch, lt, ls, le, u, path, score, status,
                           cells):
        band = np.zeros(1, np.int64)
        f0 = int(frame_off[u])
        T = int(frame_off[u + 1]) - f0
        s0 = int(batch.state_off[u])
        S = int(batch.state_off[u + 1]) - s0
        sc, st = K.chain_viterbi(True, _DUMMY_BL32, sel.idx, sel.eg, self.weights_, f0, T, s0, S,
                                 batch.emit_ids, lt, ls, le, -np.inf, path, band, np.int64(0))
        score[u], status[u], cells[u] = sc, st, band[0]

    def frame_ratio(self, sel: Selection, path_cols):
        """Per frame, the path column's emission over the best column's (0..1]."""
        T = sel.idx.shape[0]
        E = self.weights_.shape[0]
        allc = np.arange(E, dtype=np.int32)
        own = np.empty(T)
        best = np.empty(T)
        for a in range(0, T, _BLOCK):
            b = min(T, a + _BLOCK)
            blk = np.empty((b - a, E))
            K.tied_frame_emissions(sel.idx[a:b], sel.eg[a:b], self.weights_, allc, blk)
            own[a:b] = blk[np.arange(b - a), path_cols[a:b]]
            best[a:b] = blk.max(axis=1)
        return own / np.maximum(best, 1e-300), own

    def decode(self, X, symbols):
        """Viterbi state path ``int32 (T,)`` of ``X`` through the chain of ``symbols``.

        Use :meth:`topology` (same symbols) with :func:`vqalign.hmm.segments_from_path`
        to turn it into segments.
        """
        self._check_fitted()
        X = check_features(X, n_features=self.gmm_.means_.shape[1])
        self.topology(symbols)                 # names unseen symbols
        b = self.batch([_words(symbols)])
        need = int(b.min_frames()[0])
        check_lengths(X.shape[0], need, hop_s=self.hop_s)
        path, _, status, _ = self.viterbi_batch(X, np.array([0, X.shape[0]]), b)
        if status[0] != K.OK:
            raise AlignmentError("no state path fits the frames; check the symbols")
        return path

    def emissions(self, X, symbols=None):
        """(T, E) emission log-likelihoods of frames X (only the symbols' columns if
        given, the others -inf)."""
        self._check_fitted()
        X = check_features(X, n_features=self.gmm_.means_.shape[1])
        E = self.weights_.shape[0]
        if symbols is None:
            cols = np.arange(E, dtype=np.int32)
        else:
            b = self.batch([_words(symbols)])
            cols = np.unique(b.emit_ids).astype(np.int32)
        sel = self.select(X)
        out = np.full((X.shape[0], E), -np.inf)
        out[:, cols] = self._log_emissions(sel, cols) + sel.gmax[:, None]
        return out

    def score(self, X, symbols) -> float:
        """Total log-likelihood of ``X`` given ``symbols``."""
        from vqalign.hmm.inference import forward_backward  # noqa: PLC0415
        X = check_features(X)
        topo = self.topology(symbols, X.shape[0])
        _, ll = forward_backward(self.emissions(X, symbols), topo, posteriors=None,
                                 hop_s=self.hop_s)
        return ll

    # ---------------------------------------------------------------- persistence
    def get_state(self) -> dict:
        """Arrays and a JSON-able header of the fitted parameters."""
        self._check_fitted()
        g = self.gmm_
        arrays = {"means": g.means_, "variances": g.variances_, "var_floor": g.var_floor_,
                  "gmm_weights": g.weights_, "weights": self.weights_,
                  "self_loop": self.self_loop_}
        header = {"symbols": list(self.symbols_),
                  "columns": [[s, j, c] for (s, j), c in self.emit_index_.items()],
                  "p_silence": self.p_silence_, "p_edge_silence": self.p_edge_silence_}
        return {"arrays": arrays, "header": header}

    def set_state(self, state) -> TiedMixtureHMM:
        a, h = state["arrays"], state["header"]
        g = DiagGMM(int(a["means"].shape[0]), var_floor=self.var_floor,
                    top_n=min(self.top_n, int(a["means"].shape[0])))
        g.means_ = np.asarray(a["means"], np.float64)
        g.variances_ = np.asarray(a["variances"], np.float64)
        g.var_floor_ = np.asarray(a["var_floor"], np.float64)
        g.weights_ = np.asarray(a["gmm_weights"], np.float64)
        g._cache()
        g.history_, g.n_iter_, g.converged_ = None, 0, False
        self.gmm_ = g
        self.symbols_ = list(h["symbols"])
        self.emit_index_ = {(s, int(j)): int(c) for s, j, c in h["columns"]}
        labels = [""] * len(self.emit_index_)
        for (s, j), c in self.emit_index_.items():
            labels[c] = f"{s}.{j}"
        self.emit_labels_ = labels
        self.weights_ = np.asarray(a["weights"], np.float32)
        self.self_loop_ = np.asarray(a["self_loop"], np.float64).copy()
        self.p_silence_ = float(h["p_silence"])
        self.p_edge_silence_ = float(h["p_edge_silence"])
        return self


_DUMMY_BL = np.zeros((1, 1))
#: the Viterbi kernels' unused emission table in tied mode: float32, the dtype of the
#: Sphinx model's emissions, so one compiled signature serves both (a second one is one
#: more cached kernel that every process loads; tied mode never reads it)
_DUMMY_BL32 = np.zeros((1, 1), np.float32)


def _chunks(frame_off, n_chunks):
    """Contiguous utterance ranges with about equal frame counts."""
    U = len(frame_off) - 1
    n_chunks = max(1, min(n_chunks, U))
    target = np.linspace(0, frame_off[-1], n_chunks + 1)
    cut = np.searchsorted(frame_off, target[1:-1])
    off = np.unique(np.concatenate([[0], np.clip(cut, 0, U), [U]])).astype(np.int64)
    return off

