"""Forward-backward and Viterbi over linear-chain (banded) and dense HMMs.

The Python side validates shapes, NaN and probabilities, then calls the numba
kernels in :mod:`vqalign.hmm._kernels` and turns their status codes into
:class:`~vqalign.exceptions.ParameterError` / :class:`~vqalign.exceptions.AlignmentError`.
"""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_lengths
from vqalign.exceptions import AlignmentError, ParameterError
from vqalign.hmm import _kernels as K
from vqalign.hmm.topology import Topology

__all__ = ["forward_backward", "viterbi", "dense_forward_backward", "dense_viterbi",
           "segments_from_path"]

#: Viterbi statuses (``TiedMixtureHMM.viterbi_batch``): a path found; the band would have
#: stored more back-pointers than the call's ``max_cells``
STATUS_OK = K.OK
STATUS_OVER_BUDGET = K.OVER_BUDGET
_POST = {None: K.POST_NONE, "none": K.POST_NONE, "states": K.POST_STATES, "emit": K.POST_EMIT}


def _check_log_emit(log_emit, *, n_cols: int | None = None, name: str = "log_emit") -> np.ndarray:
    if not isinstance(log_emit, np.ndarray):
        log_emit = np.asarray(log_emit)
    if log_emit.dtype.kind != "f":
        raise ParameterError(f"{name} must hold floating-point log-likelihoods, got dtype "
                             f"{log_emit.dtype}")
    if log_emit.ndim != 2:
        raise ParameterError(f"{name} must be 2-D (n_frames, n_columns), got shape {log_emit.shape}")
    if log_emit.shape[0] == 0 or log_emit.shape[1] == 0:
        raise ParameterError(f"{name} is empty (shape {log_emit.shape})")
    if n_cols is not None and log_emit.shape[1] < n_cols:
        raise ParameterError(
            f"{name} has {log_emit.shape[1]} columns but the topology reads emission column "
            f"{n_cols - 1}; pass one column per emission id (topology.emit_ids)")
    if log_emit.dtype not in (np.float32, np.float64):
        log_emit = log_emit.astype(np.float64)
    return np.ascontiguousarray(log_emit)


def _nan_error(log_emit, t, name="log_emit"):
    row = log_emit[t]
    what = "NaN" if np.isnan(row).any() else "+inf"
    return ParameterError(
        f"{name} has {what} at frame {t} (and possibly later); emission log-likelihoods must "
        "be finite or -inf; check the features (NaN rows) and the model's variances")


def _check_topology(topo) -> Topology:
    if not isinstance(topo, Topology):
        raise ParameterError(f"topo must be a vqalign.hmm.Topology (from linear_chain), got "
                             f"{type(topo).__name__}")
    return topo.validate()


def _band_arrays(topo: Topology):
    lt = np.ascontiguousarray(topo.log_trans, dtype=np.float64)
    return (np.ascontiguousarray(lt[:, 0]), np.ascontiguousarray(lt[:, 1]),
            np.ascontiguousarray(lt[:, 2]))


def _scan_bad(log_emit, cols, name="log_emit"):
    """ParameterError at the first NaN / +inf among the columns the states read."""
    t = int(K.first_bad_row(log_emit, np.ascontiguousarray(cols, dtype=np.int64)))
    if t >= 0:
        raise _nan_error(log_emit, t, name)


def _scaled_table(log_emit, cols):
    """(T, len(cols)) float64 exp(log_emit[:, cols] - row max) and the row maxima (T,),
    in two passes (max, exp). A NaN or +inf shows in the row max (raised here); a row
    that is -inf everywhere is returned as (None, m, frame)."""
    identity = cols.size == log_emit.shape[1] and cols[-1] == cols.size - 1
    sub = log_emit if identity else log_emit[:, cols]
    m = sub.max(axis=1).astype(np.float64)
    bad = np.isnan(m) | (m == np.inf)
    if bad.any():
        raise _nan_error(log_emit, int(np.flatnonzero(bad)[0]))
    dead = m == -np.inf
    if dead.any():
        return None, m, int(np.flatnonzero(dead)[0])
    with np.errstate(under="ignore"):
        bl = np.exp(sub - m[:, None], dtype=np.float64)
    return bl, m, -1


