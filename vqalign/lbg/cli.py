"""``vqalign codebook FEATURES -K 1024 --method lbg --out cb.npz``, and the method study
``vqalign codebook FEATURES -K 16384 --compare random,minibatch,lbg --figure study.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError


def add_arguments(parser):
    parser.add_argument("features", metavar="FEATURES",
                        help="a feature-store folder (vqalign features) or a .npy file (N, D)")
    parser.add_argument("-K", "--n-codes", dest="k", type=int, default=256,
                        help="number of codes (default 256)")
    parser.add_argument("--method", choices=("lbg", "minibatch", "lloyd", "random"),
                        default="lbg", help="training method (default lbg)")
    parser.add_argument("--out", help="output codebook (.npz with a JSON header)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--compare", metavar="METHODS",
                        help="train several methods on the same data and draw them on one "
                             "figure (--figure): a comma list of random (random init + Lloyd), "
                             "minibatch (EMA minibatch Lloyd), lloyd, lbg; or a .png path "
                             "(random,minibatch,lbg drawn there)")
    parser.add_argument("--figure", metavar="PNG",
                        help="where --compare draws loss against steps and seconds, code "
                             "entropy against log K, utilization and dead codes re-seeded "
                             "(default codebook_study.png)")
    parser.add_argument("--first", type=int, default=None, metavar="N",
                        help="train on the first N frames only")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n-iter", type=int, default=None,
                        help="Lloyd iterations (lloyd) or iterations per level (lbg)")
    parser.add_argument("--dead-policy", choices=("split", "resample", "none"), default="split")
    parser.add_argument("--max-points-per-code", type=int, default=64)
    parser.add_argument("--final-passes", type=int, default=0,
                        help="full Lloyd passes over all frames after the last LBG level "
                             "(default 0: train on the subsample, as faiss does)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_features(path):
    """A FeatureStore-like object (with .X and .settings) or a float32 array from a .npy."""
    p = Path(path)
    if p.is_dir():
        from vqalign.io.store import open_store

        return open_store(p)
    if p.suffix == ".npy" and p.is_file():
        X = np.load(p, mmap_mode="r")
        if X.dtype != np.float32 and X.dtype.kind == "f":
            X = np.asarray(X, dtype=np.float32)
        return X
    if not p.exists():
        raise ParameterError(f"features {p} do not exist")
    raise ParameterError(f"{p}: give a feature-store folder or a .npy file of shape (N, D)")


def run(args) -> int:
    from vqalign.lbg.quantizer import VectorQuantizer

    methods, figure = _compare_args(args)
    if args.out is None and not methods:
        raise ParameterError("nothing to write: give --out cb.npz and/or --compare "
                             "random,minibatch,lbg --figure study.png")
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise ParameterError(f"{args.out} exists; pass --overwrite to replace it")
    if figure and Path(figure).exists() and not args.overwrite:
        raise ParameterError(f"{figure} exists; pass --overwrite to replace it")
    data = load_features(args.features)
    if args.first is not None:
        X = data.X if hasattr(data, "X") else data
        data = X[:max(1, int(args.first))]
    common = dict(random_state=args.seed, progress=not args.no_progress,
                  dead_policy=None if args.dead_policy == "none" else args.dead_policy)
    if methods:
        # compile every method's kernels first so that no curve's seconds include numba
        X0 = data.X if hasattr(data, "X") else data
        small = np.ascontiguousarray(X0[:min(X0.shape[0], 5000)], dtype=np.float32)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for m in {args.method, *(COMPARE[m][1] for m in methods)}:
                VectorQuantizer(m, min(16, small.shape[0]), random_state=0).fit(small)
    vq = VectorQuantizer(args.method, args.k, n_iter=args.n_iter,
                         max_points_per_code=args.max_points_per_code,
                         final_passes=args.final_passes, **common).fit(data)
    h = vq.history_.last
    print(f"{args.method}: K={vq.codebook_.shape[0]} D={vq.n_features_in_} steps={vq.n_iter_} "
          f"MSE={vq.mse_:.5g} utilization={h['utilization']:.4f} "
          f"entropy={h['entropy']:.3f}/{h['log_k']:.3f} nats "
          f"re-seeded={int(np.nansum(vq.history_['dead_reseeded']))} "
          f"({h['seconds']:.1f} s)")
    if args.out:
        vq.save(args.out, overwrite=args.overwrite)
        print(f"wrote {args.out}")
    if methods:
        runs = {}
        for m in methods:
            label, method = COMPARE[m]
            if method == args.method:
                runs[label] = vq
                continue
            runs[label] = VectorQuantizer(method, args.k, **common).fit(data)
            r = runs[label]
            h = r.history_.last
            print(f"{label}: steps={r.n_iter_} MSE={r.mse_:.5g} "
                  f"utilization={h['utilization']:.4f} "
                  f"re-seeded={int(np.nansum(r.history_['dead_reseeded']))} "
                  f"({h['seconds']:.1f} s)")
        # one exact nearest-code pass over all the frames per method: the same MSE for all
        from vqalign.lbg.metrics import usage
        scores = {}
        for label, r in runs.items():
            u = usage(data, r.codebook_)
            scores[label] = u["mse"]
            print(f"{label}: MSE on all {int(u['counts'].sum())} frames {u['mse']:.5g}, "
                  f"utilization {u['utilization']:.4f}")
        compare_figure(runs, figure, overwrite=args.overwrite, scores=scores)
        print(f"wrote {figure}")
    return 0


#: --compare names: (label, VectorQuantizer method)
COMPARE = {"random": ("random init + Lloyd", "lloyd"), "minibatch": ("minibatch Lloyd", "minibatch"),
           "lloyd": ("Lloyd", "lloyd"), "lbg": ("LBG", "lbg")}


def _compare_args(args):
    """(methods, figure path) from --compare / --figure."""
    if not args.compare:
        if args.figure:
            raise ParameterError("--figure needs --compare METHODS (e.g. random,minibatch,lbg)")
        return [], None
    if args.compare.lower().endswith((".png", ".svg", ".pdf")):
        return ["random", "minibatch", "lbg"], args.compare
    methods = [m.strip() for m in args.compare.split(",") if m.strip()]
    bad = [m for m in methods if m not in COMPARE]
    if bad or not methods:
        raise ParameterError(f"--compare {args.compare!r}: unknown method(s) {bad}; use a comma "
                             f"list of {', '.join(COMPARE)}")
    return methods, args.figure or "codebook_study.png"


def compare_figure(runs: dict, path, *, overwrite: bool = False, scores: dict | None = None):
    """The codebook study on one figure (PNG/SVG/PDF) for several fitted quantizers.

    Panels: loss against steps, loss against wall-clock seconds, code entropy
    against log K (the diagonal is the uniform bound), utilization against
    steps, and dead codes re-seeded per step. ``scores`` (label -> MSE on all
    frames) go in the legend; otherwise each model's ``mse_`` (its last pass).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vqalign.io.atomic import atomic_write

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    ax = axes.ravel()
    lk_max = 0.0
    for label, vq in runs.items():
        h = vq.history_
        step = h["step"]
        (line,) = ax[0].plot(step, h["loss"], label=label)
        c = line.get_color()
        ax[1].plot(h["seconds"], h["loss"], color=c, label=label)
        ax[2].plot(h["log_k"], h["entropy"], ".", ms=3, color=c, label=label)
        ax[3].plot(step, h["utilization"], color=c, label=label)
        ax[4].plot(step, h["dead_reseeded"], color=c, lw=0.8, label=label)
        lk_max = max(lk_max, float(np.nanmax(h["log_k"])))
        final = vq.mse_ if scores is None else scores[label]
        ax[5].plot([], [], color=c, label=f"{label}: MSE {final:.4g}, "
                   f"{h['seconds'][-1]:.0f} s, {len(h)} steps")
    ax[2].plot([0, lk_max], [0, lk_max], color="0.5", ls="--", lw=1, label="entropy = log K")
    ax[0].set_yscale("log")
    ax[1].set_yscale("log")
    titles = ("MSE against steps", "MSE against wall-clock seconds",
              "code entropy (nats) against log K", "utilization (codes used)",
              "dead codes re-seeded per step")
    xlabels = ("step", "seconds", "log K", "step", "step")
    for a, title, xl in zip(ax[:5], titles, xlabels):
        a.set_title(title, fontsize=10)
        a.set_xlabel(xl)
        a.grid(alpha=0.3)
    ax[2].legend(fontsize=8)
    k = next(iter(runs.values())).codebook_.shape[0]
    ax[5].axis("off")
    ax[5].legend(loc="center", fontsize=9, title=f"K = {k}, N = {runs_n(runs)}")
    fig.tight_layout()
    suffix = Path(path).suffix.lstrip(".") or "png"
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, format=suffix, dpi=110)
    plt.close(fig)


def runs_n(runs) -> int:
    vq = next(iter(runs.values()))
    return int(vq.counts_.sum())
