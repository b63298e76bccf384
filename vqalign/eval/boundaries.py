"""Boundary errors between a hypothesis alignment and a reference (ground truth).

Intervals are ``(start_s, end_s, label)`` tuples, as in
:meth:`vqalign.align.Alignment.tier` and :func:`vqalign.io.textgrid.read_textgrid`.

* Words: silences are dropped, the word sequences must match (lower-cased;
  pocketsphinx alternates such as ``word(2)`` are folded), and both the start and the
  end of every word count as a boundary (2 boundaries per word).
* Phones: phone sets differ between systems, so labels are first mapped to ARPAbet
  (Festival's ``radio`` set, eSpeak mnemonics, stress digits), then hypothesis and
  reference are matched by an edit-distance alignment that only pairs phones with the
  same label (ties broken by time); the start and end of every matched phone count.

The summary is the same for both: ``mean_ms``, ``median_ms``, ``within_10``,
``within_20``, ``within_25``, ``within_50`` (fractions of boundaries) and ``n``.

FA-Bench / MFA-evaluation scoring (:func:`compare_tier`, :func:`summarize_tier`), used by
:func:`vqalign.eval.score`, ``vqalign bench score`` and ``vqalign bench align``:

* silences and fillers (uh, um, ...) are dropped on both sides; words are normalized
  (:func:`fold_word`: NFC, lower case, punctuation and apostrophes removed, digits
  spelled out);
* identical labels are paired by edit distance (:func:`match_phones`), so a word that
  differs from the reference is counted (missing on one side, inserted on the other)
  instead of stopping the comparison;
* every pair gives ``|start error|`` and ``|end error|``, pooled: a boundary shared by
  two words counts twice. Phones are paired the same way after mapping both sides to
  ARPAbet (:func:`vqalign.phones.to_arpabet`);
* signed errors (hypothesis minus reference) give the onset and offset bias; phone
  boundaries are also grouped by the class of the reference phone, or ``silence`` when
  the reference has silence (or nothing) on that side of the boundary.
"""


from __future__ import annotations

import re
import unicodedata

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.phones import (
    PHONESETS,
    PHONESETS_NO_IPA,
    detect_phoneset,
    detect_phoneset_no_ipa,
    is_silence,
    map_phone,
    phone_class,
    to_arpabet,
)

THRESHOLDS_MS = (10, 20, 25, 50)

_ALT = re.compile(r"\(\d+\)$")

def _check_intervals(x, name: str) -> list[tuple[float, float, str]]:
    if x is None or isinstance(x, (str, bytes)):
        raise ParameterError(f"{name} must be a list of (start_s, end_s, label), got {x!r:.60}")
    out = []
    for k, item in enumerate(x):
        if hasattr(item, "as_tuple"):
            item = item.as_tuple()
        try:
            s, e, lab = item[0], item[1], item[2]
            s, e = float(s), float(e)
        except (TypeError, ValueError, IndexError):
            raise ParameterError(f"{name}[{k}] = {item!r:.60} is not (start_s, end_s, label)"
                                 ) from None
        if not (np.isfinite(s) and np.isfinite(e)) or e < s:
            raise ParameterError(f"{name}[{k}] = ({s}, {e}, {lab!r}) has end before start or "
                                 "non-finite times")
        out.append((s, e, "" if lab is None else str(lab)))
    return out



def normalize_word(label: str) -> str:
    """A word label as :func:`boundary_errors` compares it.

    Parameters
    ----------
    label : str
        One word label.

    Returns
    -------
    str
        Lower case, ``word(2)`` -> ``word``, curly apostrophes folded.
    """
    return _ALT.sub("", label.strip().lower().replace("\u2019", "'"))



def summarize_errors(errors_s) -> dict:
    """Summary of absolute boundary errors (pool several utterances first).

    Parameters
    ----------
    errors_s : array_like of float, shape (n,)
        Boundary errors in seconds (signs are dropped).

    Returns
    -------
    dict
        ``n``, ``mean_ms``, ``median_ms``, ``within_10``, ``within_20``, ``within_25``,
        ``within_50`` (fractions of boundaries; NaN when ``n`` is 0).
    """
    e = np.abs(np.asarray(errors_s, dtype=np.float64).ravel())
    out = {"n": int(e.size)}
    if e.size == 0:
        out.update(mean_ms=float("nan"), median_ms=float("nan"))
        out.update({f"within_{t}": float("nan") for t in THRESHOLDS_MS})
        return out
    ms = 1000.0 * e
    out["mean_ms"] = float(ms.mean())
    out["median_ms"] = float(np.median(ms))
    # a hair of tolerance so that 20.000000001 ms from float seconds counts as 20 ms
    out.update({f"within_{t}": float(np.mean(ms <= t + 1e-6)) for t in THRESHOLDS_MS})
    return out


