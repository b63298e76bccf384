"""``vqalign bench hmm``: linear-chain forward-backward vs hmmlearn's scaling version.

Both run on the same model and the same emissions: a left-to-right chain of S
states (self loop or next; the last state keeps itself; a path may end anywhere,
which is hmmlearn's convention) with transitions from expected durations
(p = 1 - S/T), and synthetic emission log-likelihoods with a true segmentation.
vqalign uses its banded scaled kernel (O(T*S)); hmmlearn 0.3 its dense C++
``forward_scaling`` / ``backward_scaling`` (O(T*S^2)) on the row-shifted
``exp`` of the same log-likelihoods, then the normalized product of the two
lattices (what ``hmmlearn.base._score_scaling`` does). Times are medians after
one warm-up run, reported as ns per frame*state, with their ratio.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

from vqalign._validation import check_positive_int
from vqalign.exceptions import ParameterError


def add_arguments(parser):
    parser.add_argument("--T", type=int, default=10000, help="frames (default 10000)")
    parser.add_argument("--S", type=int, default=500, help="states (default 500)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per library after one warm-up (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def make_problem(T: int, S: int, seed: int = 0):
    """(log_emit (T, S) float64, Topology, dense startprob, dense transmat)."""
    from vqalign.hmm.topology import Topology

    rng = np.random.default_rng(seed)
    d = T / S
    p = min(max(1.0 - 1.0 / d, 0.0), 1.0 - 1e-6)
    lt = np.full((S, 3), -np.inf)
    lt[:, 0] = np.log(p)
    lt[:-1, 1] = np.log1p(-p)
    lt[-1, 0] = 0.0
    names = [f"s{i}" for i in range(S)]
    topo = Topology(labels=[f"{n}.0" for n in names], symbols=names,
                    unit_index=np.arange(S, dtype=np.int32), emit_ids=np.arange(S, dtype=np.int32),
                    log_trans=lt, log_start=np.r_[0.0, np.full(S - 1, -np.inf)],
                    log_end=np.zeros(S), skippable=np.zeros(S, bool))
    # frame-level log-likelihoods of MFCC-like magnitude, favouring the true state
    truth = np.minimum((np.arange(T) * S) // T, S - 1)
    log_emit = rng.normal(-60.0, 4.0, size=(T, S))
    log_emit[np.arange(T), truth] += 6.0
    start = np.zeros(S)
    start[0] = 1.0
    trans = np.zeros((S, S))
    idx = np.arange(S)
    trans[idx, idx] = np.exp(lt[:, 0])
    trans[idx[:-1], idx[:-1] + 1] = np.exp(lt[:-1, 1])
    return log_emit, topo, start, trans


def _median_time(fn, repeat):
    fn()                                   # warm-up (JIT compile, page faults)
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _threads(n):
    import numba  # noqa: PLC0415
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    return numba.get_num_threads()


def _tied_problem(U, T, n_sym, D=13, K=256, top_n=8, seed=0):
    """A tied-mixture E-step as the aligner runs it: U utterances of T frames."""
    from vqalign.hmm import DiagGMM, TiedMixtureHMM  # noqa: PLC0415
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(40, D))
    data = []
    for _ in range(U):
        syms = [f"p{i}" for i in rng.integers(0, 40, size=n_sym)]
        reps = np.diff(np.linspace(0, T, n_sym + 1).astype(int))
        X = np.concatenate([rng.normal(centres[int(s[1:])], 1.0, size=(r, D))
                            for s, r in zip(syms, reps)]).astype(np.float32)
        data.append((X, [[s] for s in syms]))
    Xall = np.concatenate([x for x, _ in data])
    cb = Xall[rng.choice(Xall.shape[0], K, replace=False)]
    gmm = DiagGMM.from_codebook(cb, Xall, var_floor=1e-2, top_n=top_n)
    m = TiedMixtureHMM(gmm=gmm, states_per_symbol=3, optional_silence="sil", top_n=top_n,
                       n_iter=1, update="wt", beam=1e-12)
    m.fit(data)
    off = np.zeros(U + 1, np.int64)
    off[1:] = np.cumsum([x.shape[0] for x, _ in data])
    return m, Xall, off, m.batch([w for _, w in data])


def run_bench(T=10000, S=500, repeat=3, seed=0, utterances=64) -> dict:
    T = check_positive_int(T, "--T")
    S = check_positive_int(S, "--S", minimum=2)
    repeat = check_positive_int(repeat, "--repeat")
    if T < S:
        raise ParameterError(f"--T {T} is smaller than --S {S}: a chain needs one frame per state")
    try:
        from hmmlearn import _hmmc
    except ImportError as exc:  # pragma: no cover - optional peer
        raise ParameterError("hmmlearn is not installed; pip install 'hmmlearn>=0.3'") from exc
    import numba  # noqa: PLC0415

    from vqalign.bench import _kernels as BK  # noqa: PLC0415
    from vqalign.hmm import forward_backward  # noqa: PLC0415

    all_cores = numba.config.NUMBA_NUM_THREADS
    log_emit, topo, start, trans = make_problem(T, S, seed)
    lt = np.exp(topo.log_trans)
    st, en = np.exp(topo.log_start), np.exp(topo.log_end)
    cols = topo.emit_ids

    def ours():
        return forward_backward(log_emit, topo, method="scaled", posteriors="states")

    def reference():
        m = log_emit.max(axis=1, keepdims=True)
        bl = np.exp(log_emit - m)
        post = np.empty((T, S))
        ll = BK.plain_band_fb(bl, cols, lt, st, en, post)
        return post, ll + float(m.sum())

    def theirs():
        m = log_emit.max(axis=1, keepdims=True)
        frameprob = np.exp(log_emit - m)
        ll, fwd, scaling = _hmmc.forward_scaling(start, trans, frameprob)
        bwd = _hmmc.backward_scaling(start, trans, frameprob, scaling)
        post = fwd * bwd
        post /= post.sum(axis=1, keepdims=True)
        return post, ll + float(m.sum())

    old = numba.get_num_threads()
    try:
        _threads(1)
        t_ours, (post_ours, ll_ours) = _median_time(ours, repeat)
        t_ref, (post_ref, ll_ref) = _median_time(reference, repeat)
        t_theirs, (post_theirs, ll_theirs) = _median_time(theirs, repeat)
        # the aligner's own call: the tied-mixture E-step over a batch (beam 1e-12)
        U = check_positive_int(utterances, "--utterances")
        Tu, n_sym = 400, 30
        m, X, off, batch = _tied_problem(U, Tu, n_sym, seed=seed)
        sel = m.select(X)
        trans_b, start_b, end_b = m.transitions(batch)
        blt = m.scaled_emissions(sel)
        ref_ll = np.zeros(U)
        rows = {}
        for threads in (1, all_cores):
            n = _threads(threads)
            te, stats = _median_time(lambda: m.estep(X, off, batch, sel), repeat)
            tr, _ = _median_time(lambda: BK.plain_band_fb_batch(
                blt, off, batch.state_off, batch.emit_ids, trans_b, start_b, end_b, ref_ll),
                repeat)
            cells = float(stats.cells.sum())
            full = float(np.sum(np.diff(off) * np.diff(batch.state_off)))
            rows[n] = {"threads": n, "engine_s": te, "reference_s": tr,
                       "engine_ns_per_active_cell": te / cells * 1e9,
                       "engine_ns_per_cell": te / full * 1e9,
                       "reference_ns_per_cell": tr / full * 1e9,
                       "active_fraction": cells / full, "ratio_vs_reference": tr / te}
        gsum = np.add.reduceat(sel.gmax, off[:-1])
        ll_diff = abs(float((ref_ll + gsum).sum()) - stats.loglik)
    finally:
        numba.set_num_threads(old)
    n = float(T) * S
    res = {
        "T": T, "S": S, "repeat": repeat, "threads": 1,
        "vqalign_ns": t_ours / n * 1e9,
        "reference_ns": t_ref / n * 1e9,
        "hmmlearn_ns": t_theirs / n * 1e9,
        "ratio": t_theirs / t_ours,
        "ratio_vs_reference": t_ref / t_ours,
        "max_abs_posterior_diff": float(np.max(np.abs(post_ours - post_theirs))),
        "max_abs_posterior_diff_reference": float(np.max(np.abs(post_ours - post_ref))),
        "log_likelihood_diff": float(abs(ll_ours - ll_theirs)),
        "estep": {"utterances": U, "frames_per_utterance": Tu,
                  "states_per_utterance": int(batch.n_states // U),
                  "single_thread": rows[1], "all_cores": rows[max(rows)],
                  "log_likelihood_diff_vs_reference": ll_diff},
    }
    return res


def run(args) -> int:
    res = run_bench(args.T, args.S, args.repeat, args.seed)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"forward-backward with state posteriors, T={res['T']} frames, S={res['S']} states, "
          f"median of {res['repeat']} after warm-up, 1 thread each")
    print(f"  vqalign engine kernel            {res['vqalign_ns']:10.2f} ns per frame*state")
    print(f"  plain banded reference (numba)   {res['reference_ns']:10.2f} ns per frame*state "
          f"({res['ratio_vs_reference']:.2f}x)")
    print(f"  hmmlearn 0.3 (dense, scaling)    {res['hmmlearn_ns']:10.2f} ns per frame*state "
          f"({res['ratio']:.1f}x)")
    print(f"  max |posterior difference|       {res['max_abs_posterior_diff']:10.3g} (hmmlearn), "
          f"{res['max_abs_posterior_diff_reference']:.3g} (reference)")
    e = res["estep"]
    print(f"the aligner's tied-mixture E-step, {e['utterances']} utterances x "
          f"{e['frames_per_utterance']} frames x {e['states_per_utterance']} states, beam 1e-12:")
    for key in ("single_thread", "all_cores"):
        r = e[key]
        print(f"  {r['threads']} thread(s): engine {r['engine_ns_per_active_cell']:.1f} ns per "
              f"active cell ({100 * r['active_fraction']:.1f} % of the cells active), "
              f"{r['ratio_vs_reference']:.1f}x the plain reference ({r['reference_ns_per_cell']:.1f}"
              " ns per cell, every cell)")
    return 0
