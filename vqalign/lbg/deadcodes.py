"""Dead-code repair: re-seed codes that stopped receiving vectors.

Two policies:

``"split"``
    Take the donor code with the highest distortion (sum of squared errors),
    move a copy of it a little along a random direction scaled by the donor
    cluster's spread and move the donor the opposite way (as faiss's
    ``split_clusters`` does with its +-1/1024 nudge, and as LBG splits). The
    donor's count and distortion are halved so that several dead codes share
    the work among different donors.
``"resample"``
    Put each dead code on a training vector drawn with probability
    proportional to its squared error (high-error vectors are where new codes
    help most), as scikit-learn's MiniBatchKMeans re-assigns low-count centres
    to batch samples.
"""

from __future__ import annotations

import numpy as np

from vqalign.exceptions import ParameterError

POLICIES = ("split", "resample", "none")


def check_policy(policy) -> str:
    if policy is None:
        return "none"
    if policy not in POLICIES:
        raise ParameterError(
            f"dead_policy={policy!r} is not one of {', '.join(map(repr, POLICIES))}"
        )
    return policy


def reseed_split(codes: np.ndarray, dead: np.ndarray, counts: np.ndarray, sse: np.ndarray,
                 rng: np.random.Generator, *, nudge: float = 0.1) -> int:
    """Re-seed ``codes[dead]`` by splitting high-distortion donors (in place).

    codes (K, D) float64; counts, sse (K,) float64 (modified: halved donors).
    Returns the number of codes re-seeded.
    """
    dead = np.asarray(dead, dtype=np.int64)
    if dead.size == 0:
        return 0
    K, D = codes.shape
    counts = counts.astype(np.float64, copy=True) if counts.dtype != np.float64 else counts
    score = np.where(counts > 0, sse, -np.inf).astype(np.float64)
    score[dead] = -np.inf
    done = 0
    for j in dead:
        donor = int(np.argmax(score))
        if not np.isfinite(score[donor]):
            break
        n = max(counts[donor], 1.0)
        radius = np.sqrt(max(sse[donor], 0.0) / n / D)
        if radius <= 0:
            radius = 1e-3 * (np.abs(codes[donor]).mean() + 1e-6)
        delta = nudge * radius * rng.standard_normal(D)
        codes[j] = codes[donor] + delta
        codes[donor] -= delta
        counts[donor] *= 0.5
        counts[j] = counts[donor]
        sse[donor] *= 0.5
        sse[j] = sse[donor]
        score[donor] *= 0.5
        score[j] = score[donor]
        done += 1
    return done


def reseed_resample(codes: np.ndarray, dead: np.ndarray, candidates: np.ndarray,
                    errors: np.ndarray, rng: np.random.Generator) -> int:
    """Re-seed ``codes[dead]`` on candidate vectors drawn with p ~ squared error (in place)."""
    dead = np.asarray(dead, dtype=np.int64)
    m = candidates.shape[0]
    if dead.size == 0 or m == 0:
        return 0
    w = np.asarray(errors, dtype=np.float64)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    n = min(dead.size, m)
    nz = int(np.count_nonzero(w))
    if nz >= n:
        pick = rng.choice(m, size=n, replace=False, p=w / w.sum())
    else:
        pick = rng.choice(m, size=n, replace=False)
    codes[dead[:n]] = candidates[pick]
    return int(n)


def reseed(policy: str, codes, dead, *, counts, sse, candidates, errors, rng) -> int:
    if policy == "none" or len(dead) == 0:
        return 0
    if policy == "split":
        return reseed_split(codes, dead, counts, sse, rng)
    return reseed_resample(codes, dead, candidates, errors, rng)