def _word_errors(hyp, ref) -> dict:
    h = [(s, e, normalize_word(lab)) for s, e, lab in hyp if not is_silence(lab)]
    r = [(s, e, normalize_word(lab)) for s, e, lab in ref if not is_silence(lab)]
    hw = [w for _, _, w in h]
    rw = [w for _, _, w in r]
    if hw != rw:
        k = next((i for i, (a, b) in enumerate(zip(hw, rw)) if a != b), min(len(hw), len(rw)))
        ha = hw[k] if k < len(hw) else "(end)"
        ra = rw[k] if k < len(rw) else "(end)"
        raise ParameterError(
            f"word sequences differ: hypothesis has {len(hw)} words, reference {len(rw)}; first "
            f"difference at word {k}: {ha!r} vs {ra!r}; both must come from the same transcript"
        )
    errors = np.empty(2 * len(h), dtype=np.float64)
    for i, ((hs, he, _), (rs, re_, _)) in enumerate(zip(h, r)):
        errors[2 * i] = abs(hs - rs)
        errors[2 * i + 1] = abs(he - re_)
    out = summarize_errors(errors)
    out["errors"] = errors
    out["n_words"] = len(h)
    return out


def match_phones(hyp_labels, hyp_mid, ref_labels, ref_mid) -> list[tuple[int, int]]:
    """Pairs ``(i_hyp, j_ref)`` of an edit-distance alignment that pairs equal labels only.

    Costs: insertion and deletion 1, substitution 2 (so a substitution is never better
    than leaving both unmatched), match 0 plus a tie-break proportional to the distance
    between the two phones' mid-points (always less than one edit in total), so that among
    equally good alignments the one closer in time wins.

    Parameters
    ----------
    hyp_labels, ref_labels : sequence of str, lengths n and m
        Labels to pair (already mapped to one set).
    hyp_mid, ref_mid : array_like of float, shapes (n,) and (m,)
        Mid-points of the units in seconds (the tie-break).

    Returns
    -------
    list of (int, int)
        ``(i_hyp, j_ref)`` of every pair, in order.
    """
    n, m = len(hyp_labels), len(ref_labels)
    eps = 1.0 / (4.0 * (n + m + 1))
    hm = np.asarray(hyp_mid, dtype=np.float64)
    rm = np.asarray(ref_mid, dtype=np.float64)
    same = np.asarray(hyp_labels, dtype=object)[:, None] == np.asarray(ref_labels, dtype=object)[None, :] \
        if n and m else np.zeros((n, m), dtype=bool)
    match_cost = eps * np.minimum(np.abs(hm[:, None] - rm[None, :]), 1.0) if n and m else None
    # dp over (n+1) x (m+1); rows vectorized would need a prefix-min for insertions, so a
    # plain double loop is used (phones per utterance are ~100, not frames)
    dp = np.zeros((n + 1, m + 1))
    dp[:, 0] = np.arange(n + 1)
    dp[0, :] = np.arange(m + 1)
    back = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diag, 1 up (hyp unmatched), 2 left
    back[1:, 0] = 1
    back[0, 1:] = 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = dp[i - 1, j - 1] + (match_cost[i - 1, j - 1] if same[i - 1, j - 1] else 2.0)
            up = dp[i - 1, j] + 1.0
            left = dp[i, j - 1] + 1.0
            if diag <= up and diag <= left:
                dp[i, j], back[i, j] = diag, 0
            elif up <= left:
                dp[i, j], back[i, j] = up, 1
            else:
                dp[i, j], back[i, j] = left, 2
    pairs = []
    i, j = n, m
    while i > 0 or j > 0:
        b = back[i, j]
        if b == 0:
            if same[i - 1, j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif b == 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _phone_errors(hyp, ref, hyp_phoneset, ref_phoneset) -> dict:
    for name, ps in (("hyp_phoneset", hyp_phoneset), ("ref_phoneset", ref_phoneset)):
        if ps not in PHONESETS_NO_IPA:
            raise ParameterError(f"{name}={ps!r} is not one of {', '.join(PHONESETS_NO_IPA)}")
    if hyp_phoneset == "auto":
        hyp_phoneset = detect_phoneset_no_ipa([lab for _, _, lab in hyp])
    if ref_phoneset == "auto":
        ref_phoneset = detect_phoneset_no_ipa([lab for _, _, lab in ref])
    h = [(s, e, map_phone(lab, hyp_phoneset)) for s, e, lab in hyp]
    r = [(s, e, map_phone(lab, ref_phoneset)) for s, e, lab in ref]
    h = [x for x in h if x[2] != "sil"]
    r = [x for x in r if x[2] != "sil"]
    pairs = match_phones([x[2] for x in h], [(x[0] + x[1]) / 2 for x in h],
                         [x[2] for x in r], [(x[0] + x[1]) / 2 for x in r])
    errors = np.empty(2 * len(pairs), dtype=np.float64)
    for k, (i, j) in enumerate(pairs):
        errors[2 * k] = abs(h[i][0] - r[j][0])
        errors[2 * k + 1] = abs(h[i][1] - r[j][1])
    out = summarize_errors(errors)
    out["errors"] = errors
    out.update(n_matched=len(pairs), n_hyp=len(h), n_ref=len(r),
               hyp_phoneset=hyp_phoneset, ref_phoneset=ref_phoneset)
    return out


def boundary_errors(hyp, ref, *, tier: str = "words", hyp_phoneset: str = "auto",
                    ref_phoneset: str = "auto") -> dict:
    """Absolute boundary errors of ``hyp`` against ``ref``.

    Parameters
    ----------
    hyp, ref : list of (start_s, end_s, label)
        Hypothesis and reference intervals of one utterance (silences may be present as
        intervals or gaps; they are ignored).
    tier : {"words", "phones"}
    hyp_phoneset, ref_phoneset : {"auto", "arpabet", "festival", "espeak"}
        Phone sets (phones only); ``"auto"`` guesses from the labels.

    Returns
    -------
    dict
        ``errors`` (float64 array of absolute errors in s, two per word or matched phone:
        start, end), ``n`` (boundaries), ``mean_ms``, ``median_ms``, ``within_10``,
        ``within_20``, ``within_25``, ``within_50``; for words also ``n_words``, for phones
        ``n_matched``, ``n_hyp``, ``n_ref`` and the phone sets used.

    Raises
    ------
    ParameterError
        Malformed intervals, an unknown tier, or (words) different word sequences.
    """
    hyp = _check_intervals(hyp, "hyp")
    ref = _check_intervals(ref, "ref")
    if tier == "words":
        return _word_errors(hyp, ref)
    if tier == "phones":
        return _phone_errors(hyp, ref, hyp_phoneset, ref_phoneset)
    raise ParameterError(f"tier={tier!r} is not supported; use 'words' or 'phones'")


# ----------------------------------------------------------------------------- FA-Bench
FILLERS = {"uh", "um", "uhm", "umm", "er", "erm", "ah", "eh", "hmm", "hm", "mm", "mhm",
           "<unk>", "<eps>", "<noise>", "<spoken_noise>", "<laugh>"}
_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)


