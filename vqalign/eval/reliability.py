"""How well confidences predict boundary errors: ROC AUC, reliability curves, ECE.

:func:`segment_errors` gives each hypothesis segment its boundary error against the
reference (FA-Bench pairing of :func:`vqalign.eval.boundaries.compare_tier`);
:func:`confidence_scores` measures how well per-segment confidences predict those errors.
Used by ``vqalign bench align`` and the confidence calibration
(:mod:`vqalign.eval.calibrate`).
"""

from __future__ import annotations

import numpy as np

from vqalign.eval.boundaries import _check_timed, _phone_units, _word_units, match_phones
from vqalign.exceptions import ParameterError


def roc_auc(score, positive) -> float:
    """Area under the ROC curve of ``score`` for flagging ``positive`` (bool) items:
    the probability that a random positive scores above a random negative (ties count
    half; Mann-Whitney U from average ranks). NaN when one class is empty.

    Parameters
    ----------
    score : array_like of float, shape (n,)
        Higher means "more likely positive"; no NaN.
    positive : array_like of bool, shape (n,)
        The items to flag.

    Returns
    -------
    float
        The AUC in [0, 1].
    """
    s = np.asarray(score, np.float64).ravel()
    y = np.asarray(positive, bool).ravel()
    if s.shape != y.shape:
        raise ParameterError(f"score has {s.size} values but positive has {y.size}")
    if np.isnan(s).any():
        raise ParameterError("score holds NaN; drop those items or give them a value")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(s.size)
    # average ranks of ties
    edges = np.flatnonzero(np.diff(ss) != 0) + 1
    a = np.concatenate([[0], edges])
    b = np.concatenate([edges, [ss.size]])
    avg = (a + b + 1) / 2.0
    ranks[order] = np.repeat(avg, b - a)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def reliability_curve(pred, outcome, *, n_bins: int = 10) -> list[dict]:
    """Calibration table: predicted probabilities in ``n_bins`` equal-width bins over
    [0, 1], each with its count, mean prediction and observed frequency of ``outcome``.
    Empty bins are left out. Also see :func:`expected_calibration_error`.

    Parameters
    ----------
    pred : array_like of float, shape (n,)
        Predicted probabilities (non-finite ones are dropped).
    outcome : array_like of bool or float, shape (n,)
        What happened.
    n_bins : int
        Equal-width bins over [0, 1].

    Returns
    -------
    list of dict
        Per non-empty bin: ``bin`` ([low, high]), ``n``, ``mean_predicted``, ``observed``.
    """
    p = np.asarray(pred, np.float64).ravel()
    o = np.asarray(outcome, np.float64).ravel()
    if p.shape != o.shape:
        raise ParameterError(f"pred has {p.size} values but outcome has {o.size}")
    ok = np.isfinite(p)
    p, o = p[ok], o[ok]
    if n_bins < 1:
        raise ParameterError(f"n_bins must be >= 1, got {n_bins}")
    k = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = k == b
        if m.any():
            out.append({"bin": [b / n_bins, (b + 1) / n_bins], "n": int(m.sum()),
                        "mean_predicted": float(p[m].mean()),
                        "observed": float(o[m].mean())})
    return out


def expected_calibration_error(curve) -> float:
    """Count-weighted mean |mean predicted - observed| over a :func:`reliability_curve`.

    Parameters
    ----------
    curve : list of dict
        From :func:`reliability_curve`.

    Returns
    -------
    float
        The expected calibration error (NaN for an empty curve).
    """
    n = sum(b["n"] for b in curve)
    if not n:
        return float("nan")
    return float(sum(b["n"] * abs(b["mean_predicted"] - b["observed"]) for b in curve) / n)


def segment_errors(hyp, ref, *, tier: str = "words") -> np.ndarray:
    """Per hypothesis segment, ``max(|start error|, |end error|)`` in seconds against the
    reference segment it is paired with (FA-Bench pairing of :func:`compare_tier`), inf
    for a segment with no pair (or a silence / filler, which is never paired). One value
    per item of ``hyp``, in order: the errors that a segment's confidence predicts.

    Parameters
    ----------
    hyp, ref : list of (start_s, end_s, label)
        One utterance's hypothesis and reference intervals.
    tier : {"words", "phones"}

    Returns
    -------
    ndarray, float64, shape (len(hyp),)
        Error of each hypothesis segment in seconds (inf: unpaired).
    """
    hyp = _check_timed(hyp, "hyp")
    ref = _check_timed(ref, "ref")
    if tier == "words":
        h, r = _word_units(hyp), _word_units(ref)
    elif tier == "phones":
        h, _ = _phone_units(hyp, "auto")
        r, _ = _phone_units(ref, "auto")
    else:
        raise ParameterError(f"tier={tier!r} is not supported; use 'words' or 'phones'")

    def mids(units):
        m = np.array([(s + e) / 2 if s == s and e == e else (s if s == s else e)
                      for s, e, *_ in units], dtype=np.float64)
        return np.nan_to_num(m, nan=1e9)

    out = np.full(len(hyp), np.inf)
    for i, j in match_phones([x[2] for x in h], mids(h), [x[2] for x in r], mids(r)):
        hs, he, _, src = h[i]
        rs, re_, _, _ = r[j]
        if hs == hs and he == he:
            out[src] = max(abs(hs - rs), abs(he - re_))
    return out


def confidence_scores(conf, err_s, *, tol_s: float = 0.05, n_bins: int = 10) -> dict:
    """How well confidences predict boundary errors: ``auc`` (area under the ROC curve of
    ``-conf`` for flagging segments whose error exceeds ``tol_s``), ``reliability``
    (:func:`reliability_curve` of conf against "within tol"), ``ece``, ``n``,
    ``bad_share`` (share of segments beyond tol). Segments without a confidence (NaN)
    are left out and counted in ``n_unknown``.

    Parameters
    ----------
    conf : array_like of float, shape (n,)
        Confidence of each segment (NaN: unknown).
    err_s : array_like of float, shape (n,)
        Its boundary error in seconds (:func:`segment_errors`).
    tol_s : float
        Tolerance that makes a segment "good".
    n_bins : int
        Bins of the reliability curve.

    Returns
    -------
    dict
        The figures above.
    """
    c = np.asarray(conf, np.float64).ravel()
    e = np.asarray(err_s, np.float64).ravel()
    if c.shape != e.shape:
        raise ParameterError(f"conf has {c.size} values but err_s has {e.size}")
    known = np.isfinite(c)
    c, e = c[known], e[known]
    good = e <= tol_s + 1e-9
    curve = reliability_curve(c, good, n_bins=n_bins)
    return {"n": int(c.size), "n_unknown": int((~known).sum()),
            "bad_share": float(np.mean(~good)) if c.size else float("nan"),
            "auc": roc_auc(-c, ~good) if c.size else float("nan"),
            "reliability": curve, "ece": expected_calibration_error(curve)}
