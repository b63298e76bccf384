"""``vqalign bench rvq``: residual VQ of wide vectors (LLM-activation-like) vs faiss.

Both libraries learn ``--n-stages`` codebooks of ``--n-codes`` codes on the same
``--n-train`` vectors and encode the same ``--n-test`` held-out vectors with the
same beam width (``--beam``; faiss's ``max_beam_size``). Reported per library:
fit seconds, encode seconds (held-out set), relative MSE
``sum ||x - x_hat||^2 / sum ||x||^2`` and the mean cosine similarity between
each held-out vector and its reconstruction, all measured in this run with the
same thread count (``--threads``, default all cores) on both sides.

The vectors imitate transformer activations: a low-rank signal (rank ``--rank``,
singular values decaying like 1/sqrt(i)) plus isotropic noise, a per-feature
offset and scale, and a handful of "massive" outlier features.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from vqalign._validation import check_positive_int


def add_arguments(parser):
    parser.add_argument("--d", type=int, default=2048, help="vector width (default 2048)")
    parser.add_argument("--n-stages", type=int, default=4, help="codebooks (default 4)")
    parser.add_argument("--n-codes", type=int, default=256, help="codes per stage (default 256)")
    parser.add_argument("--n-train", type=int, default=40000, help="training vectors (40000)")
    parser.add_argument("--n-test", type=int, default=10000, help="held-out vectors (10000)")
    parser.add_argument("--rank", type=int, default=64, help="rank of the signal (default 64)")
    parser.add_argument("--beam", type=int, default=1,
                        help="beam width at encode time for both libraries (default 1: greedy)")
    parser.add_argument("--refine-passes", type=int, default=None,
                        help="vqalign joint refinement passes (default: ResidualVQ's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    parser.add_argument("--no-peers", action="store_true", help="vqalign only (no faiss)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def activations(n: int, d: int = 2048, *, rank: int = 64, noise: float = 0.35,
                n_outliers: int = 4, seed: int = 0) -> np.ndarray:
    """n x d float32 activation-like vectors (low rank + noise + offsets + outlier features).

    The same ``seed`` gives the same distribution (basis, offsets, outliers), so
    two calls with different ``n`` draw from one population: rows are generated
    in order from one stream, and ``activations(a + b)[a:]`` are held-out rows.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    sv = 6.0 / np.sqrt(np.arange(1, rank + 1))
    offset = 0.3 * rng.standard_normal(d)
    scale = np.exp(0.25 * rng.standard_normal(d))
    outl = rng.choice(d, size=min(n_outliers, d), replace=False)
    X = np.empty((n, d), np.float32)
    step = 8192
    for s in range(0, n, step):
        m = min(step, n - s)
        Z = rng.standard_normal((m, rank)) * sv
        B = Z @ basis.T * np.sqrt(d / rank) * 0.1 + noise * rng.standard_normal((m, d))
        B = (B + offset) * scale
        B[:, outl] += 8.0 * np.abs(rng.standard_normal((m, outl.size)))
        X[s:s + m] = B
    return X


def _quality(X, R) -> tuple[float, float]:
    X = X.astype(np.float64)
    R = R.astype(np.float64)
    err = ((X - R) ** 2).sum()
    rel = float(err / (X ** 2).sum())
    xn = np.linalg.norm(X, axis=1)
    rn = np.linalg.norm(R, axis=1)
    ok = (xn > 0) & (rn > 0)
    cos = float(((X * R).sum(1)[ok] / (xn[ok] * rn[ok])).mean())
    return rel, cos


