"""Tied-mixture (semi-continuous) HMM for forced alignment (private).

Pipeline: 39-D MFCC+delta+delta-delta with per-utterance CMVN -> shared diagonal
Gaussians initialised from a VQ codebook -> per-state mixture weights over the
top-n Gaussians of every frame -> one linear-chain HMM per utterance (optional
one-state silence between words and at both ends) -> EM with scaled
forward-backward -> Viterbi. All heavy loops run in
:mod:`vqalign.hmm._batch_kernels` over a whole batch of utterances at once.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from vqalign.exceptions import AlignmentError, ConvergenceWarning, ParameterError
from vqalign.history import History, code_usage_stats
from vqalign.hmm import _batch_kernels as K
from vqalign.hmm import _kernels as HK

SIL = "sil"
FEATURE_SR = 16000
LOG2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------- features
def _regression_delta(c: np.ndarray, width: int = 2) -> np.ndarray:
    T = c.shape[0]
    pad = np.concatenate([np.repeat(c[:1], width, axis=0), c, np.repeat(c[-1:], width, axis=0)])
    out = np.zeros_like(c)
    den = 2.0 * sum(k * k for k in range(1, width + 1))
    for k in range(1, width + 1):
        out += k * (pad[width + k: width + k + T] - pad[width - k: width - k + T])
    return out / den


def _mfcc(y: np.ndarray, hop: int) -> np.ndarray:
    """13 MFCCs (librosa convention, 25 ms window, 40 mel bands) as (T, 13) float32."""
    try:  # the project's own implementation once it is there
        from vqalign.features import mfcc as _vq_mfcc  # noqa: PLC0415
        return np.asarray(_vq_mfcc(y, FEATURE_SR, n_mfcc=13, n_mels=40, win_length=0.025,
                                   hop_length=hop / FEATURE_SR, center=True),
                          dtype=np.float32)
    except (ImportError, AttributeError, TypeError):
        import librosa  # noqa: PLC0415
        return librosa.feature.mfcc(y=y, sr=FEATURE_SR, n_mfcc=13, n_fft=512, win_length=400,
                                    hop_length=hop, n_mels=40, center=True).T.astype(np.float32)


def resample(y: np.ndarray, sr: int) -> np.ndarray:
    if sr == FEATURE_SR:
        return y
    import soxr  # noqa: PLC0415
    return soxr.resample(y, sr, FEATURE_SR).astype(np.float32)


def features(y: np.ndarray, hop_s: float, delta_width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(T, 39) float32 CMVN'd MFCC+deltas and the (T,) raw c0 (loudness) of 16 kHz audio.

    Deltas are regression slopes over +-``delta_width`` frames (1 at a 10 ms hop: wider
    windows smear boundaries; per-utterance CMVN removes their scale, so 2 frames at a
    5 ms hop give the same features as 1 frame at 10 ms).
    """
    hop = int(round(hop_s * FEATURE_SR))
    c = _mfcc(y, hop)
    d1 = _regression_delta(c, delta_width)
    d2 = _regression_delta(d1, delta_width)
    X = np.concatenate([c, d1, d2], axis=1)
    energy = c[:, 0].copy()
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    sd[sd < 1e-5] = 1e-5
    X = (X - mu) / sd
    return np.ascontiguousarray(X, dtype=np.float32), energy


# ----------------------------------------------------------------------------- codebook
def _scatter_sum(S, a, X):
    order = np.argsort(a, kind="stable")
    a_s = a[order]
    bounds = np.flatnonzero(np.diff(a_s)) + 1
    starts = np.concatenate([[0], bounds])
    sums = np.add.reduceat(X[order], starts, axis=0)
    S[a_s[starts]] = sums