def fold_word(label: str) -> list[str]:
    """A word label as the words it compares as: NFC, lower case, pocketsphinx alternates
    (``word(2)``) folded, punctuation and apostrophes removed, digits spelled out
    ("42" -> ``["forty", "two"]``). Silences, noise markers and fillers give ``[]``.

    Parameters
    ----------
    label : str
        One word label.

    Returns
    -------
    list of str
        The words it compares as (empty for silences and fillers).
    """
    from vqalign.align.text import normalize_words

    if is_silence(label):
        return []
    low = _ALT.sub("", unicodedata.normalize("NFC", label).strip().lower())
    if low in FILLERS:
        return []
    if any(ch.isdigit() for ch in low):
        try:
            words = normalize_words(low, unit="phones")
        except ParameterError:
            words = low.split()
    else:
        words = low.split()
    out = []
    for w in words:
        w = _PUNCT.sub("", w.replace("\u2019", "'"))
        if w and w not in FILLERS:
            out.append(w)
    return out


def _word_units(ivs) -> list[tuple[float, float, str]]:
    """Intervals -> folded words; a label that folds to k > 1 words keeps its start on the
    first and its end on the last, the inner boundaries unknown (NaN)."""
    out = []
    for src, (s, e, lab) in enumerate(ivs):
        ws = fold_word(lab)
        for k, w in enumerate(ws):
            out.append((s if k == 0 else float("nan"), e if k == len(ws) - 1 else float("nan"),
                        w, src))
    return out


