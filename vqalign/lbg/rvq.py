"""Residual vector quantization: each stage quantizes what the previous stages left."""

from __future__ import annotations

import math

import numpy as np

from vqalign._validation import check_positive_int, check_random_state
from vqalign.exceptions import ParameterError
from vqalign.lbg._data import as_training_data, check_k, iter_blocks
from vqalign.lbg.nearest import assign, prepare
from vqalign.lbg.persistence import check_encode_input, load_npz, save_npz
from vqalign.lbg.quantizer import VectorQuantizer


class ResidualVQ:
    """``n_stages`` codebooks; stage s is trained on the residual of stages 0..s-1.

    Every stage is a :class:`VectorQuantizer` (``method`` and ``**vq_params``
    are passed to it). ``encode`` gives (N, n_stages) int32 codes, ``decode`` the
    sum of the chosen code vectors. The training residual is held in memory as
    float32 (one copy of X).

    Attributes after fit: ``stages_`` (list of VectorQuantizer), ``codebooks_``
    (list of (K, D) arrays), ``stage_mse_`` and ``stage_cosine_`` (reconstruction
    MSE and mean cosine similarity after each stage, on the training data),
    ``bits_per_vector_``, ``n_features_in_``, ``feature_settings_``.
    """

    def __init__(self, n_stages: int = 4, n_codes: int = 256, method: str = "lbg", *,
                 random_state=None, **vq_params):
        self.n_stages = n_stages
        self.n_codes = n_codes
        self.method = method
        self.random_state = random_state
        self.vq_params = vq_params

    def fit(self, X, y=None):
        X, settings = as_training_data(X)
        n_stages = check_positive_int(self.n_stages, "n_stages")
        K = check_k(self.n_codes, X.shape[0], name="n_codes")
        rng = check_random_state(self.random_state)
        R = np.array(X, dtype=np.float32, copy=True)
        norms = np.sqrt(np.einsum("nd,nd->n", R, R, dtype=np.float64))
        recon = np.zeros_like(R)
        self.stages_, self.stage_mse_, self.stage_cosine_ = [], [], []
        for _ in range(n_stages):
            seed = int(rng.integers(0, 2**31 - 1))
            vq = VectorQuantizer(self.method, K, random_state=seed, **self.vq_params).fit(R)
            q = vq.codebook_[vq.encode(R)]
            R -= q
            recon += q
            self.stages_.append(vq)
            self.stage_mse_.append(float(np.einsum("nd,nd->n", R, R, dtype=np.float64).mean()))
            self.stage_cosine_.append(_mean_cosine(X, recon, norms))
        self.codebooks_ = [vq.codebook_ for vq in self.stages_]
        self.bits_per_vector_ = float(sum(math.log2(c.shape[0]) for c in self.codebooks_))
        self.n_features_in_ = X.shape[1]
        self.feature_settings_ = settings
        return self

    def _check(self, X):
        if not hasattr(self, "codebooks_"):
            raise ParameterError("this ResidualVQ is not fitted yet; call fit(X) first")
        return check_encode_input(X, self.n_features_in_, self.feature_settings_,
                                  trained="the residual codebooks have",
                                  fix="use vectors of the same kind as the training data")

    def encode(self, X) -> np.ndarray:
        """(N, n_stages) int32 codes, greedily stage by stage."""
        X = self._check(X)
        out = np.empty((X.shape[0], len(self.codebooks_)), np.int32)
        preps = [prepare(C) for C in self.codebooks_]
        for start, block in iter_blocks(X, check=True):
            R = np.array(block, dtype=np.float32, copy=True)
            for s, (C, P) in enumerate(zip(self.codebooks_, preps)):
                lab = assign(R, P).labels
                out[start:start + block.shape[0], s] = lab
                R -= C[lab]
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
                             "vq_params": self.vq_params},
                  "feature_settings": self.feature_settings_,
                  "n_features": self.n_features_in_, "stage_mse": self.stage_mse_,
                  "stage_cosine": self.stage_cosine_, "bits_per_vector": self.bits_per_vector_}
        return save_npz(path, arrays, header, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> ResidualVQ:
        arrays, head = load_npz(path)
        if head.get("class") != "ResidualVQ":
            raise ParameterError(f"{path} holds a {head.get('class')}, not a ResidualVQ")
        p = head["params"]
        rvq = cls(p["n_stages"], p["n_codes"], p["method"], random_state=p.get("random_state"),
                  **p.get("vq_params", {}))
        n = len([k for k in arrays if k.startswith("codebook_")])
        rvq.codebooks_ = [np.ascontiguousarray(arrays[f"codebook_{s}"], np.float32)
                          for s in range(n)]
        rvq.stages_ = []
        rvq.n_features_in_ = int(head["n_features"])
        rvq.feature_settings_ = dict(head.get("feature_settings") or {})
        rvq.stage_mse_ = list(head.get("stage_mse", []))
        rvq.stage_cosine_ = list(head.get("stage_cosine", []))
        rvq.bits_per_vector_ = float(head.get("bits_per_vector", np.nan))
        return rvq


def _mean_cosine(X, recon, norms) -> float:
    rn = np.sqrt(np.einsum("nd,nd->n", recon, recon, dtype=np.float64))
    dot = np.einsum("nd,nd->n", np.asarray(X, np.float32), recon, dtype=np.float64)
    ok = (norms > 0) & (rn > 0)
    if not ok.any():
        return 0.0
    return float((dot[ok] / (norms[ok] * rn[ok])).mean())
