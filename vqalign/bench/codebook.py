"""``vqalign bench codebook``: LBG vs faiss k-means and scikit-learn, one run, same data.

The data are a seeded Gaussian mixture (2000 random centres with anisotropic
noise, D = 13, like MFCC frames), or the frames of ``--features`` (a float32
.npy, read as a memmap, or a feature store). Every codebook is scored by the
same function (vqalign.lbg.usage: exact nearest code of all N points) for MSE,
utilization and code entropy. Numba compilation is excluded by a warm-up on
small data. Both sides use ``--threads`` threads (default: all cores); the
JSON gives each side's thread count, LBG's time per level and the process's
peak RSS right after vqalign's fit (data included).
"""

from __future__ import annotations

import json
import os
import resource
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
                        help="also run scikit-learn KMeans (k-means++, 20 iterations; slow at "
                             "large K)")
    parser.add_argument("--no-peers", action="store_true",
                        help="vqalign only (no faiss, no scikit-learn)")
    parser.add_argument("--features", metavar="PATH",
                        help="frames to train on instead of the Gaussian mixture: a float32 .npy "
                             "(memory-mapped, first --n rows) or a feature-store folder")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (default: all cores)")


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


def speech_frames(n: int, *, seed: int = 0, out=None, n_voices: int = 64,
                  rates=(0.7, 1.4), progress=None) -> np.ndarray:
    """n x 13 float32 MFCC frames of synthetic speech from many voices and speaking rates.

    Utterances of :data:`vqalign.datasets.synth.SENTENCES` are synthesized by
    :func:`vqalign.datasets.synth.synthesize` with ``n_voices`` speakers (f0,
    vocal-tract length, breathiness, pulse shape and jitter drawn around the
    built-in voices) and a random rate in ``rates``; 13 MFCCs per 10 ms frame
    (:func:`vqalign.features.mfcc`, librosa convention). ``out`` may be a
    preallocated (n, 13) float32 array or memmap, filled in order (about 5 ms of
    CPU per second of audio: 11M frames are ~30 hours of speech).
    """
    from vqalign.datasets.synth import SENTENCES, Voice, synthesize
    from vqalign.features import mfcc

    rng = np.random.default_rng(seed)
    voices = []
    for v in range(n_voices):
        female = v % 2 == 1
        voices.append(Voice(
            f"v{v:03d}", f0=float(rng.uniform(185, 250) if female else rng.uniform(85, 140)),
            formant_scale=float(rng.uniform(1.08, 1.25) if female else rng.uniform(0.9, 1.05)),
            breathiness=float(rng.uniform(0.02, 0.14)), open_frac=float(rng.uniform(0.36, 0.52)),
            close_frac=float(rng.uniform(0.14, 0.26)), jitter=float(rng.uniform(0.005, 0.02)),
            f0_range=float(rng.uniform(0.08, 0.18))))
    X = np.empty((n, 13), np.float32) if out is None else out
    filled = 0
    i = 0
    while filled < n:
        u = synthesize(SENTENCES[int(rng.integers(len(SENTENCES)))],
                       voice=voices[i % n_voices], rate=float(rng.uniform(*rates)),
                       seed=int(rng.integers(0, 2**31 - 1)))
        F = mfcc(u.audio, sr=u.sr, n_threads=1)
        m = min(F.shape[0], n - filled)
        X[filled:filled + m] = F[:m]
        filled += m
        i += 1
        if progress is not None and i % 500 == 0:
            progress(filled, n)
    return X


def _score(X, C) -> dict:
    from vqalign.lbg import usage
    u = usage(X, np.asarray(C, dtype=np.float32))
    return {"mse": u["mse"], "util": u["utilization"], "entropy": u["entropy"],
            "log_k": u["log_k"]}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def level_table(history) -> list[dict]:
    """Per LBG level: codes, steps, seconds spent in the level, last loss, codes re-seeded."""
    lv = history["level"].astype(int)
    sec = history["seconds"]
    rows, prev = [], 0.0
    for level in np.unique(lv):
        m = lv == level
        end = float(sec[m][-1])
        rows.append({"level": int(level), "k": int(history["n_codes"][m][0]),
                     "steps": int(m.sum()), "s": round(end - prev, 3),
                     "loss": round(float(history["loss"][m][-1]), 5),
                     "reseeded": int(np.nansum(history["dead_reseeded"][m]))})
        prev = end
    return rows


def _data(args, n, d):
    if args.features is None:
        return gaussian_mixture(n, d, seed=args.seed), "Gaussian mixture, 2000 centres"
    from vqalign.lbg.cli import load_features
    data = load_features(args.features)
    X = data.X if hasattr(data, "X") else data
    if X.shape[0] < n:
        from vqalign.exceptions import ParameterError
        raise ParameterError(f"--features {args.features} has {X.shape[0]} rows; --n {n} asks "
                             f"for more: use --n {X.shape[0]} or a larger store")
    return X[:n], f"{args.features} (first {n} rows)"


