"""A second opinion for one self-trained utterance: the CMU Sphinx English model.

A model self-trained on one utterance of a few seconds has a few hundred frames to learn
some forty phones from; its errors are those of its flat start (a word slid over a pause,
a stop swallowed by its vowel). The Sphinx en-us model inside the pocketsphinx wheel
(:mod:`vqalign.align.sphinx`) was trained on hours of real speech and errs elsewhere: on
voices and rates unlike its training data. For English phones, when pocketsphinx is
installed, a self-trained alignment is therefore made of three:

1. the flat-start model (the single-utterance policy of :class:`Aligner`);
2. a second model self-trained on the same audio from the Sphinx model's phone
   segmentation (:func:`segmentation_start`, then the same MAP EM);
3. the Sphinx model's own alignment;

and every boundary is the median of the three (:func:`combine`). A boundary is thereby
wrong only where two of the three are wrong alike. Their spread is what the confidence of
the result is computed from (with the two self-trained models' own confidences).

Measured on devdata, 200 files self-trained one at a time (word-boundary mean / within
20 ms): flat start 20.5 ms / 66.7 %, the Sphinx-seeded model 17.1 / 73.3 %, the Sphinx
model 17.2 / 73.6 %, their median 14.5 / 79.5 % (`vqalign bench align --single 200`). Any two averaged:
15.6-16.1 ms.
"""

from __future__ import annotations

import math

import numpy as np

#: frames of the speech frames' best-Gaussian histogram mixed into each state's weights of
#: a segmentation start (its own frames are few: 3-10 per state of one utterance)
SEED_MIX = 0.3
#: the smallest phone (s) the median leaves when it squeezes a word's phones
MIN_PHONE_S = 0.01

_SPHINX: dict = {}


def available() -> bool:
    """Whether the Sphinx en-us model can be loaded (pocketsphinx installed)."""
    if "ok" not in _SPHINX:
        try:
            import pocketsphinx  # noqa: F401, PLC0415
            _SPHINX["ok"] = True
        except ImportError:
            _SPHINX["ok"] = False
    return _SPHINX["ok"]


def sphinx_aligner():
    """The cached :class:`vqalign.align.sphinx.SphinxAligner` on en-us."""
    if "aligner" not in _SPHINX:
        from vqalign.align.sphinx import SphinxAligner  # noqa: PLC0415
        _SPHINX["aligner"] = SphinxAligner("en-us")
    return _SPHINX["aligner"]


def sphinx_reference(p, hop_s):
    """(alignment, segments) of the prepared utterance ``p`` by the Sphinx model, on the
    audio ``p`` holds (its frames' time origin); ``segments`` per phone of ``p``'s
    transcript: (first frame, end frame, symbol). Phones are the Sphinx alignment's where
    its pronunciation of a word is ``p``'s (stress left aside), else the word's span split
    by typical phone durations. Returns (None, reason) when it cannot be made."""
    from vqalign.align.aligner import FEATURE_SR, _rel_duration  # noqa: PLC0415
    from vqalign.exceptions import VQAlignError  # noqa: PLC0415

    if p.y16 is None:
        return None, "no audio"
    try:
        aln = sphinx_aligner().align(p.y16, " ".join(p.tokens.words), sr=FEATURE_SR)
    except (VQAlignError, ValueError) as e:
        return None, f"the Sphinx model could not align it ({str(e)[:120]})"
    sw = aln.tiers["words"]
    if len(sw) != len(p.tokens.units):
        return None, "the Sphinx model split the transcript into other words"
    sph = aln.tiers["phones"]
    T = p.X.shape[0]
    segs = []
    k = 0
    for seg, units in zip(sw, p.tokens.units):
        theirs, k = _phones_in(sph, k, seg.start, seg.end)
        if [s.label for s in theirs] == [u.rstrip("012") for u in units]:
            edges = [theirs[0].start] + [s.end for s in theirs]
        else:
            r = np.array([_rel_duration(u) for u in units])
            edges = (seg.start + (seg.end - seg.start)
                     * np.concatenate([[0.0], np.cumsum(r) / r.sum()])).tolist()
        f = np.clip(np.round(np.asarray(edges) / hop_s).astype(int), 0, T)
        segs.extend((int(f[j]), int(f[j + 1]), u) for j, u in enumerate(units))
    return aln, segs


