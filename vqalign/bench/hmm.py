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


def run_bench(T=10000, S=500, repeat=3, seed=0) -> dict:
    T = check_positive_int(T, "--T")
    S = check_positive_int(S, "--S", minimum=2)
    repeat = check_positive_int(repeat, "--repeat")
    if T < S:
        raise ParameterError(f"--T {T} is smaller than --S {S}: a chain needs one frame per state")
    try:
        from hmmlearn import _hmmc
    except ImportError as exc:  # pragma: no cover - optional peer
        raise ParameterError("hmmlearn is not installed; pip install 'hmmlearn>=0.3'") from exc
    from vqalign.hmm import forward_backward

    log_emit, topo, start, trans = make_problem(T, S, seed)

    def ours():
        return forward_backward(log_emit, topo, method="scaled", posteriors="states")

    def theirs():
        m = log_emit.max(axis=1, keepdims=True)
        frameprob = np.exp(log_emit - m)
        ll, fwd, scaling = _hmmc.forward_scaling(start, trans, frameprob)
        bwd = _hmmc.backward_scaling(start, trans, frameprob, scaling)
        post = fwd * bwd
        post /= post.sum(axis=1, keepdims=True)
        return post, ll + float(m.sum())

    t_ours, (post_ours, ll_ours) = _median_time(ours, repeat)
    t_theirs, (post_theirs, ll_theirs) = _median_time(theirs, repeat)
    n = float(T) * S
    res = {
        "T": T, "S": S, "repeat": repeat,
        "vqalign_ns": t_ours / n * 1e9,
        "hmmlearn_ns": t_theirs / n * 1e9,
        "ratio": t_theirs / t_ours,
        "max_abs_posterior_diff": float(np.max(np.abs(post_ours - post_theirs))),
        "log_likelihood_diff": float(abs(ll_ours - ll_theirs)),
    }
    return res


def run(args) -> int:
    res = run_bench(args.T, args.S, args.repeat, args.seed)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"forward-backward with state posteriors, T={res['T']} frames, S={res['S']} states, "
          f"median of {res['repeat']} after warm-up")
    print(f"  vqalign (banded, scaled)      {res['vqalign_ns']:10.2f} ns per frame*state")
    print(f"  hmmlearn 0.3 (dense, scaling) {res['hmmlearn_ns']:10.2f} ns per frame*state")
    print(f"  ratio hmmlearn / vqalign      {res['ratio']:10.1f}x")
    print(f"  max |posterior difference|    {res['max_abs_posterior_diff']:10.3g}")
    print(f"  |log-likelihood difference|   {res['log_likelihood_diff']:10.3g}")
    return 0
