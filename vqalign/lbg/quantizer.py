"""VectorQuantizer: one estimator over every codebook method (scikit-learn conventions)."""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_positive_int, check_probability, check_random_state
from vqalign.exceptions import ParameterError
from vqalign.history import History
from vqalign.lbg import deadcodes
from vqalign.lbg._data import as_training_data, check_k
from vqalign.lbg._run import Run
from vqalign.lbg.lbg import _check_params, fit_lbg, warn_few_points
from vqalign.lbg.lloyd import _random_rows, fit_lloyd
from vqalign.lbg.metrics import check_codebook, decode
from vqalign.lbg.minibatch import fit_minibatch
from vqalign.lbg.nearest import assign, prepare
from vqalign.lbg.persistence import check_encode_input, load_npz, save_npz

METHODS = ("lbg", "minibatch", "lloyd", "random")


class VectorQuantizer:
    """Learn a codebook of ``n_codes`` vectors and quantize features with it.

    Parameters
    ----------
    method : "lbg" | "minibatch" | "lloyd" | "random"
        "lbg": Linde-Buzo-Gray splitting from the mean, each level refined by
        ``refine`` ("lloyd" or "minibatch"), then ``final_passes`` Lloyd passes
        over all of X. "minibatch": EMA minibatch Lloyd from random vectors.
        "lloyd": full Lloyd from ``init``. "random": ``n_codes`` distinct random
        training vectors, no training (a baseline; one history row).
    n_codes : int
    n_iter : Lloyd iterations ("lloyd"; default 20) or per LBG level (default 3).
    last_iter : Lloyd iterations at LBG's last level (default 10; None: n_iter).
    growth : factor by which each LBG level multiplies the codes (default 1.5: the
        highest-distortion codes split first; 2 = classic doubling).
    n_steps, batch_size, decay : minibatch settings (decay = EMA weight of the past).
    dead_policy : "split" | "resample" | None (re-seeding of codes left without vectors).
    dead_window, dead_threshold : minibatch dead-code detection.
    max_points_per_code : LBG levels train on at most this many vectors per code.
    final_passes : full Lloyd passes over all of X after LBG's last level (default 0:
        like faiss, train on the subsample; each pass costs one read of X and on
        1M x 13, K=1024 lowers MSE by ~1-2 %).
    split_eps : LBG split offset, in standard deviations along each cluster's principal axis.
    min_share : during LBG levels, codes with fewer than this fraction of their even
        share of vectors are re-seeded (moves codes from sparse to dense regions).
    tol : relative MSE improvement under which Lloyd stops early.
    keep_snapshots : keep at most this many (step, level, codebook) tuples in ``snapshots_``.
    random_state : seed or numpy Generator.
    progress : show a tqdm progress bar (one tick per step).

    Attributes (after fit)
    ----------------------
    codebook_ (K, D) float32; history_ (vqalign.history.History); counts_ (K,)
    int64 code usage in the last training pass; n_iter_ (steps run);
    n_features_in_; feature_settings_ (dict from a feature store, else {});
    snapshots_ (list of (step, level, codebook)); mse_ (MSE of the last pass).
    """

    def __init__(self, method: str = "lbg", n_codes: int = 256, *, n_iter=None, n_steps=None,
                 batch_size: int = 4096, decay: float = 0.9, init="random",
                 dead_policy="split", dead_window=None, dead_threshold: float = 0.01,
                 refine: str = "lloyd", max_points_per_code: int = 64, final_passes: int = 0,
                 split_eps: float = 0.8, min_share: float = 0.3, tol: float = 1e-3,
                 keep_snapshots: int = 0, growth: float = 1.5, last_iter=10,
                 random_state=None, progress: bool = False):
        self.method = method
        self.n_codes = n_codes
        self.n_iter = n_iter
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.decay = decay
        self.init = init
        self.dead_policy = dead_policy
        self.dead_window = dead_window
        self.dead_threshold = dead_threshold
        self.refine = refine
        self.max_points_per_code = max_points_per_code
        self.final_passes = final_passes
        self.split_eps = split_eps
        self.min_share = min_share
        self.tol = tol
        self.keep_snapshots = keep_snapshots
        self.growth = growth
        self.last_iter = last_iter
        self.random_state = random_state
        self.progress = progress

    _PARAMS = ("method", "n_codes", "n_iter", "n_steps", "batch_size", "decay", "dead_policy",
               "dead_window", "dead_threshold", "refine", "max_points_per_code", "final_passes",
               "split_eps", "min_share", "tol", "keep_snapshots", "growth", "last_iter",
               "random_state", "progress")

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self._PARAMS and k != "init":
                raise ParameterError(f"VectorQuantizer has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"VectorQuantizer(method={self.method!r}, n_codes={self.n_codes})"

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Learn the codebook from X: array (N, D), float32 memmap, or feature store."""
        if self.method not in METHODS:
            raise ParameterError(
                f"method={self.method!r} is not one of {', '.join(map(repr, METHODS))}")
        X, settings = as_training_data(X)
        N, D = X.shape
        K = check_k(self.n_codes, N, name="n_codes")
        if self.method != "random":
            warn_few_points(N, K)
        rng = check_random_state(self.random_state)
        policy = deadcodes.check_policy(self.dead_policy)
        keep = check_positive_int(self.keep_snapshots, "keep_snapshots", minimum=0)
        tol = float(self.tol)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(desc=f"{self.method} K={K}", unit="step", leave=False)
        run = Run(self.method, keep_snapshots=keep, progress=bar)
        try:
            if self.method == "lbg":
                params = _check_params(
                    refine=self.refine, n_iter=3 if self.n_iter is None else self.n_iter,
                    max_points_per_code=self.max_points_per_code,
                    final_passes=self.final_passes, split_eps=self.split_eps,
                    batch_size=self.batch_size, decay=self.decay, growth=self.growth,
                    last_iter=self.last_iter)
                codes, a, _ = fit_lbg(X, K, run, rng=rng, tol=tol, dead_policy=policy,
                                      min_share=float(self.min_share),
                                      dead_threshold=float(self.dead_threshold), **params)
            elif self.method == "lloyd":
                n_iter = check_positive_int(20 if self.n_iter is None else self.n_iter, "n_iter")
                codes, a = fit_lloyd(X, K, run, init=self.init, n_iter=n_iter, tol=tol,
                                     dead_policy=policy, rng=rng)
            elif self.method == "minibatch":
                bs = check_positive_int(self.batch_size, "batch_size")
                decay = check_probability(self.decay, "decay", high_open=True)
                n_steps = (None if self.n_steps is None
                           else check_positive_int(self.n_steps, "n_steps"))
                window = (None if self.dead_window is None
                          else check_positive_int(self.dead_window, "dead_window"))
                codes = fit_minibatch(X, K, run, init=self.init, n_steps=n_steps, batch_size=bs,
                                      decay=decay, dead_policy=policy, dead_window=window,
                                      dead_threshold=float(self.dead_threshold), rng=rng)
                a = None
            else:  # random
                codes = _random_rows(X, K, rng)
                a = None
            if a is None:
                # one evaluation pass (streamed) for counts_ and mse_
                a = assign(X, prepare(codes), keep=False, check=isinstance(X, np.memmap))
                if self.method == "random":
                    run.record(level=0, codebook=codes, n_samples=N, mse=a.mse, counts=a.counts,
                               dead_reseeded=0)
        finally:
            if bar is not None:
                bar.close()
        self.codebook_ = np.ascontiguousarray(codes, dtype=np.float32)
        self.counts_ = np.asarray(a.counts, dtype=np.int64)
        self.mse_ = float(a.mse)
        self.history_ = run.history
        self.n_iter_ = len(run.history)
        self.snapshots_ = run.snapshots.items
        self.n_features_in_ = D
        self.feature_settings_ = settings
        return self

    # ------------------------------------------------------------ transform
    def _check_fitted(self):
        if not hasattr(self, "codebook_"):
            raise ParameterError("this VectorQuantizer is not fitted yet; call fit(X) first")

    def _features(self, X):
        self._check_fitted()
        return check_encode_input(X, self.n_features_in_, self.feature_settings_,
                                  trained="the codebook was trained on",
                                  fix="use features computed with the same settings")

    def encode(self, X) -> np.ndarray:
        """Nearest code of every row: (N,) int32."""
        X = self._features(X)
        return assign(X, prepare(self.codebook_), check=True).labels

    predict = encode

    def decode(self, codes) -> np.ndarray:
        """Reconstruction (N, D) float32 from integer codes."""
        self._check_fitted()
        return decode(codes, self.codebook_)

    def quantize(self, X) -> np.ndarray:
        return self.decode(self.encode(X))

    def mse(self, X) -> float:
        """Mean squared error per vector of X quantized by the codebook."""
        X = self._features(X)
        return assign(X, prepare(self.codebook_), keep=False, check=True).mse

    def score(self, X, y=None) -> float:
        """Negative MSE (higher is better, as scikit-learn's scorers expect)."""
        return -self.mse(X)

    # ---------------------------------------------------------- persistence
    def save(self, path, *, overwrite: bool = False):
        """Write the codebook, counts and history to ``path`` (.npz with a JSON header)."""
        self._check_fitted()
        params = self.get_params()
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None
        header = {"class": "VectorQuantizer", "params": params,
                  "feature_settings": self.feature_settings_,
                  "n_features": self.n_features_in_, "n_codes": int(self.codebook_.shape[0]),
                  "mse": self.mse_, "n_iter": self.n_iter_,
                  "history": self.history_.to_dict()}
        return save_npz(path, {"codebook": self.codebook_, "counts": self.counts_}, header,
                        overwrite=overwrite)

    @classmethod
    def load(cls, path) -> VectorQuantizer:
        arrays, head = load_npz(path)
        if head.get("class") != "VectorQuantizer":
            raise ParameterError(f"{path} holds a {head.get('class')}, not a VectorQuantizer")
        params = dict(head.get("params", {}))
        vq = cls(**{k: v for k, v in params.items() if k in cls._PARAMS})
        vq.codebook_ = check_codebook(arrays["codebook"])
        vq.counts_ = arrays["counts"].astype(np.int64)
        vq.n_features_in_ = int(head["n_features"])
        vq.feature_settings_ = dict(head.get("feature_settings") or {})
        vq.mse_ = float(head.get("mse", np.nan))
        vq.n_iter_ = int(head.get("n_iter", 0))
        vq.history_ = History.from_dict(head.get("history", {"name": "", "columns": {}}))
        vq.snapshots_ = []
        return vq

