"""Residual vector quantization: each stage quantizes what the previous stages left."""

from __future__ import annotations

import math

import numpy as np

from vqalign._threads import one_blas_thread
from vqalign._validation import check_positive_int, check_random_state
from vqalign.exceptions import ParameterError
from vqalign.lbg import _kernels
from vqalign.lbg._data import as_training_data, check_k, iter_blocks
from vqalign.lbg.lbg import check_not_constant
from vqalign.lbg.nearest import assign, prepare
from vqalign.lbg.persistence import check_encode_input, load_npz, save_npz
from vqalign.lbg.quantizer import VectorQuantizer


class ResidualVQ:
    """``n_stages`` codebooks; stage s is trained on the residual of stages 0..s-1.

    Every stage is a :class:`VectorQuantizer` (``method`` and ``**vq_params``
    are passed to it; for LBG stages ``growth`` defaults to 2.0 and
    ``max_points_per_code`` to 160 here).

    ``stage_dim`` (default ``"auto"``: ``n_codes``) bounds the subspace a stage's
    codebook lives in: when the vectors are wider than that, stage s's codes are
    ``mean_s + Q_s @ z`` with ``Q_s`` the top ``stage_dim`` principal directions
    of that stage's residual (randomized SVD of a row sample) and ``z`` learned by
    the stage's VectorQuantizer on the projected residual, in which distances
    are exact for such codes (the rest of each row's residual is the same for
    every code). K codes span K - 1 directions anyway, so the constraint only
    fixes which ones: those of the largest variance. It keeps the codes from
    fitting the training sample's noise in the other directions (at D = 2048,
    40,000 vectors, 256 codes, most of the train/held-out gap) and makes each
    stage's clustering D / stage_dim times cheaper. ``stage_dim=None`` learns
    the stages in the full space.

    After the greedy stages, ``refine_passes`` joint passes
    fine-tune all codebooks together: each codebook in turn is replaced by the
    mean of its targets, the vectors minus the other stages' chosen codes,
    projected onto the stage's subspace (block coordinate descent on the total
    squared error: the pass never raises it), then the training vectors are
    re-encoded (with ``beam_size``). A code that no vector
    chooses in a pass is re-seeded on the training vector with the largest
    remaining error and counted in ``stage_dead_``.

    ``encode`` gives (N, n_stages) int32 codes: greedily stage by stage
    (``beam_size=1``) or by a beam search that keeps the ``beam_size`` best
    partial reconstructions per vector (faiss's ``max_beam_size``); ``decode``
    sums the chosen code vectors. The training residual is held in memory as
    float32 (one copy of X, plus one for the reconstruction).

    Attributes after fit: ``stages_`` (list of VectorQuantizer), ``codebooks_``
    (list of (K, D) arrays), ``stage_mse_`` and ``stage_cosine_`` (reconstruction
    MSE and mean cosine similarity after each stage, on the training data, with
    the final codebooks), ``stage_dead_`` (codes re-seeded per stage: in the
    stage's own training and in the joint passes), ``refine_mse_`` (training
    MSE after each joint pass), ``stage_dims_`` (the subspace width of each stage;
    D when the stage is unconstrained), ``bits_per_vector_``, ``n_features_in_``,
    ``feature_settings_``.
    """

    def __init__(self, n_stages: int = 4, n_codes: int = 256, method: str = "lbg", *,
                 beam_size: int = 1, refine_passes: int = 1, stage_dim="auto",
                 random_state=None, **vq_params):
        self.n_stages = n_stages
        self.n_codes = n_codes
        self.method = method
        self.beam_size = beam_size
        self.refine_passes = refine_passes
        self.stage_dim = stage_dim
        self.random_state = random_state
        self.vq_params = vq_params

    def fit(self, X, y=None):
        X, settings = as_training_data(X)
        n_stages = check_positive_int(self.n_stages, "n_stages")
        K = check_k(self.n_codes, X.shape[0], name="n_codes")
        beam = check_positive_int(self.beam_size, "beam_size")
        passes = check_positive_int(self.refine_passes, "refine_passes", minimum=0)
        rng = check_random_state(self.random_state)
        X = np.ascontiguousarray(X, dtype=np.float32)
        if K > 1:
            check_not_constant(X, X.shape[0])
        R = X.copy()
        r = _check_stage_dim(self.stage_dim, K, X.shape[1])
        # stage codebooks: classic doubling LBG on up to 160 vectors per code unless the
        # caller chose
        params = dict(self.vq_params)
        if self.method == "lbg":
            params.setdefault("growth", 2.0)
            params.setdefault("max_points_per_code", 160)
        self.stages_ = []
        codes = np.empty((X.shape[0], n_stages), np.int32)
        dead = []
        books, bases = [], []
        for s in range(n_stages):
            seed = int(rng.integers(0, 2**31 - 1))
            if r is None:
                vq = VectorQuantizer(self.method, K, random_state=seed, **params).fit(R)
                lab = vq.encode(R)
                C = np.array(vq.codebook_, dtype=np.float32)
                bases.append(None)
            else:
                mu, Q = principal_subspace(R, r, rng)
                Z = _project(R, mu, Q)
                vq = VectorQuantizer(self.method, K, random_state=seed, **params).fit(Z)
                lab = vq.encode(Z)
                del Z
                C = _lift(vq.codebook_, mu, Q)
                bases.append((mu, Q))
            codes[:, s] = lab
            _kernels.subtract_codes(R, C, np.ascontiguousarray(lab, dtype=np.int32))
            books.append(C)
            self.stages_.append(vq)
            dead.append(int(np.nansum(vq.history_["dead_reseeded"])))
        self.refine_mse_ = []
        recon = X - R
        del R
        for _ in range(passes):
            # update every codebook given the codes, then re-encode with the new codebooks
            for s in range(n_stages):
                dead[s] += _refit_stage(X, recon, books, codes, s, basis=bases[s])
            err = X - recon
            self.refine_mse_.append(float(np.einsum("nd,nd->n", err, err, dtype=np.float64).mean()))
            del err
            codes = _encode_all(X, books, beam)
            recon = _decode_all(codes, books, X.shape[1])
        if passes == 0 and beam > 1:
            codes = _encode_all(X, books, beam)  # the codes encode() gives
        self.codebooks_ = books
        self.stage_dims_ = [X.shape[1] if b is None else int(b[1].shape[1]) for b in bases]
        self.stage_dead_ = dead
        self._stage_quality(X, codes)
        self.bits_per_vector_ = float(sum(math.log2(c.shape[0]) for c in self.codebooks_))
        self.n_features_in_ = X.shape[1]
        self.feature_settings_ = settings
        return self

    def _stage_quality(self, X, codes):
        N, S = codes.shape
        B = np.ascontiguousarray(np.stack(self.codebooks_), dtype=np.float32)
        sse, dot, rn2 = (np.empty((N, S)) for _ in range(3))
        xn2 = np.empty(N)
        _kernels.stage_quality_rows(X, B, np.ascontiguousarray(codes, dtype=np.int32),
                                    sse, dot, rn2, xn2)
        self.stage_mse_ = [float(v) for v in sse.mean(axis=0)] if N else [0.0] * S
        self.stage_cosine_ = []
        for s in range(S):
            ok = (xn2 > 0) & (rn2[:, s] > 0)
            self.stage_cosine_.append(
                float((dot[ok, s] / np.sqrt(xn2[ok] * rn2[ok, s])).mean()) if ok.any() else 0.0)

    def _check(self, X):
        if not hasattr(self, "codebooks_"):
            raise ParameterError("this ResidualVQ is not fitted yet; call fit(X) first")
        return check_encode_input(X, self.n_features_in_, self.feature_settings_,
                                  trained="the residual codebooks have",
                                  fix="use vectors of the same kind as the training data")

    def encode(self, X, *, beam_size: int | None = None) -> np.ndarray:
        """(N, n_stages) int32 codes: greedy stage by stage, or a beam search of ``beam_size``.

        ``beam_size`` defaults to the estimator's; 1 is greedy.
        """
        X = self._check(X)
        beam = check_positive_int(self.beam_size if beam_size is None else beam_size,
                                  "beam_size")
        out = np.empty((X.shape[0], len(self.codebooks_)), np.int32)
        for start, block in iter_blocks(X, check=True):
            out[start:start + block.shape[0]] = _encode_all(block, self.codebooks_, beam)
        return out

    def decode(self, codes, n_stages: int | None = None) -> np.ndarray:
        """Reconstruction (N, D) float32 from (N, n_stages) codes (optionally the first stages only)."""
        if not hasattr(self, "codebooks_"):
            raise ParameterError("this ResidualVQ is not fitted yet; call fit(X) first")
        codes = np.asarray(codes)
        S = len(self.codebooks_)
        if codes.ndim != 2 or codes.shape[1] != S or codes.dtype.kind not in "iu":
            raise ParameterError(
                f"codes must be an integer array of shape (N, {S}), got {codes.dtype} {codes.shape}")
        n = S if n_stages is None else min(int(n_stages), S)
        out = np.zeros((codes.shape[0], self.n_features_in_), np.float32)
        for s in range(n):
            C = self.codebooks_[s]
            c = codes[:, s]
            if c.size and (c.min() < 0 or c.max() >= C.shape[0]):
                raise ParameterError(f"stage {s} codes must lie in 0..{C.shape[0] - 1}")
            out += C[c]
        return out

    def report(self, X) -> list[dict]:
        """Per stage: MSE, mean cosine similarity and cumulative bits per vector on X."""
        X = self._check(X)
        X = np.asarray(X, dtype=np.float32)
        codes = self.encode(X)
        norms = np.sqrt(np.einsum("nd,nd->n", X, X, dtype=np.float64))
        rows, bits = [], 0.0
        recon = np.zeros_like(X)
        for s, C in enumerate(self.codebooks_):
            recon += C[codes[:, s]]
            bits += math.log2(C.shape[0])
            err = X - recon
            rows.append({"stage": s + 1, "mse": float(np.einsum("nd,nd->n", err, err).mean()),
                         "cosine": _mean_cosine(X, recon, norms), "bits_per_vector": bits})
        return rows

    def save(self, path, *, overwrite: bool = False):
        if not hasattr(self, "codebooks_"):
            raise ParameterError("this ResidualVQ is not fitted yet; call fit(X) first")
        arrays = {f"codebook_{s}": C for s, C in enumerate(self.codebooks_)}
        rs = self.random_state if isinstance(self.random_state, (int, type(None))) else None
        header = {"class": "ResidualVQ",
                  "params": {"n_stages": self.n_stages, "n_codes": self.n_codes,
                             "method": self.method, "random_state": rs,
                             "beam_size": self.beam_size, "refine_passes": self.refine_passes,
                             "stage_dim": self.stage_dim, "vq_params": self.vq_params},
                  "feature_settings": self.feature_settings_,
                  "n_features": self.n_features_in_, "stage_mse": self.stage_mse_,
                  "stage_cosine": self.stage_cosine_, "bits_per_vector": self.bits_per_vector_,
                  "stage_dead": self.stage_dead_, "refine_mse": self.refine_mse_,
                  "stage_dims": self.stage_dims_}
        return save_npz(path, arrays, header, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> ResidualVQ:
        arrays, head = load_npz(path)
        if head.get("class") != "ResidualVQ":
            raise ParameterError(f"{path} holds a {head.get('class')}, not a ResidualVQ")
        p = head["params"]
        rvq = cls(p["n_stages"], p["n_codes"], p["method"], random_state=p.get("random_state"),
                  beam_size=p.get("beam_size", 1), refine_passes=p.get("refine_passes", 0),
                  stage_dim=p.get("stage_dim"), **p.get("vq_params", {}))
        n = len([k for k in arrays if k.startswith("codebook_")])
        rvq.codebooks_ = [np.ascontiguousarray(arrays[f"codebook_{s}"], np.float32)
                          for s in range(n)]
        rvq.stages_ = []
        rvq.n_features_in_ = int(head["n_features"])
        rvq.feature_settings_ = dict(head.get("feature_settings") or {})
        rvq.stage_mse_ = list(head.get("stage_mse", []))
        rvq.stage_cosine_ = list(head.get("stage_cosine", []))
        rvq.bits_per_vector_ = float(head.get("bits_per_vector", np.nan))
        rvq.stage_dead_ = list(head.get("stage_dead", []))
        rvq.refine_mse_ = list(head.get("refine_mse", []))
        rvq.stage_dims_ = list(head.get("stage_dims", [rvq.n_features_in_] * n))
        return rvq


def _mean_cosine(X, recon, norms) -> float:
    rn = np.sqrt(np.einsum("nd,nd->n", recon, recon, dtype=np.float64))
    dot = np.einsum("nd,nd->n", np.asarray(X, np.float32), recon, dtype=np.float64)
    ok = (norms > 0) & (rn > 0)
    if not ok.any():
        return 0.0
    return float((dot[ok] / (norms[ok] * rn[ok])).mean())


def _decode_all(codes, books, D) -> np.ndarray:
    out = np.zeros((codes.shape[0], D), np.float32)
    for s, C in enumerate(books):
        out += C[codes[:, s]]
    return out


def _encode_all(X, books, beam: int) -> np.ndarray:
    """Codes of every row of X (N, D) float32 for the list of codebooks (greedy or beam)."""
    if beam <= 1:
        R = np.array(X, dtype=np.float32, copy=True)
        out = np.empty((X.shape[0], len(books)), np.int32)
        for s, C in enumerate(books):
            lab = assign(R, prepare(C)).labels
            out[:, s] = lab
            R -= C[lab]
        return out
    rows = max(16, (1 << 22) // max(1, beam * X.shape[1]))  # ~16 MB of residuals per block
    out = np.empty((X.shape[0], len(books)), np.int32)
    for r0 in range(0, X.shape[0], rows):
        out[r0:r0 + rows] = _beam_block(np.asarray(X[r0:r0 + rows], np.float32), books, beam)
    return out


def _beam_block(X, books, beam: int) -> np.ndarray:
    """Beam search over stages: keep the ``beam`` lowest-error partial codes per row."""
    n, D = X.shape
    S = len(books)
    R = X[:, None, :].copy()                      # (n, b, D) residuals of the candidates
    err = np.einsum("nd,nd->n", X, X)[:, None]    # (n, b) squared errors
    hist = np.zeros((n, 1, 0), np.int32)          # (n, b, s) codes so far
    rows = np.arange(n)[:, None]
    for C in books:
        K = C.shape[0]
        b = R.shape[1]
        cn = np.einsum("kd,kd->k", C, C)
        G = (R.reshape(n * b, D) @ C.T).reshape(n, b, K)
        cand = (err[:, :, None] - 2.0 * G + cn).reshape(n, b * K)
        keep = min(beam, b * K)
        if keep < b * K:
            top = np.argpartition(cand, keep - 1, axis=1)[:, :keep]
        else:
            top = np.broadcast_to(np.arange(b * K), (n, b * K))
        order = np.argsort(np.take_along_axis(cand, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        parent, code = np.divmod(top, K)
        err = np.take_along_axis(cand, top, axis=1)
        R = R[rows, parent] - C[code]
        hist = np.concatenate([hist[rows, parent], code[:, :, None].astype(np.int32)], axis=2)
    return np.ascontiguousarray(hist[:, 0, :S], dtype=np.int32)


def _refit_stage(X, recon, books, codes, s: int, basis=None) -> int:
    """Replace codebook s by the mean of its targets (X minus the other stages); in place.

    With ``basis = (mu, Q)`` the means are projected onto the stage's affine
    subspace ``mu + span(Q)`` (the best codes in it for the same rows: the
    training error does not rise when the old codes were in it). recon (N, D)
    float32 is updated to the new reconstruction. Codes no row chose are
    re-seeded on the rows with the largest errors; returns their number.
    """
    import numba

    from vqalign.lbg import _kernels

    C = books[s]
    K, D = C.shape
    lab = np.ascontiguousarray(codes[:, s])
    T = max(1, min(numba.get_num_threads(), (1 << 23) // max(1, K * D), X.shape[0] // 256))
    tsums = np.zeros((T, K, D))
    counts = np.zeros(K, np.int64)
    _kernels.stage_target_sums(X, recon, C, lab, tsums, counts)
    sums = tsums.sum(axis=0)
    used = np.flatnonzero(counts)
    new = C.copy()
    new[used] = (sums[used] / counts[used, None]).astype(np.float32)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        # the rows this stage serves worst (largest remaining error)
        res = X - recon
        e = np.einsum("nd,nd->n", res, res)
        worst = np.argsort(-e, kind="stable")[:empty.size]
        new[empty[:worst.size]] = res[worst] + C[lab[worst]]
    if basis is not None:
        mu, Q = basis
        new = _lift((new - mu) @ Q, mu, Q)
    _kernels.swap_stage_codes(recon, C, new, lab)
    books[s] = new
    return int(empty.size)


def _check_stage_dim(stage_dim, K: int, D: int):
    """Subspace width of each stage, or None for the full space."""
    if stage_dim is None:
        return None
    if isinstance(stage_dim, str):
        if stage_dim != "auto":
            raise ParameterError(f"stage_dim={stage_dim!r} must be 'auto', None or a positive "
                                 "int (the width of each stage's codebook subspace)")
        r = K
    else:
        r = check_positive_int(stage_dim, "stage_dim")
    return None if r >= D else r


def principal_subspace(R, r: int, rng, *, n_rows: int = 8192, n_power: int = 2):
    """(mean (D,) float32, Q (D, r) float32 orthonormal): the top-r principal directions of R.

    Randomized SVD (Halko, Martinsson & Tropp) of up to ``n_rows`` sampled
    rows, centred, with ``n_power`` power iterations and 16 extra columns.
    """
    N, D = R.shape
    idx = np.sort(rng.choice(N, size=min(N, n_rows), replace=False))
    mean = R.mean(axis=0, dtype=np.float64).astype(np.float32)
    S = np.asarray(R[idx], np.float32) - mean
    p = min(D, r + 16)
    Y = _orthonormal(S @ rng.standard_normal((D, p)).astype(np.float32))
    for _ in range(n_power):
        # orthonormal after each product: the Gram matrices' spread stays sigma^2
        Y = _orthonormal(S @ _orthonormal(S.T @ Y))
    # right singular vectors of B = Y.T S (p x D) from the eigenvectors of B B.T (p x p)
    B = Y.T @ S
    with one_blas_thread():
        w, U = np.linalg.eigh(B.astype(np.float64) @ B.T.astype(np.float64))
    top = np.argsort(-w, kind="stable")[:r]
    top = top[w[top] > 1e-12 * max(float(w.max()), 1e-300)]
    if top.size == 0:
        top = np.argsort(-w, kind="stable")[:1]
    V = (U[:, top] / np.sqrt(np.maximum(w[top], 1e-300))).T.astype(np.float32) @ B
    return mean, np.ascontiguousarray(_orthonormal(V.T), dtype=np.float32)


def _orthonormal(Y) -> np.ndarray:
    """An orthonormal basis (n, <= p) float32 of the columns of Y (n, p) from the eigen-
    decomposition of the small Gram matrix (cheaper than a QR of a tall matrix); columns
    of negligible weight (rank-deficient data) are dropped, at least one is kept."""
    G = Y.T.astype(np.float64) @ Y.astype(np.float64)
    with one_blas_thread():
        w, V = np.linalg.eigh(G)
    keep = w > 1e-12 * max(float(w[-1]), 1e-300)
    keep[-1] = True
    scale = 1.0 / np.sqrt(np.maximum(w[keep], 1e-300))
    Y = Y @ (V[:, keep] * scale).astype(np.float32)
    # one re-orthonormalisation pass in float64 removes float32 drift
    G = Y.T.astype(np.float64) @ Y.astype(np.float64)
    with one_blas_thread():
        w, V = np.linalg.eigh(G)
    return Y @ (V / np.sqrt(np.maximum(w, 1e-300))).astype(np.float32)


def _project(R, mu, Q) -> np.ndarray:
    """(N, r) float32 coordinates of R's rows minus mu in the basis Q, block by block."""
    out = np.empty((R.shape[0], Q.shape[1]), np.float32)
    rows = max(256, (1 << 22) // max(1, R.shape[1]))
    for r0 in range(0, R.shape[0], rows):
        np.dot(R[r0:r0 + rows] - mu, Q, out=out[r0:r0 + rows])
    return out


def _lift(Z, mu, Q) -> np.ndarray:
    """(K, D) float32 codes mu + Z @ Q.T."""
    return np.ascontiguousarray(mu + np.asarray(Z, np.float32) @ Q.T, dtype=np.float32)