class Gaussians:
    """Shared diagonal Gaussians; top-n log-likelihoods per frame without a (T, K) array."""

    def __init__(self, means, variances, var_floor=1e-2):
        self.means = np.ascontiguousarray(means, dtype=np.float32)
        self.variances = np.maximum(np.asarray(variances, dtype=np.float32), var_floor)
        self.var_floor = var_floor

    @classmethod
    def from_codebook(cls, codebook, X, var_floor=1e-2):
        C = np.asarray(codebook, dtype=np.float32)
        if X.shape[0] > 32768:  # per-cluster variances from a subsample are plenty
            X = X[np.linspace(0, X.shape[0] - 1, 32768).astype(np.int64)]
        a = encode(X, C)
        k = C.shape[0]
        cnt = np.bincount(a, minlength=k).astype(np.float64)
        S1 = np.zeros((k, X.shape[1]))
        S2 = np.zeros((k, X.shape[1]))
        _scatter_sum(S1, a, X.astype(np.float64))
        _scatter_sum(S2, a, (X.astype(np.float64)) ** 2)
        var = np.ones((k, X.shape[1]))
        live = cnt > 1
        mean = S1[live] / cnt[live, None]
        var[live] = S2[live] / cnt[live, None] - mean ** 2
        gvar = X.var(axis=0)
        var[~live] = gvar
        # shrink towards the global variance so tiny clusters stay usable
        w = (cnt / (cnt + 10.0))[:, None]
        var = w * var + (1 - w) * gvar[None, :]
        return cls(C, var, var_floor=var_floor)

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def top_n(self, X, n, block=16384):
        """(idx int32 (T, n), loglik float32 (T, n)) of the n most likely Gaussians per frame.

        One BLAS product per row block: [x, x*x, 1] @ [mu/var, -1/(2 var), const]^T.
        """
        inv = 1.0 / self.variances.astype(np.float64)
        const = -0.5 * ((self.means ** 2 * inv).sum(1) + np.log(self.variances).sum(1)
                        + X.shape[1] * LOG2PI)
        W = np.concatenate([self.means * inv, -0.5 * inv, const[:, None]], axis=1)
        W = np.ascontiguousarray(W.T, dtype=np.float32)
        T, D = X.shape
        n = min(n, self.n_components)
        idx = np.empty((T, n), np.int32)
        val = np.empty((T, n), np.float32)
        xa = np.empty((min(block, T), 2 * D + 1), np.float32)
        for b0 in range(0, T, block):
            xb = X[b0:b0 + block]
            m = xb.shape[0]
            xa[:m, :D] = xb
            np.multiply(xb, xb, out=xa[:m, D:2 * D])
            xa[:m, 2 * D] = 1.0
            ll = xa[:m] @ W
            HK.topn_from_block(ll, idx[b0:b0 + block], val[b0:b0 + block])
        return idx, val

    def rescore(self, X, cand, n):
        """Like :meth:`top_n`, but only among each frame's candidates ``cand`` (T, C)."""
        inv = (1.0 / self.variances.astype(np.float64)).astype(np.float32)
        const = (-0.5 * (np.log(self.variances.astype(np.float64)).sum(1)
                         + X.shape[1] * LOG2PI)).astype(np.float32)
        T = X.shape[0]
        n = min(n, cand.shape[1])
        idx = np.empty((T, n), np.int32)
        val = np.empty((T, n), np.float32)
        K.rescore_candidates(X, cand, self.means, inv, const, n, idx, val)
        return idx, val

    def update(self, occ, sx, sxx, min_occ=3.0):
        live = occ > min_occ
        if not live.any():
            return
        mean = sx[live] / occ[live, None]
        var = sxx[live] / occ[live, None] - mean ** 2
        m = self.means.copy()
        v = self.variances.copy()
        m[live] = mean
        v[live] = np.maximum(var, self.var_floor)
        self.means = m.astype(np.float32)
        self.variances = v.astype(np.float32)


