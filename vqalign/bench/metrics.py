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
"""

from __future__ import annotations

import re

import numpy as np

from vqalign.exceptions import ParameterError

THRESHOLDS_MS = (10, 20, 25, 50)

# labels that mean "no speech" in the systems we compare
_SILENCE = {"", "sil", "sp", "spn", "pau", "h#", "_", "<sil>", "<s>", "</s>", "silence"}
_ALT = re.compile(r"\(\d+\)$")

# Festival "radio" phone set -> ARPAbet (devdata/phonesets/festival_radio_to_arpabet.tsv):
# lower-case ARPAbet plus a few extras.
FESTIVAL_TO_ARPABET = {
    "ax": "AH", "axr": "ER", "dx": "T", "el": "L", "em": "M", "en": "N", "hv": "HH",
    "nx": "N", "pau": "sil",
}
for _p in ("aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t "
           "th uh uw v w y z zh").split():
    FESTIVAL_TO_ARPABET[_p] = _p.upper()

# eSpeak NG mnemonics (devdata/phonesets/espeak_mnemonic_to_ipa.tsv gives their IPA) ->
# the nearest ARPAbet phone (r-coloured vowels and diphthongs with a schwa map to their
# vowel; syllabic l to L, as Festival's el).
ESPEAK_TO_ARPABET = {
    "0": "AA", "3": "ER", "3:": "ER", "@": "AH", "@-": "AH", "@2": "AH", "@5": "AH",
    "@L": "L", "A:": "AA", "A@": "AA", "A#": "AA", "D": "DH", "E": "EH", "E2": "EH",
    "I": "IH", "I#": "IH", "I2": "IH", "N": "NG", "O": "AO", "O2": "AO", "O:": "AO",
    "O@": "AO", "OI": "OY", "S": "SH", "T": "TH", "U": "UH", "U@": "UH", "V": "AH",
    "VR": "ER", "Z": "ZH", "a": "AE", "a#": "AH", "aa": "AA", "aI": "AY", "aI2": "AY",
    "aI@": "AY", "aU": "AW", "b": "B", "d": "D", "dZ": "JH", "e": "EH", "e@": "EH",
    "eI": "EY", "f": "F", "g": "G", "h": "HH", "i": "IY", "i:": "IY", "i@": "IH",
    "i@3": "IH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N", "o@": "AO", "oU": "OW",
    "p": "P", "r": "R", "r-": "R", "s": "S", "t": "T", "t#": "T", "t2": "T", "tS": "CH",
    "u": "UW", "u:": "UW", "v": "V", "w": "W", "w#": "W", "x": "K", "z": "Z", ";": "sil",
}

PHONESETS = ("auto", "arpabet", "festival", "espeak")


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


def is_silence(label: str) -> bool:
    """True for empty labels, silences (sil, sp, pau, <sil>, ...) and noise markers."""
    low = label.strip().lower()
    return (low in _SILENCE or (low.startswith("+") and low.endswith("+"))
            or (low.startswith("[") and low.endswith("]")))


def normalize_word(label: str) -> str:
    """Lower case, ``word(2)`` -> ``word``, curly apostrophes folded."""
    return _ALT.sub("", label.strip().lower().replace("\u2019", "'"))


def detect_phoneset(labels) -> str:
    """Guess a phone set: ``"arpabet"`` (upper case, optional stress digits),
    ``"festival"`` (lower-case radio set) or ``"espeak"`` (mnemonics)."""
    labs = [lab for lab in labels if not is_silence(lab)]
    if not labs:
        return "arpabet"
    if all(re.fullmatch(r"[A-Z]+[0-2]?", lab) for lab in labs):
        return "arpabet"
    if all(lab in FESTIVAL_TO_ARPABET for lab in labs):
        return "festival"
    return "espeak"


def map_phone(label: str, phoneset: str) -> str:
    """One phone label in ARPAbet (upper case, no stress); ``"sil"`` for silences."""
    if is_silence(label):
        return "sil"
    if phoneset == "arpabet":
        return label.strip().rstrip("012").upper()
    if phoneset == "festival":
        return FESTIVAL_TO_ARPABET.get(label.strip().lower(), label.strip().upper())
    if phoneset == "espeak":
        lab = label.strip()
        return ESPEAK_TO_ARPABET.get(lab, ESPEAK_TO_ARPABET.get(lab.rstrip("012"), lab))
    raise ParameterError(f"phoneset={phoneset!r} is not one of {', '.join(PHONESETS)}")


def summarize_errors(errors_s) -> dict:
    """Summary of absolute boundary errors in seconds (pool several utterances first)."""
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
        if ps not in PHONESETS:
            raise ParameterError(f"{name}={ps!r} is not one of {', '.join(PHONESETS)}")
    if hyp_phoneset == "auto":
        hyp_phoneset = detect_phoneset([lab for _, _, lab in hyp])
    if ref_phoneset == "auto":
        ref_phoneset = detect_phoneset([lab for _, _, lab in ref])
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
