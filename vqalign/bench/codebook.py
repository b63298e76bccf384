"""``vqalign bench codebook``: LBG vs faiss k-means and scikit-learn, one run, same data.

The data are a seeded Gaussian mixture (2000 random centres with anisotropic
noise, D = 13, like MFCC frames). Every codebook is scored by the same function
(vqalign.lbg.usage: exact nearest code of all N points) for MSE, utilization
and code entropy. Numba compilation is excluded by a warm-up on small data.
"""

from __future__ import annotations

import json
import time

import numpy as np

from vqalign._validation import check_positive_int


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=1_000_000, help="training vectors (default 1e6)")
    parser.add_argument("--k", type=int, default=1024, help="codes (default 1024)")
    parser.add_argument("--d", type=int, default=13, help="dimensions (default 13)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--full", action="store_true",
                        help="also run scikit-learn KMeans (k-means++, slow at large K)")


def gaussian_mixture(n: int, d: int = 13, *, n_centres: int = 2000, seed: int = 0,
                     chunk: int = 1 << 20, out=None) -> np.ndarray:
    """n x d float32 vectors from a mixture of ``n_centres`` anisotropic Gaussians.

    Centres ~ N(0, I); each centre has its own per-feature noise std in
    [0.05, 0.4]; mixture weights are uneven (Dirichlet(1)), like phone
    frequencies. ``out`` may be a preallocated (n, d) float32 array or memmap;
    the data are generated in chunks so a memmap of any size can be filled.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, d))
    scales = rng.uniform(0.05, 0.4, size=(n_centres, d))
    weights = rng.dirichlet(np.ones(n_centres))
    X = np.empty((n, d), np.float32) if out is None else out
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        lab = rng.choice(n_centres, size=m, p=weights)
        X[start:start + m] = centres[lab] + rng.standard_normal((m, d)) * scales[lab]
    return X


def _score(X, C) -> dict:
    from vqalign.lbg import usage
    u = usage(X, np.asarray(C, dtype=np.float32))
    return {"mse": u["mse"], "util": u["utilization"], "entropy": u["entropy"],
            "log_k": u["log_k"]}


def run(args) -> int:
    from vqalign.lbg import VectorQuantizer

    n = check_positive_int(args.n, "--n")
    k = check_positive_int(args.k, "--k")
    d = check_positive_int(args.d, "--d")
    X = gaussian_mixture(n, d, seed=args.seed)
    # warm-up: compile every kernel on small data (excluded from timings)
    VectorQuantizer("lbg", 32, random_state=1).fit(X[:20000])
    results = {}

    t = time.perf_counter()
    vq = VectorQuantizer("lbg", k, random_state=args.seed).fit(X)
    results["vqalign"] = {"s": time.perf_counter() - t, **_score(X, vq.codebook_),
                          "steps": vq.n_iter_}

    try:
        import faiss
        t = time.perf_counter()
        km = faiss.Kmeans(d, k, niter=20, seed=args.seed)
        km.train(X)
        results["faiss"] = {"s": time.perf_counter() - t, **_score(X, km.centroids)}
    except ImportError:
        results["faiss"] = None

    try:
        from sklearn.cluster import KMeans, MiniBatchKMeans
        t = time.perf_counter()
        mb = MiniBatchKMeans(n_clusters=k, batch_size=4096, random_state=args.seed).fit(X)
        results["sklearn_minibatch"] = {"s": time.perf_counter() - t,
                                        **_score(X, mb.cluster_centers_)}
        if args.full:
            t = time.perf_counter()
            km2 = KMeans(n_clusters=k, n_init=1, max_iter=20, random_state=args.seed).fit(X)
            results["sklearn_kmeans"] = {"s": time.perf_counter() - t,
                                         **_score(X, km2.cluster_centers_)}
    except ImportError:
        pass

    if args.json:
        flat = {"n": n, "k": k, "d": d, "seed": args.seed}
        for name, r in results.items():
            if r is None:
                continue
            flat[f"{name}_s"] = round(r["s"], 3)
            flat[f"{name}_mse"] = round(r["mse"], 5)
            flat[f"{name}_util"] = round(r["util"], 5)
            flat[f"{name}_entropy"] = round(r["entropy"], 4)
        if results.get("faiss"):
            flat["time_ratio_vs_faiss"] = round(results["vqalign"]["s"] / results["faiss"]["s"], 3)
            flat["mse_ratio_vs_faiss"] = round(results["vqalign"]["mse"] / results["faiss"]["mse"], 4)
        print(json.dumps(flat))
        return 0
    print(f"codebook benchmark: N={n} D={d} K={k} seed={args.seed} (Gaussian mixture, 2000 centres)")
    ref = results.get("faiss")
    print(f"{'library':<20}{'seconds':>9}{'x faiss':>9}{'MSE':>10}{'x faiss':>9}"
          f"{'util':>8}{'entropy':>9}")
    for name, r in results.items():
        if r is None:
            print(f"{name:<20} not installed")
            continue
        ts = f"{r['s'] / ref['s']:.2f}" if ref else "-"
        ms = f"{r['mse'] / ref['mse']:.3f}" if ref else "-"
        print(f"{name:<20}{r['s']:9.2f}{ts:>9}{r['mse']:10.4f}{ms:>9}{r['util']:8.4f}"
              f"{r['entropy']:9.3f}")
    print(f"(entropy in nats; log K = {np.log(k):.3f})")
    return 0