def _phones_in(phones, k, a, b):
    """(the segments of ``phones`` from index ``k`` on that overlap [a, b), the index after
    the last one starting before ``b``): a word's phones, the words taken in order."""
    out = []
    while k < len(phones) and phones[k].start < b - 1e-6:
        if phones[k].end > a + 1e-6:
            out.append(phones[k])
        k += 1
    return out, k


def segmentation_start(m, segs, sel):
    """Weights and self loops of a start from a phone segmentation ``segs`` [(first
    frame, end frame, symbol)]: each state's weights from the best Gaussians of its third
    of its phones' frames (SEED_MIX of the speech frames' mixed in), its self loop from the
    mean length of that third; silence from the frames outside every phone."""
    best = np.asarray(sel.idx[:, 0])
    K = m.gmm_.n_components
    spu = m.states_per_symbol if isinstance(m.states_per_symbol, int) else 1
    hist, frames, count = {}, {}, {}
    inside = np.zeros(best.size, bool)
    for a, b, u in segs:
        if b <= a:
            continue
        inside[a:b] = True
        cuts = np.linspace(a, b, spu + 1).round().astype(int)
        for j in range(spu):
            key = (u, j)
            h = hist.setdefault(key, np.zeros(K))
            h += np.bincount(best[cuts[j]:cuts[j + 1]], minlength=K)
            frames[key] = frames.get(key, 0) + max(int(cuts[j + 1] - cuts[j]), 1)
            count[key] = count.get(key, 0) + 1
    sp = np.bincount(best[inside], minlength=K) + 0.5
    sp /= sp.sum()
    sil = m.optional_silence
    for (sym, j), col in m.emit_index_.items():
        if sym == sil:
            h = np.bincount(best[~inside], minlength=K) + 0.5
            m.weights_[col] = h / h.sum()
            continue
        h = hist.get((sym, j))
        if h is None or h.sum() == 0:
            continue
        m.weights_[col] = (1 - SEED_MIX) * h / h.sum() + SEED_MIX * sp
        m.self_loop_[col] = 1.0 - 1.0 / max(frames[(sym, j)] / count[(sym, j)], 1.05)
    w = np.maximum(m.weights_, m.weight_floor / K)
    m.weights_ = (w / w.sum(1, keepdims=True)).astype(np.float32)


def _bounds(segments):
    return np.array([[s.start, s.end] for s in segments], np.float64).reshape(-1, 2)


def _squeeze(inner, a, b, n):
    """``n - 1`` inner boundaries of ``n`` phones kept in order inside [a, b], each phone at
    least MIN_PHONE_S long (or an equal share of a shorter word)."""
    eps = min(MIN_PHONE_S, (b - a) / max(n, 1))
    lo = a + eps * np.arange(1, n)
    hi = b - eps * np.arange(n - 1, 0, -1)
    x = np.clip(np.sort(inner), lo, hi)
    for i in range(1, x.size):   # a handful per word
        x[i] = max(x[i], x[i - 1] + eps)
    return np.minimum(x, hi)