_DUMMY_IDX = np.zeros((1, 1), np.int32)
_DUMMY_F64 = np.zeros((1, 1))
_DUMMY_W = np.zeros((1, 1), np.float32)


def forward_backward(log_emit, topo: Topology, *, method: str = "scaled",
                     posteriors: str | None = "states", hop_s: float = 0.01, beam: float = 0.0,
                     checkpoint: int = 0):
    """Posteriors and log-likelihood of a linear-chain HMM.

    Parameters
    ----------
    log_emit : (T, E) float32/float64
        Emission log-likelihoods; state ``s`` reads column ``topo.emit_ids[s]``.
    topo : Topology
    method : "scaled" or "log"
        "scaled" runs the engine's banded kernel in linear space with per-frame
        scaling (each emission row is shifted by its maximum before ``exp``); if a
        frame underflows it falls back to the log-space recursion automatically.
        "log" works in log space.
    posteriors : "states", "emit" or None
        "states": (T, S) state posteriors; "emit": (T, E) posteriors summed per
        emission column; None: only the log-likelihood.
    hop_s : float
        Frame hop in seconds, used in the error message when T is too short.
    beam : float
        Scaled method only: drop states whose forward value falls below ``beam``
        times the frame's best (0 keeps every state: exact).
    checkpoint : int
        Scaled method only: keep the forward band of every ``checkpoint``-th frame only
        and recompute the rest segment by segment in the backward pass (same results,
        O(T / C + C) stored rows instead of O(T)); 0 keeps every frame's band.

    Returns
    -------
    post : (T, S) or (T, E) float64, or None
    log_likelihood : float
    """
    topo = _check_topology(topo)
    if method not in ("scaled", "log"):
        raise ParameterError(f"method={method!r}; use 'scaled' or 'log'")
    if posteriors not in _POST:
        raise ParameterError(f"posteriors={posteriors!r}; use 'states', 'emit' or None")
    if not (isinstance(beam, (int, float)) and 0.0 <= beam < 1.0):
        raise ParameterError(f"beam={beam!r}; use a relative threshold in [0, 1), e.g. 1e-12 "
                             "(0: no pruning)")
    mode = _POST[posteriors]
    log_emit = _check_log_emit(log_emit, n_cols=topo.n_emit)
    T, E = log_emit.shape
    S = topo.n_states
    check_lengths(T, topo.min_frames, hop_s=hop_s)
    emit_ids = np.ascontiguousarray(topo.emit_ids, dtype=np.int32)
    cols, cidx = np.unique(emit_ids, return_inverse=True)
    if method == "log":
        _scan_bad(log_emit, cols)
    lA0, lA1, lA2 = _band_arrays(topo)
    status = K.UNDERFLOW
    out = None
    ll = -np.inf
    if method == "scaled":
        bl, m, dead = _scaled_table(log_emit, cols)
        if bl is None:
            raise AlignmentError(
                f"every state has emission probability zero at frame {dead} (log_emit is -inf "
                "in all the columns the topology reads); no path can produce the frames")
        with np.errstate(under="ignore"):
            trans = np.exp(np.ascontiguousarray(topo.log_trans, dtype=np.float64))
            start = np.exp(topo.log_start)
            end = np.exp(topo.log_end)
        sink = {K.POST_NONE: -1, K.POST_STATES: K.SINK_STATES, K.POST_EMIT: K.SINK_EMIT}[mode]
        if mode == K.POST_STATES:
            post = np.zeros((T, S))
        elif mode == K.POST_EMIT:
            post = np.zeros((T, cols.size))
        else:
            post = _DUMMY_F64
        band = np.zeros(1, np.int64)
        ll_s, status = K.chain_forward_backward(
            False, bl, _DUMMY_IDX, _DUMMY_F64, _DUMMY_W, 0, T, 0, S, cidx.astype(np.int32),
            trans, start, end, float(beam), 0.0, sink, post, _DUMMY_F64, np.zeros((0, 3)),
            _DUMMY_F64, np.zeros(1), _DUMMY_F64, _DUMMY_F64, False, band,
            int(checkpoint), 0)
        if status == K.OK:
            ll = float(ll_s + m.sum())
            if mode == K.POST_EMIT:
                out = np.zeros((T, E))
                out[:, cols] = post
            elif mode == K.POST_STATES:
                out = post
    if method == "log" or status == K.UNDERFLOW:
        out = _alloc_post(mode, T, S, E)
        la = np.empty((T, S) if mode else (2, S))
        info = np.zeros(2)
        status = K.band_forward_backward_log(
            log_emit, emit_ids, lA0, lA1, lA2,
            np.ascontiguousarray(topo.log_start, dtype=np.float64),
            np.ascontiguousarray(topo.log_end, dtype=np.float64), mode, la, out, info)
        _raise_status(status, info, log_emit, T, S)
        ll = float(info[0])
    elif status != K.OK:
        _raise_status(status, np.array([-np.inf, T - 1]), log_emit, T, S)
    return (out if mode else None), ll