def run(args) -> int:
    import numba

    from vqalign.lbg import VectorQuantizer

    n = check_positive_int(args.n, "--n")
    k = check_positive_int(args.k, "--k")
    d = check_positive_int(args.d, "--d")
    if args.threads is None:
        threads = os.cpu_count() or 1
    else:
        threads = check_positive_int(args.threads, "--threads")
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t_data = time.perf_counter()
    X, source = _data(args, n, d)
    t_data = time.perf_counter() - t_data
    d = X.shape[1]
    # warm-up: compile every kernel on small data (excluded from timings), including the
    # parallel and neighbour-search kernels that only large K uses
    W = np.ascontiguousarray(X[:20000])
    VectorQuantizer("lbg", 32, random_state=1).fit(W)
    if k >= 2048 and W.shape[0] >= 4096:
        from vqalign.lbg import usage
        VectorQuantizer("lbg", 2048, random_state=1, max_points_per_code=8, n_iter=2,
                        last_iter=2).fit(W)
        usage(W, W[:2048])
    results = {}
    thr = {"vqalign": numba.get_num_threads()}

    t = time.perf_counter()
    vq = VectorQuantizer("lbg", k, random_state=args.seed).fit(X)
    fit_s = time.perf_counter() - t
    rss = _peak_rss_mb()
    t = time.perf_counter()
    results["vqalign"] = {"s": fit_s, **_score(X, vq.codebook_), "steps": vq.n_iter_}
    score_s = time.perf_counter() - t
    levels = level_table(vq.history_)

    if not args.no_peers:
        Xa = np.ascontiguousarray(X, dtype=np.float32)
        try:
            import faiss
            faiss.omp_set_num_threads(threads)
            thr["faiss"] = faiss.omp_get_max_threads()
            t = time.perf_counter()
            km = faiss.Kmeans(d, k, niter=20, seed=args.seed)
            km.train(Xa)
            results["faiss"] = {"s": time.perf_counter() - t, **_score(X, km.centroids)}
        except ImportError:
            results["faiss"] = None
        try:
            from sklearn.cluster import KMeans, MiniBatchKMeans
            from threadpoolctl import threadpool_limits
            thr["sklearn"] = threads
            with threadpool_limits(threads):
                t = time.perf_counter()
                mb = MiniBatchKMeans(n_clusters=k, batch_size=4096, random_state=args.seed).fit(Xa)
                results["sklearn_minibatch"] = {"s": time.perf_counter() - t,
                                                **_score(X, mb.cluster_centers_)}
                if args.full:
                    t = time.perf_counter()
                    km2 = KMeans(n_clusters=k, n_init=1, max_iter=20,
                                 random_state=args.seed).fit(Xa)
                    results["sklearn_kmeans"] = {"s": time.perf_counter() - t,
                                                 **_score(X, km2.cluster_centers_)}
        except ImportError:
            pass

    v = results["vqalign"]
    if args.json:
        flat = {"n": n, "k": k, "d": d, "seed": args.seed, "data": source,
                "threads": thr, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "data_s": round(t_data, 3), "vqalign_score_s": round(score_s, 3),
                "vqalign_peak_rss_mb": round(rss, 1), "vqalign_steps": v["steps"],
                "data_mb": round(n * d * 4 / 2**20, 1), "vqalign_levels": levels}
        for name, r in results.items():
            if r is None:
                continue
            flat[f"{name}_s"] = round(r["s"], 3)
            flat[f"{name}_mse"] = round(r["mse"], 5)
            flat[f"{name}_util"] = round(r["util"], 5)
            flat[f"{name}_entropy"] = round(r["entropy"], 4)
        if results.get("faiss"):
            flat["time_ratio_vs_faiss"] = round(v["s"] / results["faiss"]["s"], 3)
            flat["mse_ratio_vs_faiss"] = round(v["mse"] / results["faiss"]["mse"], 4)
        if results.get("sklearn_kmeans"):
            flat["mse_ratio_vs_sklearn_kmeans"] = round(
                v["mse"] / results["sklearn_kmeans"]["mse"], 4)
        print(json.dumps(flat))
        return 0
    print(f"codebook benchmark: N={n} D={d} K={k} seed={args.seed} ({source}); threads "
          + ", ".join(f"{a}={b}" for a, b in thr.items())
          + f"; load average {os.getloadavg()[0]:.2f}")
    print("vqalign LBG per level: " + "; ".join(
        f"K={r['k']} {r['steps']} steps {r['s']:.2f}s" for r in levels if r["s"] >= 0.05 * fit_s))
    print(f"vqalign fit {fit_s:.2f} s, scoring pass {score_s:.2f} s, peak RSS {rss:.0f} MB "
          f"(data {n * d * 4 / 2**20:.0f} MB)")
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