def combine(flat, seeded, ref):
    """The per-boundary median of three alignments of one utterance (the flat-start and
    the Sphinx-seeded self-trained ones, with the same words and phones, and the Sphinx
    model's ``ref``). Returns (words (n, 2), phones (m, 2), spreads): phone boundaries
    are the median of the three where the Sphinx pronunciation of the word is the same,
    else the mean of the two self-trained ones, kept inside the word; ``spreads`` holds
    per word and per phone (n, 2) the range (s) of its start's and its end's estimates."""
    W = np.stack([_bounds(a.tiers["words"]) for a in (flat, seeded, ref)])
    wf, wr = W[0], W[2]
    words = np.median(W, axis=0)
    word_spread = W.max(axis=0) - W.min(axis=0)
    unit = flat.unit_tier
    pf, ps = _bounds(flat.tiers[unit]), _bounds(seeded.tiers[unit])
    labels = [s.label for s in flat.tiers[unit]]
    sph = ref.tiers.get("phones", [])
    phones = np.empty_like(pf)
    phone_spread = np.empty((len(labels), 2))
    k = i = 0
    for w in range(words.shape[0]):
        j = i
        while j < len(labels) and pf[j, 0] < wf[w, 1] - 1e-9:
            j += 1
        j = max(j, i + 1)
        n = j - i
        theirs, k = _phones_in(sph, k, wr[w, 0], wr[w, 1])
        est = [pf[i:j, 1][:-1], ps[i:j, 1][:-1]]
        if [s.label for s in theirs] == [lab.rstrip("012") for lab in labels[i:j]]:
            est.append(np.array([s.end for s in theirs[:-1]]))
        E = np.stack(est)
        inner = np.median(E, axis=0) if len(est) == 3 else E.mean(axis=0)
        a, b = words[w]
        x = _squeeze(inner, a, b, n)
        edges = np.concatenate([[a], x, [b]])
        phones[i:j, 0], phones[i:j, 1] = edges[:-1], edges[1:]
        rng = (E.max(0) - E.min(0)) if n > 1 else np.zeros(0)
        lo_sp = np.concatenate([[word_spread[w, 0]], rng])
        hi_sp = np.concatenate([rng, [word_spread[w, 1]]])
        phone_spread[i:j, 0], phone_spread[i:j, 1] = lo_sp, hi_sp
        i = j
    spreads = {"words": word_spread, "units": phone_spread}
    return words, phones, spreads


def combined_features(flat, seeded, spreads, unit):
    """Per word and per phone: the logit of the first model's confidence (the flat-start
    or the corpus model), of the seeded model's, log(1 + ms) of the larger spread of its
    start's and its end's estimates, and that spread times each logit
    (:data:`COMBINED_FEATURES`). Measured on devdata and built-in synthetic sets,
    cross-validated by voice (AUC for an error over 50 ms), single files: words 0.899
    (0.896 without the two products; the two spreads apart 0.863, with log duration 0.890,
    the spread alone 0.874), phones 0.786 (0.761); small corpora: words 0.878 (0.840),
    phones 0.806 (0.752)."""
    from vqalign.align.confidence import _logit  # noqa: PLC0415
    out = {}
    for tier, name in (("words", "words"), ("units", unit)):
        cf = np.array([s.confidence for s in flat.tiers[name]], np.float64)
        cs = np.array([s.confidence for s in seeded.tiers[name]], np.float64)
        cf = np.where(np.isfinite(cf), cf, 0.5)
        cs = np.where(np.isfinite(cs), cs, 0.5)
        lf, ls = _logit(cf), _logit(cs)
        sp = np.log1p(1000.0 * spreads[tier].max(axis=1))
        out[tier] = np.column_stack([lf, ls, sp, sp * lf, sp * ls])
    return out


COMBINED_FEATURES = ("logit_conf_flat", "logit_conf_seeded", "log1p_spread_ms",
                     "spread_x_logit_flat", "spread_x_logit_seeded")