def _phone_units(ivs, phoneset: str) -> tuple[list, str]:
    if phoneset == "auto":
        phoneset = detect_phoneset([lab for _, _, lab in ivs])
    out = [(s, e, to_arpabet(lab, phoneset), src) for src, (s, e, lab) in enumerate(ivs)]
    return [x for x in out if x[2] != "sil"], phoneset


def _context_classes(units, raw) -> tuple[list[str], list[str]]:
    """Class of each reference unit's onset and offset: the unit's phone class, or
    ``silence`` when silence or nothing lies next to it on that side."""
    speech = sorted((s, e) for s, e, lab in raw if not is_silence(lab) and s == s)
    on, off = [], []
    for s, e, lab, _ in units:
        cls = phone_class(lab)
        before = any(abs(pe - s) < 1e-3 for _, pe in speech)
        after = any(abs(ps - e) < 1e-3 for ps, _ in speech)
        on.append(cls if before else "silence")
        off.append(cls if after else "silence")
    return on, off


def compare_tier(hyp, ref, *, tier: str = "words", hyp_phoneset: str = "auto",
                 ref_phoneset: str = "auto") -> dict:
    """Pair one utterance's hypothesis with its reference (FA-Bench definition).

    Parameters
    ----------
    hyp, ref : list of (start_s, end_s, label)
        Intervals; times may be NaN for units the hypothesis did not time (counted as
        untimed boundaries, never as errors).
    tier : {"words", "phones"}

    Returns
    -------
    dict
        ``onset`` and ``offset``: signed errors (hyp - ref, s) of every pair;
        ``onset_class`` / ``offset_class`` (phones: class of each reference boundary);
        ``pairs`` (label, ref start, ref end, hyp start, hyp end); ``missing`` (reference
        labels with no pair), ``inserted`` (hypothesis labels with no pair),
        ``missing_src`` / ``inserted_src`` (their indices in ``ref`` / ``hyp``), ``n_untimed``
        (boundaries of paired units without a time), ``n_hyp``, ``n_ref``, phone sets.
    """
    if tier not in ("words", "phones"):
        raise ParameterError(f"tier={tier!r} is not supported; use 'words' or 'phones'")
    for name, ps in (("hyp_phoneset", hyp_phoneset), ("ref_phoneset", ref_phoneset)):
        if ps not in PHONESETS:
            raise ParameterError(f"{name}={ps!r} is not one of {', '.join(PHONESETS)}")
    hyp = _check_timed(hyp, "hyp")
    ref = _check_timed(ref, "ref")
    out: dict = {"tier": tier}
    if tier == "words":
        h, r = _word_units(hyp), _word_units(ref)
        on_cls = off_cls = None
    else:
        h, out["hyp_phoneset"] = _phone_units(hyp, hyp_phoneset)
        r, out["ref_phoneset"] = _phone_units(ref, ref_phoneset)
        on_cls, off_cls = _context_classes(r, ref)

    def mids(units):
        m = np.array([(s + e) / 2 if s == s and e == e else (s if s == s else e)
                      for s, e, *_ in units], dtype=np.float64)
        return np.nan_to_num(m, nan=1e9)

    pairs = match_phones([x[2] for x in h], mids(h), [x[2] for x in r], mids(r))
    onset, offset, ocls, fcls, plist = [], [], [], [], []
    n_untimed = 0
    for i, j in pairs:
        (hs, he, lab, _), (rs, re_, _, _) = h[i], r[j]
        plist.append((lab, rs, re_, hs, he))
        for val, store, cls, clist in ((hs - rs, onset, on_cls, ocls),
                                       (he - re_, offset, off_cls, fcls)):
            if val == val:
                store.append(val)
                if cls is not None:
                    clist.append(cls[j])
            else:
                n_untimed += 1
    hi = {i for i, _ in pairs}
    rj = {j for _, j in pairs}
    out.update(onset=np.asarray(onset), offset=np.asarray(offset), pairs=plist,
               onset_class=ocls, offset_class=fcls,
               missing=[r[j][2] for j in range(len(r)) if j not in rj],
               inserted=[h[i][2] for i in range(len(h)) if i not in hi],
               missing_src=[r[j][3] for j in range(len(r)) if j not in rj],
               inserted_src=[h[i][3] for i in range(len(h)) if i not in hi],
               n_untimed=n_untimed, n_hyp=len(h), n_ref=len(r))
    return out


