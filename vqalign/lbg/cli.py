"""``vqalign codebook FEATURES -K 1024 --method lbg --out cb.npz [--compare PNG]``."""

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
    parser.add_argument("--compare", metavar="PNG",
                        help="also train random-init Lloyd, minibatch Lloyd and LBG on the same "
                             "data and draw loss, entropy and utilization against steps")
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
        try:
            from vqalign.io.store import open_store
        except ImportError as exc:  # pragma: no cover - features engineer's module missing
            raise ParameterError(f"{p} is a folder but vqalign.io.store is unavailable") from exc
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

    if args.out is None and args.compare is None:
        raise ParameterError("nothing to write: give --out cb.npz and/or --compare plot.png")
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise ParameterError(f"{args.out} exists; pass --overwrite to replace it")
    if args.compare and Path(args.compare).exists() and not args.overwrite:
        raise ParameterError(f"{args.compare} exists; pass --overwrite to replace it")
    data = load_features(args.features)
    common = dict(random_state=args.seed, progress=not args.no_progress,
                  dead_policy=None if args.dead_policy == "none" else args.dead_policy)
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
    if args.compare:
        runs = {}
        for label, method in (("random init + Lloyd", "lloyd"), ("minibatch Lloyd", "minibatch"),
                              ("LBG", "lbg")):
            if method == args.method:
                runs[label] = vq
            else:
                runs[label] = VectorQuantizer(method, args.k, **common).fit(data)
        compare_figure(runs, args.compare, overwrite=args.overwrite)
        print(f"wrote {args.compare}")
    return 0


def compare_figure(runs: dict, path, *, overwrite: bool = False):
    """Loss, entropy and utilization against steps for several fitted quantizers (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vqalign.io.atomic import atomic_write

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, vq in runs.items():
        h = vq.history_
        step = h["step"]
        axes[0].plot(step, h["loss"], label=label)
        axes[1].plot(step, h["entropy"], label=label)
        axes[2].plot(step, h["utilization"], label=label)
    k = next(iter(runs.values())).codebook_.shape[0]
    axes[1].axhline(np.log(k), color="0.5", ls="--", lw=1, label="log K")
    axes[0].set_yscale("log")
    for ax, title in zip(axes, ("MSE (log scale)", "code entropy (nats)", "utilization")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    suffix = Path(path).suffix.lstrip(".") or "png"
    with atomic_write(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, format=suffix, dpi=110)
    plt.close(fig)