def merge(flat, seeded, ref, energy, hop_s, warnings=(), *, mode="self", energy_offset_s=0.0):
    """The alignment of :func:`combine`: the flat one's words and phones at the median
    boundaries, with confidences from :func:`vqalign.align.confidence.predict` (a word over near-silence capped as
    in :mod:`vqalign.align.confidence`) and ``diagnostics["reference"]`` naming the three
    and holding their word boundaries. ``energy``: the frames' c0 (the near-floor check),
    its first frame at ``energy_offset_s``; ``warnings``: the utterance's own (the quality
    warnings are made again). ``mode`` "self": ``flat`` is the flat-start self-trained
    alignment (confidence model "combined"); "corpus": a corpus-trained model's
    ("corpus_combined")."""
    import copy  # noqa: PLC0415

    from vqalign.align.alignment import Segment  # noqa: PLC0415
    from vqalign.align.confidence import (  # noqa: PLC0415
        NEAR_FLOOR,
        SILENT_CAP,
        SILENT_FRACTION,
        predict,
    )

    unit = flat.unit_tier
    words, phones, spreads = combine(flat, seeded, ref)
    F = combined_features(flat, seeded, spreads, unit)
    conf = {}
    key = "combined" if mode == "self" else "corpus_combined"
    for tier in ("words", "units"):
        for tol in (50, 20):
            conf[(tier, tol)] = predict(F[tier], tier, tol, mode=key)
    # words over near-silence (the share of their frames near the noise floor)
    e = np.asarray(energy, np.float64)
    lo, hi = np.quantile(e, (0.05, 0.95)) if e.size else (0.0, 1.0)
    near = np.clip((e - lo) / max(hi - lo, 1e-6), 0.0, 1.0) < NEAR_FLOOR
    c = np.concatenate([[0], np.cumsum(near)])

    def near_share(a, b):
        a, b = a - energy_offset_s, b - energy_offset_s
        fa = int(np.clip(round(a / hop_s), 0, e.size))
        fb = int(np.clip(round(b / hop_s), fa + 1, max(e.size, fa + 1)))
        fb = min(fb, e.size)
        return float((c[fb] - c[fa]) / max(fb - fa, 1))

    silent = np.array([near_share(a, b) > SILENT_FRACTION for a, b in words], bool)
    labels = [s.label for s in flat.tiers[unit]]
    w_of_p = np.searchsorted(words[:, 1], (phones[:, 0] + phones[:, 1]) / 2)
    wsil = (silent[np.minimum(w_of_p, len(silent) - 1)] if len(silent)
            else np.zeros(len(phones), bool))
    for tol in (50, 20):
        conf[("words", tol)][silent] = np.minimum(conf[("words", tol)][silent], SILENT_CAP)
        conf[("units", tol)][wsil] = np.minimum(conf[("units", tol)][wsil], SILENT_CAP)
    out = copy.copy(flat)
    out.tiers = {
        "words": [Segment(float(a), float(b), s.label, float(p)) for (a, b), s, p in
                  zip(words, flat.tiers["words"], conf[("words", 50)])],
        unit: [Segment(float(a), float(b), lab, float(p)) for (a, b), lab, p in
               zip(phones, labels, conf[("units", 50)])],
    }
    d = dict(flat.diagnostics)
    block = dict(d.get("confidence") or {})

    def rounded(a):
        return [None if not math.isfinite(v) else round(float(v), 4) for v in a]

    block.update({"mode": "combined" if mode == "self" else "corpus-combined",
                  "words_20ms": rounded(conf[("words", 20)]),
                  f"{unit}_20ms": rounded(conf[("units", 20)]),
                  "combined_features": list(COMBINED_FEATURES),
                  "combined_word_features": [rounded(r) for r in F["words"]],
                  f"combined_{unit}_features": [rounded(r) for r in F["units"]]})
    d["confidence"] = block
    base = "flat" if mode == "self" else "corpus"
    d["reference"] = {
        "method": ("per-boundary median of the flat-start and the Sphinx-seeded "
                   "self-trained models and the Sphinx en-us model" if mode == "self" else
                   "per-boundary median of the corpus model, a model self-trained on the "
                   "file from the Sphinx en-us model's segmentation, and the Sphinx model"),
        "words": {name: [[round(s.start, 4), round(s.end, 4)] for s in a.tiers["words"]]
                  for name, a in ((base, flat), ("seeded", seeded), ("sphinx", ref))},
        "seeded_em_history": seeded.diagnostics.get("em_history"),
    }
    warns = list(warnings)
    for w in np.flatnonzero(silent):
        s = out.tiers["words"][w]
        warns.append(f"words: {s.label!r} at {s.start:.2f}-{s.end:.2f} s lies over "
                     f"near-silence (most of its frames are near the recording's noise floor); "
                     f"it is probably misplaced (confidence set to <= {SILENT_CAP:g}): check "
                     "the transcript against the audio there")
    d["warnings"] = warns
    out.diagnostics = d
    from vqalign.align.aligner import _add_warnings  # noqa: PLC0415
    _add_warnings(out, None)
    return out