def _alloc_post(mode, T, S, E):
    if mode == K.POST_STATES:
        return np.empty((T, S))
    if mode == K.POST_EMIT:
        return np.zeros((T, E))
    return np.empty((1, 1))


def _raise_status(status, info, log_emit, T, S):
    if status == K.OK:
        return
    t = int(info[1])
    if status == K.BAD_VALUE:
        raise _nan_error(log_emit, t)
    raise AlignmentError(
        f"no state sequence of the {S}-state model can produce the {T} frames "
        f"(probability zero; blocked at frame {t}); emissions are -inf for every reachable "
        "state there, or the transitions make the end unreachable")


def viterbi(log_emit, topo: Topology, *, hop_s: float = 0.01, beam: float = -np.inf):
    """Most likely state path of a linear-chain HMM.

    Returns ``(path int32 (T,), best log-probability)``. The engine's banded Viterbi
    stores int8 back-pointers only for the active band: states within ``-beam`` (log
    units, e.g. -50.0) of the frame's best; the default ``-inf`` keeps every state (exact).
    """
    topo = _check_topology(topo)
    log_emit = _check_log_emit(log_emit, n_cols=topo.n_emit)
    if not (isinstance(beam, (int, float)) and beam < 0):
        raise ParameterError(f"beam={beam!r}; use a negative log-probability margin such as "
                             "-50.0, or -inf for no pruning")
    T = log_emit.shape[0]
    S = topo.n_states
    check_lengths(T, topo.min_frames, hop_s=hop_s)
    emit_ids = np.ascontiguousarray(topo.emit_ids, dtype=np.int32)
    _scan_bad(log_emit, np.unique(emit_ids))
    path = np.zeros(T, dtype=np.int32)
    score = np.zeros(1)
    status = np.zeros(1, np.int32)
    cells = np.zeros(1, np.int64)
    K.viterbi_batch(False, log_emit, _DUMMY_IDX, _DUMMY_F64, _DUMMY_W,
                    np.array([0, T], np.int64), np.array([0, S], np.int64), emit_ids,
                    np.ascontiguousarray(topo.log_trans, dtype=np.float64),
                    np.ascontiguousarray(topo.log_start, dtype=np.float64),
                    np.ascontiguousarray(topo.log_end, dtype=np.float64), float(beam), path,
                    score, status, cells, np.int64(0))
    if status[0] != K.OK:
        _raise_status(int(status[0]), np.array([-np.inf, T - 1]), log_emit, T, S)
    return path, float(score[0])