def run_bench(*, d=2048, n_stages=4, n_codes=256, n_train=40000, n_test=10000, rank=64,
              beam=1, refine_passes=None, threads=None, seed=0, peers=True) -> dict:
    import numba

    from vqalign.lbg import ResidualVQ

    threads = (os.cpu_count() or 1) if threads is None else threads
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    X = activations(n_train + n_test, d, rank=rank, seed=seed)
    Xtr, Xte = X[:n_train], X[n_train:]
    out = {"d": d, "n_stages": n_stages, "n_codes": n_codes, "n_train": n_train,
           "n_test": n_test, "rank": rank, "beam": beam, "seed": seed,
           "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        threadpool_limits = None
    ctx = threadpool_limits(threads) if threadpool_limits else None
    if ctx is not None:
        ctx.__enter__()
    try:
        # warm-up: compile the kernels on small data (excluded): the stage subspace (16 of 64
        # features: fused kernels) and the full space (64 features: the BLAS path)
        ResidualVQ(2, 16, random_state=1).fit(Xtr[:2000, :64]).encode(Xte[:100, :64])
        ResidualVQ(2, 16, stage_dim=None, random_state=1).fit(Xtr[:2000, :64]).encode(
            Xte[:100, :64])
        kw = {} if refine_passes is None else {"refine_passes": refine_passes}
        t = time.perf_counter()
        rvq = ResidualVQ(n_stages, n_codes, beam_size=beam, random_state=seed, **kw).fit(Xtr)
        v_fit = time.perf_counter() - t
        out["vqalign_fit_s"] = round(v_fit, 4)
        t = time.perf_counter()
        codes = rvq.encode(Xte)
        v_enc = time.perf_counter() - t
        out["vqalign_encode_s"] = round(v_enc, 4)
        rel, cos = _quality(Xte, rvq.decode(codes))
        out["vqalign_rel_mse"] = round(rel, 5)
        out["vqalign_cos"] = round(cos, 5)
        out["vqalign_stage_dead"] = [int(x) for x in rvq.stage_dead_]
        out["vqalign_refine_passes"] = int(rvq.refine_passes)
        out["vqalign_stage_dims"] = [int(x) for x in rvq.stage_dims_]
        out["threads"] = {"vqalign": numba.get_num_threads()}
        if peers:
            try:
                import faiss
            except ImportError:
                faiss = None
            if faiss is not None:
                faiss.omp_set_num_threads(threads)
                out["threads"]["faiss"] = faiss.omp_get_max_threads()
                nbits = int(np.log2(n_codes))
                rq = faiss.ResidualQuantizer(d, n_stages, nbits)
                rq.max_beam_size = beam
                rq.verbose = False
                t = time.perf_counter()
                rq.train(np.ascontiguousarray(Xtr))
                f_fit = time.perf_counter() - t
                out["faiss_fit_s"] = round(f_fit, 4)
                t = time.perf_counter()
                fc = rq.compute_codes(np.ascontiguousarray(Xte))
                f_enc = time.perf_counter() - t
                out["faiss_encode_s"] = round(f_enc, 4)
                rel, cos = _quality(Xte, rq.decode(fc))
                out["faiss_rel_mse"] = round(rel, 5)
                out["faiss_cos"] = round(cos, 5)
                out["fit_speedup_vs_faiss"] = round(f_fit / v_fit, 2)
                out["encode_speedup_vs_faiss"] = round(f_enc / v_enc, 2)
                out["rel_mse_ratio_vs_faiss"] = round(
                    out["vqalign_rel_mse"] / out["faiss_rel_mse"], 4)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    return out


def run(args) -> int:
    res = run_bench(
        d=check_positive_int(args.d, "--d"), n_stages=check_positive_int(args.n_stages, "--n-stages"),
        n_codes=check_positive_int(args.n_codes, "--n-codes"),
        n_train=check_positive_int(args.n_train, "--n-train"),
        n_test=check_positive_int(args.n_test, "--n-test"),
        rank=check_positive_int(args.rank, "--rank"), beam=check_positive_int(args.beam, "--beam"),
        refine_passes=(None if args.refine_passes is None
                       else check_positive_int(args.refine_passes, "--refine-passes", minimum=0)),
        threads=None if args.threads is None else check_positive_int(args.threads, "--threads"),
        seed=args.seed, peers=not args.no_peers)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"residual VQ benchmark: D={res['d']}, {res['n_stages']} stages x {res['n_codes']} codes, "
          f"{res['n_train']} training / {res['n_test']} held-out vectors, beam {res['beam']}; "
          f"threads {res['threads']}; load average {res['load_average'][0]}")
    print(f"{'library':<10}{'fit s':>9}{'encode s':>10}{'rel MSE':>10}{'cosine':>9}")
    for name in ("vqalign", "faiss"):
        if f"{name}_fit_s" in res:
            print(f"{name:<10}{res[f'{name}_fit_s']:9.2f}{res[f'{name}_encode_s']:10.3f}"
                  f"{res[f'{name}_rel_mse']:10.4f}{res[f'{name}_cos']:9.4f}")
    if "faiss_fit_s" in res:
        print(f"vqalign fit {res['fit_speedup_vs_faiss']}x faster, encode "
              f"{res['encode_speedup_vs_faiss']}x faster, relative MSE x"
              f"{res['rel_mse_ratio_vs_faiss']} of faiss's")
    print(f"codes re-seeded per stage (vqalign): {res['vqalign_stage_dead']}")
    return 0