def _check_timed(x, name: str) -> list[tuple[float, float, str]]:
    """Like :func:`_check_intervals`, but a unit may lack times (NaN)."""
    if x is None or isinstance(x, (str, bytes)):
        raise ParameterError(f"{name} must be a list of (start_s, end_s, label), got {x!r:.60}")
    out = []
    for k, item in enumerate(x):
        if hasattr(item, "as_tuple"):
            item = item.as_tuple()
        try:
            s, e, lab = float(item[0]), float(item[1]), item[2]
        except (TypeError, ValueError, IndexError):
            raise ParameterError(f"{name}[{k}] = {item!r:.60} is not (start_s, end_s, label)"
                                 ) from None
        if np.isinf(s) or np.isinf(e) or (s == s and e == e and e < s):
            raise ParameterError(f"{name}[{k}] = ({s}, {e}, {lab!r}) has end before start or "
                                 "infinite times")
        out.append((s, e, "" if lab is None else str(lab)))
    return out


def summarize_tier(scores) -> dict:
    """Pool :func:`compare_tier` results (one per utterance) into the reported figures.

    ``mean_ms``, ``median_ms``, ``p90_ms`` of absolute errors (onsets and offsets pooled),
    ``pct_within_ms`` (``"10"``, ``"20"``, ``"25"``, ``"50"``: percent of boundaries),
    ``n_boundaries``, ``n_unmatched`` (missing + inserted units), ``n_missing``,
    ``n_inserted``, ``n_untimed``, ``bias_onset_ms`` / ``bias_offset_ms`` (mean signed
    error), and for phones ``by_class`` (the same figures per class of boundary).

    Parameters
    ----------
    scores : iterable of dict
        :func:`compare_tier` results of one tier.

    Returns
    -------
    dict
        The figures above.
    """
    scores = list(scores)
    on = np.concatenate([s["onset"] for s in scores]) if scores else np.empty(0)
    off = np.concatenate([s["offset"] for s in scores]) if scores else np.empty(0)
    out = _figures(np.abs(np.concatenate([on, off])))
    n_miss = sum(len(s["missing"]) for s in scores)
    n_ins = sum(len(s["inserted"]) for s in scores)
    out.update(n_unmatched=n_miss + n_ins, n_missing=n_miss, n_inserted=n_ins,
               n_untimed=sum(s["n_untimed"] for s in scores),
               n_ref_units=sum(s["n_ref"] for s in scores),
               n_hyp_units=sum(s["n_hyp"] for s in scores),
               bias_onset_ms=_mean_ms(on), bias_offset_ms=_mean_ms(off))
    if scores and scores[0]["tier"] == "phones":
        errs = np.abs(np.concatenate([on, off]))
        classes = np.array([c for s in scores for c in s["onset_class"]]
                           + [c for s in scores for c in s["offset_class"]], dtype=object)
        by = {}
        for cls in ("vowel", "stop", "fricative", "nasal", "approximant", "silence"):
            sel = classes == cls if classes.size else np.zeros(0, dtype=bool)
            f = _figures(errs[sel])
            by[cls] = {k: f[k] for k in ("mean_ms", "median_ms", "p90_ms", "n_boundaries")}
            by[cls]["pct_within_20"] = f["pct_within_ms"]["20"]
        out["by_class"] = by
    return out


def _mean_ms(x) -> float:
    return float(1000.0 * np.mean(x)) if np.size(x) else float("nan")


def _figures(abs_s) -> dict:
    e = 1000.0 * np.asarray(abs_s, dtype=np.float64)
    if e.size == 0:
        nan = float("nan")
        return {"mean_ms": nan, "median_ms": nan, "p90_ms": nan,
                "pct_within_ms": {str(t): nan for t in THRESHOLDS_MS}, "n_boundaries": 0}
    return {"mean_ms": float(e.mean()), "median_ms": float(np.median(e)),
            "p90_ms": float(np.percentile(e, 90)),
            "pct_within_ms": {str(t): float(100.0 * np.mean(e <= t + 1e-6))
                              for t in THRESHOLDS_MS},
            "n_boundaries": int(e.size)}