def encode(X, C, block=8192):
    """Nearest code per row (int32), in row blocks."""
    c2 = (C.astype(np.float32) ** 2).sum(1)
    out = np.empty(X.shape[0], np.int32)
    for b0 in range(0, X.shape[0], block):
        xb = X[b0:b0 + block]
        out[b0:b0 + block] = (c2[None, :] - 2.0 * xb @ C.T).argmin(1)
    return out


# ----------------------------------------------------------------------------- graphs
@dataclass
class Graph:
    """A batch of linear-chain HMMs (one per utterance), flat arrays."""

    col: np.ndarray          # int32 (S,) emission column of each state
    skippable: np.ndarray    # bool (S,)
    unit: np.ndarray         # int32 (S,) global unit index within its utterance; -1 silence
    state_off: np.ndarray    # int64 (U+1,)
    units: list = field(default_factory=list)   # per utterance: list of (word_index, label)


@dataclass
class Frames:
    X: np.ndarray            # (N, D) float32
    energy: np.ndarray       # (N,) raw c0
    frame_off: np.ndarray    # int64 (U+1,)
    durations: list          # seconds per utterance


class TiedMixtureModel:
    """Inventory of symbols, shared Gaussians, per-column mixture weights, durations."""

    def __init__(self, symbols, states_per_unit, gaussians: Gaussians, *, top_n=8,
                 weight_floor=1e-4, init_self=0.6):
        if SIL not in symbols:
            symbols = [SIL, *symbols]
        self.symbols = list(symbols)
        self.states_per_unit = int(states_per_unit)
        self.gauss = gaussians
        self.top_n = int(top_n)
        self.weight_floor = float(weight_floor)
        self.columns: dict[tuple[str, int], int] = {}
        for sym in self.symbols:
            for j in range(self.n_sub(sym)):
                self.columns[(sym, j)] = len(self.columns)
        E = len(self.columns)
        kk = gaussians.n_components
        self.weights = np.full((E, kk), 1.0 / kk, np.float32)
        self.p_self = np.full(E, init_self)
        self.p_self[self.columns[(SIL, 0)]] = 0.9
        self.p_sil = 0.3          # P(silence inserted between two words)
        self.p_sil_edge = 0.8     # P(silence at either end)

    def n_sub(self, sym):
        return 1 if sym == SIL else self.states_per_unit

    @property
    def n_columns(self):
        return len(self.columns)

    def add_symbols(self, syms):
        """Unseen symbols get the average speech weights (a generic unit)."""
        new = [s for s in syms if s not in self.symbols]
        if not new:
            return
        speech = [c for (s, _), c in self.columns.items() if s != SIL]
        avg = self.weights[speech].mean(0) if speech else self.weights.mean(0)
        ps = float(self.p_self[speech].mean()) if speech else 0.6
        rows, pss = [], []
        for sym in new:
            self.symbols.append(sym)
            for j in range(self.n_sub(sym)):
                self.columns[(sym, j)] = len(self.columns)
                rows.append(avg)
                pss.append(ps)
        self.weights = np.vstack([self.weights, np.asarray(rows, np.float32)])
        self.p_self = np.concatenate([self.p_self, pss])

    # -- graphs
    def build_graph(self, transcripts, silence=True) -> Graph:
        """``transcripts``: per utterance a list of words, each a list of unit labels."""
        cols, skip, unit, offs, units_all = [], [], [], [0], []
        sil_col = self.columns[(SIL, 0)]
        for words in transcripts:
            units = []
            ui = 0
            if silence:
                cols.append(sil_col)
                skip.append(True)
                unit.append(-1)
            for wi, w in enumerate(words):
                for lab in w:
                    for j in range(self.n_sub(lab)):
                        cols.append(self.columns[(lab, j)])
                        skip.append(False)
                        unit.append(ui)
                    units.append((wi, lab))
                    ui += 1
                if silence:
                    cols.append(sil_col)
                    skip.append(True)
                    unit.append(-1)
            offs.append(len(cols))
            units_all.append(units)
        return Graph(np.asarray(cols, np.int32), np.asarray(skip, bool),
                     np.asarray(unit, np.int32), np.asarray(offs, np.int64), units_all)

    def transitions(self, g: Graph, open_end=False, frame_scale=1.0):
        """log_trans (S, 3), log_start (S,), log_end (S,) of a batch of graphs.

        ``frame_scale`` > 1 decodes at a hop ``frame_scale`` times finer than the model
        was trained at: expected state durations (1 / (1 - p_self)) are scaled up.
        """
        S = g.col.shape[0]
        ps = 1.0 - (1.0 - self.p_self[g.col]) / frame_scale
        ps = np.clip(ps, 0.0, 1 - 1e-6)
        nxt = 1.0 - ps
        nxt_skip = np.zeros(S, bool)
        nxt_skip[:-1] = g.skippable[1:]
        last = np.zeros(S, bool)
        last[g.state_off[1:] - 1] = True
        nxt_skip[last] = False
        with np.errstate(divide="ignore"):
            lt = np.full((S, 3), -np.inf)
            lt[:, 0] = np.log(ps)
            lt[:, 1] = np.where(nxt_skip, np.log(nxt * self.p_sil), np.log(nxt))
            # skip only over a skippable next state, to the state after it (same utterance)
            lt[:, 2] = np.where(nxt_skip, np.log(nxt * (1 - self.p_sil)), -np.inf)
            lt[last, 1] = -np.inf
            second_last = np.zeros(S, bool)
            second_last[np.maximum(g.state_off[1:] - 2, g.state_off[:-1])] = True
            lt[second_last, 2] = -np.inf
            first = g.state_off[:-1]
            ls = np.full(S, -np.inf)
            le = np.full(S, -np.inf)
            if open_end:
                le[:] = np.where(g.skippable, 0.0, -np.inf)
                # a word may also end the window without a following silence
                word_end = np.zeros(S, bool)
                word_end[:-1] = g.skippable[1:] & ~g.skippable[:-1]
                le[word_end] = 0.0
            for u in range(len(first)):
                a, b = first[u], g.state_off[u + 1]
                if g.skippable[a] and b - a > 1:
                    ls[a] = math.log(self.p_sil_edge)
                    ls[a + 1] = math.log(1 - self.p_sil_edge)
                else:
                    ls[a] = 0.0
                if not open_end:
                    le[b - 1] = 0.0
                    if g.skippable[b - 1] and b - a > 1:
                        le[b - 2] = 0.0
        return lt, ls, le

    # -- emissions
    def frame_components(self, X):
        """Top-n Gaussians of every frame: (idx (T, n) int32, eg (T, n) float64, gmax (T,))."""
        idx, val = self.gauss.top_n(X, self.top_n)
        gmax = val[:, 0].astype(np.float64)
        eg = np.exp(val.astype(np.float64) - gmax[:, None])
        return idx, eg, gmax

    def components_from(self, idx, val):
        gmax = val[:, 0].astype(np.float64)
        eg = np.exp(val.astype(np.float64) - gmax[:, None])
        return idx, eg, gmax

    def emissions(self, comp):
        """Linear emission likelihoods (T, E) float32, each row divided by exp(gmax[t])."""
        idx, eg, _ = comp
        out = np.empty((idx.shape[0], self.n_columns), np.float32)
        K.tied_emissions(idx, eg, np.ascontiguousarray(self.weights.T), out)
        return out

    def init_weights_from_energy(self, comp, energy, frame_off, quantile=0.15,
                                 speech_quantile=None):
        """Flat start: silence from the quietest frames of each utterance, speech from the
        frames above ``speech_quantile`` (default: all the others)."""
        idx = comp[0][:, 0]
        kk = self.gauss.n_components
        quiet = np.zeros(idx.shape[0], bool)
        loud = np.zeros(idx.shape[0], bool)
        sq = quantile if speech_quantile is None else speech_quantile
        for u in range(len(frame_off) - 1):
            a, b = frame_off[u], frame_off[u + 1]
            e = energy[a:b]
            quiet[a:b] = e <= np.quantile(e, quantile)
            loud[a:b] = e > np.quantile(e, sq)
        sil_h = np.bincount(idx[quiet], minlength=kk) + 0.5
        sp_h = np.bincount(idx[loud], minlength=kk) + 0.5
        sil_h = sil_h / sil_h.sum()
        sp_h = sp_h / sp_h.sum()
        for (sym, _), c in self.columns.items():
            self.weights[c] = sil_h if sym == SIL else sp_h
        self._floor_weights()

    def init_durations(self, frame_off, g: Graph, quiet_fraction=0.15):
        """Flat-start self-loops from durations: speech frames shared evenly by the
        speech states (d = frames / states, p_self = 1 - 1/d), and the quiet frames by
        the two edge silences of each utterance."""
        T = float(frame_off[-1])
        U = len(frame_off) - 1
        n_speech = float(np.count_nonzero(~g.skippable))
        d = max((1.0 - quiet_fraction) * T / max(n_speech, 1.0), 1.05)
        d_sil = max(quiet_fraction * T / (2.0 * U), 1.05)
        for (sym, _), c in self.columns.items():
            self.p_self[c] = 1.0 - 1.0 / (d_sil if sym == SIL else d)

    def _floor_weights(self):
        w = np.maximum(self.weights, self.weight_floor / self.gauss.n_components)
        self.weights = (w / w.sum(1, keepdims=True)).astype(np.float32)

    def m_step(self, counts, trans_counts, g: Graph, update_trans=True):
        occ = counts.sum(1)
        live = occ > 1e-3
        w = self.weights.astype(np.float64)
        w[live] = counts[live] / occ[live, None]
        self.weights = w.astype(np.float32)
        self._floor_weights()
        if update_trans:
            tc = np.zeros((self.n_columns, 3))
            np.add.at(tc, g.col, trans_counts)
            tot = tc.sum(1)
            ok = tot > 1.0
            self.p_self[ok] = np.clip(tc[ok, 0] / tot[ok], 0.05, 0.98)
            # optional-silence insertion probability between words
            sp = ~g.skippable
            nxt_skip = np.zeros(len(g.col), bool)
            nxt_skip[:-1] = g.skippable[1:]
            m = sp & nxt_skip
            enter = trans_counts[m, 1].sum()
            skipc = trans_counts[m, 2].sum()
            if enter + skipc > 1.0:
                self.p_sil = float(np.clip(enter / (enter + skipc), 0.02, 0.98))


