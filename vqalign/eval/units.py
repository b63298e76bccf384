"""Discrete units against frame-level phone labels: phone purity, cluster purity, PNMI.

The definitions follow HuBERT's teacher-quality measures (Hsu et al. 2021, sec. IV-B;
fairseq ``examples/hubert/measure_teacher_quality.py``): with ``p(y, z)`` the joint
distribution of a frame's phone ``y`` and unit ``z`` over all frames,

- phone purity   = sum_z max_y p(y, z): the share of frames whose phone is the most
  common phone of their unit (the accuracy of labelling each unit by its majority phone);
- cluster purity = sum_y max_z p(y, z): the same with the roles swapped;
- PNMI           = I(Y; Z) / H(Y): the share of the phone entropy that the units explain.

``unit_bits(units, rate)`` is the units' bit rate (their entropy times the frame rate).
All work from the sparse contingency table (only the (phone, unit) pairs that occur),
so units may be large tuples (e.g. every residual-VQ stage together).
"""

from __future__ import annotations

import numpy as np

from vqalign.exceptions import ParameterError


def _codes(a, name):
    a = np.asarray(a)
    if a.ndim == 2:  # rows of codes (tuples): one unit per distinct row
        _, inv = np.unique(a, axis=0, return_inverse=True)
        return inv.reshape(-1).astype(np.int64)
    if a.ndim != 1:
        raise ParameterError(f"{name} must be 1-D labels (or 2-D rows of codes), got shape {a.shape}")
    _, inv = np.unique(a, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def contingency(phones, units):
    """(p (n_pairs,) float64 joint probabilities, phone index, unit index) of the
    (phone, unit) pairs that occur.

    Parameters
    ----------
    phones : (n_frames,) labels (any hashable dtype)
    units : (n_frames,) integer units, or (n_frames, n_streams) rows of codes
    """
    y = _codes(phones, "phones")
    z = _codes(units, "units")
    if y.size != z.size:
        raise ParameterError(f"phones have {y.size} frames but units have {z.size}; give one "
                             "phone label per unit frame")
    if y.size == 0:
        raise ParameterError("no frames to score (empty phones and units)")
    pair = y * (int(z.max()) + 1) + z
    keys, counts = np.unique(pair, return_counts=True)
    return counts / counts.sum(), keys // (int(z.max()) + 1), keys % (int(z.max()) + 1)


def _entropy(p) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def unit_scores(phones, units) -> dict:
    """Phone purity, cluster purity, PNMI, H(phone), H(unit) (bits) and units used.

    Returns
    -------
    dict with ``phone_purity``, ``cluster_purity``, ``pnmi``, ``h_phone``, ``h_unit``,
    ``mutual_info`` (bits per frame), ``n_units`` (distinct units seen), ``n_frames``
    """
    p, y, z = contingency(phones, units)
    py = np.bincount(y, weights=p)
    pz = np.bincount(z, weights=p)
    # max over y within each unit z, and over z within each phone y
    order = np.lexsort((-p, z))
    first = np.r_[True, z[order][1:] != z[order][:-1]]
    phone_purity = float(p[order][first].sum())
    order = np.lexsort((-p, y))
    first = np.r_[True, y[order][1:] != y[order][:-1]]
    cluster_purity = float(p[order][first].sum())
    mi = float((p * np.log2(p / (py[y] * pz[z]))).sum())
    hy = _entropy(py)
    return {"phone_purity": phone_purity, "cluster_purity": cluster_purity,
            "pnmi": mi / hy if hy > 0 else float("nan"), "h_phone": hy, "h_unit": _entropy(pz),
            "mutual_info": mi, "n_units": int(np.count_nonzero(pz)),
            "n_frames": int(np.asarray(units).shape[0])}


def unit_bits(units, frame_rate: float) -> float:
    """Bits per second of a unit sequence: its empirical entropy (bits per unit) times
    ``frame_rate`` (units per second)."""
    z = _codes(units, "units")
    return _entropy(np.bincount(z) / z.size) * float(frame_rate)


def frame_labels(intervals, times, *, default: str = "sil") -> np.ndarray:
    """The label of each time (s) in ``intervals`` [(start, end, label), ...] (sorted,
    non-overlapping); ``default`` where no interval covers it.

    Returns
    -------
    (n_times,) object array of str
    """
    if not intervals:
        return np.full(len(times), default, dtype=object)
    starts = np.array([s for s, _, _ in intervals], np.float64)
    ends = np.array([e for _, e, _ in intervals], np.float64)
    labs = np.array([lab for _, _, lab in intervals] + [default], dtype=object)
    t = np.asarray(times, np.float64)
    i = np.searchsorted(starts, t, side="right") - 1
    ok = (i >= 0) & (t < ends[np.maximum(i, 0)])
    return labs[np.where(ok, i, len(intervals))]
