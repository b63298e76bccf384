"""Quantization quality: nearest codes, MSE, code usage (no N x K matrix)."""

from __future__ import annotations

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.history import code_usage_stats
from vqalign.lbg._data import as_training_data
from vqalign.lbg.nearest import assign, prepare


def check_codebook(codebook, *, name: str = "codebook") -> np.ndarray:
    C = np.asarray(codebook)
    if C.ndim != 2 or C.shape[0] == 0 or C.shape[1] == 0:
        raise ParameterError(f"{name} must be a non-empty (K, D) array, got shape {C.shape}")
    if C.dtype.kind != "f":
        raise ParameterError(f"{name} must be floating point, got dtype {C.dtype}")
    if not np.isfinite(C).all():
        raise ParameterError(f"{name} contains NaN or Inf values")
    return np.ascontiguousarray(C, dtype=np.float32)


def _features(X, D: int):
    X, _ = as_training_data(X)
    if X.shape[1] != D:
        raise ParameterError(
            f"X has {X.shape[1]} features per row but the codebook has {D}; "
            "use features computed with the same settings as the codebook"
        )
    return X


def encode(X, codebook) -> np.ndarray:
    """Index of the nearest code for every row of X: (N,) int32."""
    C = check_codebook(codebook)
    X = _features(X, C.shape[1])
    return assign(X, prepare(C), check=True).labels


def decode(codes, codebook) -> np.ndarray:
    """Codebook rows for integer codes: (N, D) float32."""
    C = check_codebook(codebook)
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu":
        raise ParameterError(f"codes must be integers, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= C.shape[0]):
        bad = codes.max() if codes.max() >= C.shape[0] else codes.min()
        raise ParameterError(f"code {int(bad)} is outside the codebook's range 0..{C.shape[0] - 1}")
    return C[codes]


def mse(X, codebook) -> float:
    """Mean squared quantization error per vector (sum over features, mean over rows)."""
    C = check_codebook(codebook)
    X = _features(X, C.shape[1])
    return assign(X, prepare(C), keep=False, check=True).mse


def usage(X, codebook) -> dict:
    """MSE and code-usage statistics (entropy, log K, perplexity, utilization, counts)."""
    C = check_codebook(codebook)
    X = _features(X, C.shape[1])
    a = assign(X, prepare(C), keep=False, check=True)
    out = {"mse": a.mse, **code_usage_stats(a.counts), "counts": a.counts}
    return out