# ----------------------------------------------------------------------------- training
def too_short_message(n_states, n_frames, hop_s, what="transcript"):
    return (f"{what} has {n_states} HMM states but the audio has only {n_frames} frames "
            f"({n_frames * hop_s:.2f} s at {1000 * hop_s:g} ms hop; the {what} needs at least "
            f"{n_states * hop_s:.2f} s, one frame per state); shorten the {what}, use fewer "
            f"states per unit, or check that the audio and {what} belong together")


def _chunks(frame_off, n_chunks):
    """Contiguous utterance ranges with about equal frame counts."""
    U = len(frame_off) - 1
    n_chunks = max(1, min(n_chunks, U))
    target = np.linspace(0, frame_off[-1], n_chunks + 1)
    cut = np.searchsorted(frame_off, target[1:-1])
    off = np.unique(np.concatenate([[0], np.clip(cut, 0, U), [U]])).astype(np.int64)
    return off


def linear_transitions(lt):
    trans, start, end = lt
    with np.errstate(under="ignore"):
        return np.exp(trans), np.exp(start), np.exp(end)


def run_em(model: TiedMixtureModel, frames: Frames, g: Graph, comp, n_iter, *, history=None,
           update_gaussians_every=0, min_post=1e-4, keep_paths=False, on_step=None,
           open_end=False, tol=1e-4, beam=1e-12, n_chunks=16, min_iter=4, cand=None):
    """EM over a batch; returns (history, per-step Viterbi paths if keep_paths, comp)."""
    history = history if history is not None else History("em")
    t0 = time.perf_counter()
    E = model.n_columns
    U = len(frames.frame_off) - 1
    kk = model.gauss.n_components
    D = frames.X.shape[1]
    chunk_off = _chunks(frames.frame_off, n_chunks)
    C = len(chunk_off) - 1
    loglik = np.zeros(U)
    status = np.zeros(U, np.int32)
    paths = []
    prev = -np.inf
    nfr_u = np.diff(frames.frame_off)
    if update_gaussians_every and cand is None:
        # candidates for re-scoring after each Gaussian update: the 3n best now
        cand, _ = model.gauss.top_n(frames.X, 3 * model.top_n)
    for it in range(n_iter):
        bl = model.emissions(comp)
        lt = model.transitions(g, open_end=open_end)
        trans, start, end = linear_transitions(lt)
        gst = bool(update_gaussians_every) and (it + 1) % update_gaussians_every == 0 \
            and it + 1 < n_iter
        counts = np.zeros((C, E, kk))
        tcounts = np.zeros((len(g.col), 3))
        if gst:
            occ, sx, sxx = np.zeros((C, kk)), np.zeros((C, kk, D)), np.zeros((C, kk, D))
        else:
            occ, sx, sxx = np.zeros((C, 1)), np.zeros((C, 1, 1)), np.zeros((C, 1, 1))
        K.em_estep_batch(bl, frames.frame_off, g.state_off, g.col, trans, start, end, beam,
                         comp[0], comp[1], model.weights, min_post, chunk_off, counts, tcounts,
                         loglik, status, frames.X, occ, sx, sxx, gst)
        # the beam can prune every path to an allowed end state: redo those unpruned
        for u in np.flatnonzero(status != 0) if beam > 0 else ():
            K.em_estep_batch(bl, frames.frame_off, g.state_off, g.col, trans, start, end, 0.0,
                             comp[0], comp[1], model.weights, min_post,
                             np.array([u, u + 1], np.int64), counts[:1], tcounts, loglik,
                             status, frames.X, occ[:1], sx[:1], sxx[:1], gst)
        good = status == 0
        if not good.any():
            raise AlignmentError("forward-backward found no path through any utterance; "
                                 "check that the audio and transcripts belong together")
        if keep_paths:
            path, _, _, _ = viterbi(model, frames, g, bl=bl, lt=lt)
            paths.append(path)
        counts = counts.sum(0)
        model.m_step(counts, tcounts, g)
        if gst:
            model.gauss.update(occ.sum(0), sx.sum(0), sxx.sum(0))
            comp = model.components_from(*model.gauss.rescore(frames.X, cand, model.top_n))
        gsum = np.add.reduceat(comp[2], frames.frame_off[:-1]) if len(comp[2]) else 0.0
        nfr = int(nfr_u[good].sum())
        ll = float((loglik[good] + gsum[good]).sum() / max(nfr, 1))
        usage = code_usage_stats(counts.sum(0))
        history.append(level=1, n_codes=kk, samples_seen=nfr * (it + 1),
                       loss=-ll, log_likelihood=ll, entropy=usage["entropy"],
                       log_k=usage["log_k"], perplexity=usage["perplexity"],
                       utilization=usage["utilization"], seconds=time.perf_counter() - t0,
                       failed_utterances=int((~good).sum()))
        if on_step is not None:
            on_step(it, ll)
        if ll < prev - 1e-2:
            warnings.warn(f"EM step {it}: log-likelihood per frame fell from {prev:.4f} to "
                          f"{ll:.4f} (top-{model.top_n} Gaussian approximation or weight "
                          "floors); the alignment is still usable", ConvergenceWarning,
                          stacklevel=3)
        if it + 1 >= min_iter and abs(ll - prev) < tol * max(1.0, abs(ll)):
            break
        prev = ll
    return history, paths, comp