def _check_dense(log_emit, log_startprob, log_transmat, log_endprob):
    log_emit = _check_log_emit(log_emit)
    log_emit = np.ascontiguousarray(log_emit, dtype=np.float64)
    T, S = log_emit.shape
    ls = np.asarray(log_startprob, dtype=np.float64)
    lt = np.asarray(log_transmat, dtype=np.float64)
    if ls.shape != (S,):
        raise ParameterError(f"log_startprob has shape {ls.shape}; expected ({S},) for the {S} "
                             "columns of log_emit")
    if lt.shape != (S, S):
        raise ParameterError(f"log_transmat has shape {lt.shape}; expected ({S}, {S})")
    for name, a in (("log_startprob", ls), ("log_transmat", lt)):
        if np.isnan(a).any():
            raise ParameterError(f"{name} contains NaN")
        if np.any(a > 1e-9):
            raise ParameterError(f"{name} holds a probability {np.exp(a.max()):.6g} > 1; "
                                 "probabilities must lie in [0, 1] (pass logs of them)")
    tot = np.exp(ls).sum()
    if abs(tot - 1) > 1e-6:
        raise ParameterError(f"start probabilities sum to {tot:.6g}, not 1")
    rows = np.exp(lt).sum(axis=1)
    if np.any(np.abs(rows - 1) > 1e-6):
        i = int(np.argmax(np.abs(rows - 1)))
        raise ParameterError(f"row {i} of the transition matrix sums to {rows[i]:.6g}, not 1; "
                             "normalize each row (transmat / transmat.sum(axis=1, keepdims=True))")
    if log_endprob is None:
        le = np.zeros(S)
    else:
        le = np.asarray(log_endprob, dtype=np.float64)
        if le.shape != (S,) or np.isnan(le).any() or np.any(le > 1e-9):
            raise ParameterError(f"log_endprob must be ({S},) log values <= 0 without NaN")
    return log_emit, np.ascontiguousarray(ls), np.ascontiguousarray(lt), np.ascontiguousarray(le)


def dense_forward_backward(log_emit, log_startprob, log_transmat, *, method: str = "scaled",
                           log_endprob=None):
    """Forward-backward with a dense transition matrix, O(T * S^2).

    ``log_emit`` (T, S); ``log_startprob`` (S,); ``log_transmat`` (S, S) with rows
    summing to 1; ``log_endprob`` (S,) optional end weights (default: end anywhere,
    as hmmlearn). Returns ``(post (T, S) float64, log_likelihood)``.
    """
    if method not in ("scaled", "log"):
        raise ParameterError(f"method={method!r}; use 'scaled' or 'log'")
    log_emit, ls, lt, le = _check_dense(log_emit, log_startprob, log_transmat, log_endprob)
    T, S = log_emit.shape
    post = np.empty((T, S))
    info = np.zeros(2)
    status = K.UNDERFLOW
    if method == "scaled":
        with np.errstate(under="ignore"):
            status = K.dense_forward_backward_scaled(log_emit, np.exp(ls), np.exp(lt), np.exp(le),
                                                     post, info)
    if method == "log" or status == K.UNDERFLOW:
        status = K.dense_forward_backward_log(log_emit, ls, lt, le, post, info)
    _raise_status(status, info, log_emit, T, S)
    return post, float(info[0])


def dense_viterbi(log_emit, log_startprob, log_transmat, *, log_endprob=None):
    """Viterbi with a dense transition matrix; returns ``(path int32 (T,), best log-prob)``."""
    log_emit, ls, lt, le = _check_dense(log_emit, log_startprob, log_transmat, log_endprob)
    T, S = log_emit.shape
    path = np.empty(T, dtype=np.int32)
    info = np.zeros(2)
    status = K.dense_viterbi(log_emit, ls, lt, le, path, info)
    _raise_status(status, info, log_emit, T, S)
    return path, float(info[0])


def segments_from_path(path, topo: Topology) -> list[tuple[int, int, int]]:
    """Runs of frames per unit: ``[(unit_index, start_frame, end_frame), ...]``.

    ``end_frame`` is exclusive. Sub-states of one unit merge into one run; inserted
    optional silences appear with ``unit_index == -1``.
    """
    topo = _check_topology(topo)
    path = np.asarray(path)
    if path.ndim != 1 or path.size == 0 or path.dtype.kind not in "iu":
        raise ParameterError(f"path must be a non-empty 1-D integer array, got {path.dtype} "
                             f"shape {path.shape}")
    if path.min() < 0 or path.max() >= topo.n_states:
        raise ParameterError(f"path holds state {int(path.max())} but the topology has "
                             f"{topo.n_states} states")
    units = topo.unit_index[path]
    # a new run starts where the unit changes, or where the state index moves to a
    # different occurrence (two silences or repeated units are different states)
    change = np.flatnonzero((units[1:] != units[:-1]) |
                            ((units[1:] == -1) & (path[1:] != path[:-1]))) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [path.size]))
    return [(int(units[s]), int(s), int(e)) for s, e in zip(starts, ends)]