def viterbi(model, frames, g, comp=None, *, bl=None, lt=None, open_end=False, frame_scale=1.0):
    """(path int32 (N,) of local state indices, score (U,), status (U,), emissions)."""
    if bl is None:
        bl = model.emissions(comp)
    if lt is None:
        lt = model.transitions(g, open_end=open_end, frame_scale=frame_scale)
    trans, start, end = linear_transitions(lt)
    U = len(frames.frame_off) - 1
    path = np.zeros(frames.X.shape[0], np.int32)
    score = np.zeros(U)
    status = np.zeros(U, np.int32)
    K.viterbi_batch(bl, frames.frame_off, g.state_off, g.col, trans, start, end, path,
                    score, status)
    return path, score, status, bl


def path_segments(path_u, g: Graph, u: int, hop_s: float, duration: float, frame_conf=None):
    """Units and words of one utterance from its local state path (vectorised).

    Returns (units [(start_s, end_s, label, conf)], words [(start_s, end_s, word_index,
    conf)]); conf is the mean of ``frame_conf`` over the segment's frames (NaN without
    it). A boundary between frames t-1 and t lies at (t - 0.5) * hop (frames are
    centred); the first frame starts at 0 and the last ends at ``duration``.
    """
    s0 = g.state_off[u]
    uos = g.unit[s0 + path_u]
    T = path_u.shape[0]
    if T == 0:
        return [], []
    change = np.flatnonzero(uos[1:] != uos[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [T]])
    ids = uos[starts]
    keep = ids >= 0
    starts, ends, ids = starts[keep], ends[keep], ids[keep]
    if starts.size == 0:
        return [], []

    def to_s(f):
        t = np.clip((f - 0.5) * hop_s, 0.0, duration)
        t[f <= 0] = 0.0
        t[f >= T] = duration
        return t

    ts, te = to_s(starts), to_s(ends)
    if frame_conf is not None:
        csum = np.concatenate([[0.0], np.cumsum(frame_conf, dtype=np.float64)])
        fsum = csum[ends] - csum[starts]
        conf = fsum / (ends - starts)
    else:
        fsum = np.full(starts.size, np.nan)
        conf = fsum
    units = g.units[u]
    labels = [units[i][1] for i in ids]
    out_units = list(zip(ts.tolist(), te.tolist(), labels, conf.tolist()))
    widx = np.array([units[i][0] for i in ids])
    wchange = np.flatnonzero(widx[1:] != widx[:-1]) + 1
    wa = np.concatenate([[0], wchange])
    wb = np.concatenate([wchange, [widx.size]]) - 1
    if frame_conf is not None:
        nfr = np.add.reduceat(ends - starts, wa)
        wconf = (np.add.reduceat(fsum, wa) / nfr).tolist()
    else:
        wconf = [float("nan")] * wa.size
    out_words = list(zip(ts[wa].tolist(), te[wb].tolist(), widx[wa].tolist(), wconf))
    return out_units, out_words


def validate_graph_lengths(frames: Frames, g: Graph, hop_s: float):
    """Indices of utterances whose transcript has more non-skippable states than frames."""
    T = np.diff(frames.frame_off)
    nonskip = np.array([int((~g.skippable[g.state_off[u]:g.state_off[u + 1]]).sum())
                        for u in range(len(T))], np.int64)
    return np.flatnonzero(nonskip > T), nonskip, T


def check_one_length(n_states, n_frames, hop_s):
    if n_states > n_frames:
        raise ParameterError(too_short_message(n_states, n_frames, hop_s))
