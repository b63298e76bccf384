"""The training recipe: one schedule, one set of constants, for every model the aligner trains.

:meth:`vqalign.align.Aligner.fit` (in memory), the per-utterance self-training and
``align-corpus``'s streamed EM (:mod:`vqalign.pipeline.em`) all build their models and
starts here:

- a codebook (:func:`codebook_size`, :func:`lbg_codebook`) becomes shared Gaussians
  (:func:`gaussians`) in the engine's tied-mixture HMM (:func:`make_hmm`);
- flat starts: silence from each utterance's quietest frames (:func:`quiet_masks`,
  ``QUIET_QUANTILE``), speech states from the rest; self loops from durations
  (:func:`duration_start`) or short (``SHORT_SELF_LOOP``); phone weights from broad
  classes (:func:`broad_class_start`);
- which starts a corpus runs (:func:`corpus_starts`) and which one is kept
  (:func:`start_score`: likelihood less the loud frames put in silence);
- a single utterance's policy: several starts (``SINGLE_STARTS``), MAP re-estimation
  around them (:func:`map_prior`);
- :func:`train`: the schedule itself, from a base model to the model kept.

Every constant is defined once here, with the measurement behind it.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np

from vqalign.align.utterance import LONG_AUDIO_S
from vqalign.exceptions import ParameterError
from vqalign.features.frontend import DITHER, SELF_DITHER, edge_silence

#: the optional silence's symbol in every model
SIL = "sil"
#: frame hop (s) of a corpus-trained model of phones (chars and a model self-trained on one
#: utterance: SINGLE_HOP_S). With phones, 5 ms (and +-1-frame deltas) measured better
#: boundaries on the dev set than 10 ms (15.2 vs 15.7 ms mean word-boundary error, 77 vs 73 %
#: within 20 ms) at about twice the cost; with chars (several letters per sound, e.g. "ll")
#: the 3-states-per-letter minimum duration at 5 ms is too weak and whole words were
#: squeezed, so chars keep 10 ms
CORPUS_HOP_S = 0.005
# works at a 10 ms hop and seeds its silence from the quietest 5 % of the frames (a
# corpus: 5 ms and 15 %). Measured on 8 synth utterances x 10 seeds (docs/accuracy.md):
# 73 -> 39 ms mean word-boundary error. With one utterance the silence column has no
# other data: a broader seed takes in stop closures and weak fricatives, which EM then
# labels as pauses and shifts the following words by one.
SINGLE_HOP_S = 0.010
SINGLE_SILENCE_QUANTILE = 0.05
#: EM updates of one utterance self-trained from a pretrained codebook (``codebook=``):
#: the seed's recipe, mixture weights only, self loops from durations. Measured on devdata
#: (codebook of 1024 from the four other voices, the 20 slt files aligned one at a time):
#: 107.7 ms mean word-boundary error with "w", 129.0 ms when self loops are re-estimated
#: too ("wt"); 42.3 ms with "w" and the broad-class start (BROAD_PRIOR)
SEEDED_UPDATE = "w"

#: a flat start's silence: each utterance's quietest share of frames (raw c0); the rest
#: starts the speech states
QUIET_QUANTILE = 0.15
#: the shared Gaussians from a codebook (:meth:`vqalign.hmm.DiagGMM.from_codebook`):
#: variance floor, shrinkage towards the pooled variance (frames' worth), and the evenly
#: spaced frames the variances are computed on (the settings the aligner was tuned with)
GMM_VAR_FLOOR = 1e-2
GMM_SHRINKAGE = 10.0
GMM_FRAMES = 32768
#: the self loop of every state of the "short" flat start
SHORT_SELF_LOOP = 0.6

#: frames up to which a trained codebook is kept for the next model of the same frames
CODEBOOK_CACHE_FRAMES = 60000


#: a self-trained model's silence also starts from the frames before the first and after
#: the last stretch of speech the energy VAD finds (not only the quietest 5 %): with
#: BROAD_PRIOR, pocketsphinx-testdata single mode 70.7 -> 76.6 % within 50 ms (the first
#: word no longer starts in the leading noise); devdata 40 utterances 34.1 -> 33.8 ms
#: (at BROAD_PRIOR 0.3)
EDGE_QUIET = True


# Below this much training audio a second flat start is cheap (well under a second of
# EM) and needed: from a single start EM on a small corpus often converges to an
# optimum where the silence model swallows whole words (12 synth utterances: 350 ms
# mean word error from the short-duration start, 12 ms from the duration start).
MULTI_START_S = 300.0
#: a corpus-trained model has at most one Gaussian per this many training frames (up to
#: ``n_codes``; corpora over 128 s of speech keep 256): pocketsphinx-testdata, 10
#: recordings, 34 s (6900 frames at 5 ms), corpus mode, word boundaries within 50 ms of
#: pocketsphinx: 256 Gaussians 78.8 %, 68 89.7 %, 64 88.6 %
CORPUS_FRAMES_PER_CODE = 100
MIN_CORPUS_CODES = 64
#: a small corpus's flat starts (see Aligner.train_model) are compared by their final
#: log-likelihood per frame minus this many nats times :func:`loud_in_silence`: a start
#: whose model calls loud frames silence has lost words into the pauses, whatever its
#: likelihood. pocketsphinx-testdata, 10 recordings, corpus mode: the plain durations
#: start has the higher likelihood (-42.34 vs -42.11 broad-class; at 68 Gaussians -46.04
#: vs -45.79), 1.4 % of loud frames in silence (broad-class 0.3 %) and 31.5 % of word
#: boundaries within 50 ms of pocketsphinx (broad-class 78.8 %); on synthetic corpora of
#: 12 utterances (seeds 0-7) the short start's failures (89 ms mean word error on seed 5,
#: 0.23 % loud frames in silence) lose to starts at 0-0.12 %
LOUD_SILENCE_COST = 50.0
#: loud frames: raw c0 above the utterance's 10th percentile plus this share of its
#: 10th-95th percentile range
LOUD_SHARE = 0.3
#: Viterbi beam (log units): states this far below the frame's best are dropped
VITERBI_BEAM = -60.0


#: broad-class flat start of a model self-trained on one utterance (unit="phones"): each
#: phone's weights start from the frames of its broad class (vowel-like, fricative, other;
#: :func:`broad_frame_classes`) mixed with this share of every speech frame's (None: all
#: phones start alike). Devdata, 40 utterances (every 5th, all voices) self-trained one
#: at a time: 89.5 ms mean word-boundary error without, 34.1 ms at 0.6 (36.4 at 0.3,
#: 34.1 at 0.1); pocketsphinx-testdata, single mode: 48.9 -> 70.7 % of word boundaries
#: within 50 ms of pocketsphinx (65.8 % at 0.3)
BROAD_PRIOR = 0.6
#: the broad classes of :func:`broad_class_start`: vowel-like phones (vowels and
#: glides/liquids) and fricatives (affricates and HH with them); every other phone is "other"
VOWEL_LIKE = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW",
                        "OY", "UH", "UW", "L", "R", "W", "Y"})
FRICATIVES = frozenset({"F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH", "CH", "JH"})


def quiet_masks(energy, offs, quantile):
    """Per utterance (frames ``offs[u]:offs[u + 1]``), its frames at or below its own
    ``quantile`` of raw c0: where a flat start seeds silence.

    Parameters
    ----------
    energy : ndarray, shape (N,)
    offs : ndarray, shape (U + 1,), int64
    quantile : float

    Returns
    -------
    list of ndarray, shape (offs[u + 1] - offs[u],), bool
    """
    out = []
    for u in range(len(offs) - 1):
        e = energy[offs[u]:offs[u + 1]]
        out.append(e <= np.quantile(e, quantile))
    return out


def loud_in_silence(model, X, offs, energy, words) -> float:
    """Share of the loud frames (raw c0 above ``p10 + LOUD_SHARE * (p95 - p10)`` of their
    utterance) that ``model``'s Viterbi paths put in an optional silence, over the
    utterances ``words`` (frames ``offs[u]:offs[u + 1]`` of ``X`` and ``energy``) whose
    path was found.

    Parameters
    ----------
    model : vqalign.hmm.TiedMixtureHMM
    X : ndarray, shape (N, 39), float32
    offs : ndarray, shape (U + 1,), int64
    energy : ndarray, shape (N,)
    words : list
        Per utterance, its words' units.

    Returns
    -------
    float
    """
    batch = model.batch(words)
    path, _, status, _ = model.viterbi_batch(X, offs, batch, model.select(X))
    loud = n = 0
    for u in range(len(words)):
        if status[u] != 0:
            continue
        a, b = offs[u], offs[u + 1]
        e = energy[a:b]
        lo, hi = np.percentile(e, [10, 95])
        on = e > lo + LOUD_SHARE * (hi - lo)
        sil = batch.skippable[batch.state_off[u] + path[a:b]]
        loud += int(np.count_nonzero(on & sil))
        n += int(np.count_nonzero(on))
    return loud / max(n, 1)


def broad_frame_classes(X, quiet):
    """Per frame a broad class from spectral cues of (T, 39) aligner features: 0 silence
    (``quiet``), 1 vowel-like (loud and low-frequency: c0 above the speech frames' 40th
    percentile and c1 above their median), 2 fricative (c1, the spectral tilt, in the
    speech frames' lowest quarter), 3 other (nasals, stops, weak sounds).

    Parameters
    ----------
    X : ndarray, shape (T, 39)
    quiet : ndarray, shape (T,), bool

    Returns
    -------
    ndarray, shape (T,), int8
    """
    cls = np.full(X.shape[0], 3, np.int8)
    sp = ~quiet
    if sp.sum() < 8:
        cls[quiet] = 0
        return cls
    c0, c1 = X[:, 0], X[:, 1]
    e40 = np.quantile(c0[sp], 0.4)
    t50, t25 = np.quantile(c1[sp], [0.5, 0.25])
    cls[(c0 >= e40) & (c1 >= t50)] = 1
    cls[c1 <= t25] = 2
    cls[quiet] = 0
    return cls



def broad_class_start(m, X, offs, quiet, sel, prior=None):
    """Overwrite a flat start's phone weights with broad-class ones mixed with a share
    ``prior`` (default BROAD_PRIOR) of the speech frames' weights.

    Parameters
    ----------
    m : vqalign.hmm.TiedMixtureHMM
        Initialized (its ``weights_`` are replaced).
    X : ndarray, shape (N, 39)
    offs : ndarray, shape (U + 1,), int64
    quiet : list of ndarray, bool
        :func:`quiet_masks`.
    sel : vqalign.hmm.train.Selection
        ``sel.idx[:, 0]``: each frame's best Gaussian.
    prior : float, optional
    """
    prior = BROAD_PRIOR if prior is None else prior
    q = np.concatenate(quiet)
    cls = broad_frame_classes(X, q)
    best = sel.idx[:, 0]
    K = m.gmm_.n_components
    hist = [np.bincount(best[cls == c], minlength=K) + 0.5 for c in range(4)]
    sp = hist[1] + hist[2] + hist[3]
    sp = sp / sp.sum()
    rows = {c: (1 - prior) * hist[c] / hist[c].sum() + prior * sp
            for c in (1, 2, 3)}
    sil = m.optional_silence
    for (sym, _), col in m.emit_index_.items():
        if sym == sil:
            continue
        base = sym.rstrip("012")
        c = 1 if base in VOWEL_LIKE else 2 if base in FRICATIVES else 3
        m.weights_[col] = rows[c]
    w = np.maximum(m.weights_, m.weight_floor / K)
    m.weights_ = (w / w.sum(1, keepdims=True)).astype(np.float32)




#: the single-utterance self-training policy below (several flat starts with phone
#: duration priors, MAP re-estimation, the edge retry, the boundary shift) on top of the
#: broad-class start; False: one broad-class durations start and plain EM. Devdata, all
#: 200 files self-trained one at a time: 32.9 ms mean word-boundary error without, 20.5 ms
#: with; pocketsphinx-testdata single mode 76.6 -> 85 % of word boundaries within 50 ms
#: of pocketsphinx
SINGLE_POLICY = True


def single_policy(unit):
    """Whether one utterance self-trained with ``unit`` gets SINGLE_POLICY: phones, with
    the broad-class start on (BROAD_PRIOR None switches both off)."""
    return bool(SINGLE_POLICY) and BROAD_PRIOR is not None and unit == "phones"



#: flat starts of a model self-trained on one utterance, (duration-prior strength,
#: broad-class prior) each: EM runs from every one and the highest final likelihood wins.
#: The strength blends each phone's typical duration (REL_DUR) with an equal share of the
#: speech frames (0: equal, the durations start). Devdata, the 40-file subset (every 5th
#: file, all voices): one start (0, 0.6) 31.7 ms mean word-boundary error; (0.5, 0.6)
#: 23.7; (0.75, 0.6) 21.9; (1, 0.6) 26.8 (one file lost 1.5 s of words); with
#: TRANS_PRIOR and SILENCE_PRIOR: (0.75, 0.6) 20.3, (0.5, 0.6) + (1, 0.6) 19.3, the four
#: of strength 0.5 / 1 x prior 0.6 / 0.3 18.9 (all 200 files: 20.71 ms with the boundary
#: shift; six starts, 0.75 added, 20.71). The equal-share start (0, 0.6) is kept among them:
#: on the built-in synthesizer (8 utterances x 5 seeds) every duration-prior start put
#: one utterance 480 ms off (pooled mean 31.6 ms, 23.1 without the policy); with it 22.5
#: ms, and devdata's 200 files 20.53 ms
SINGLE_STARTS = ((0.0, 0.6), (0.5, 0.6), (1.0, 0.6), (0.5, 0.3), (1.0, 0.3))
#: every boundary of a self-trained alignment (but the recording's ends) moved by this many
#: seconds: the model's boundaries come late. Devdata signed median word-boundary error
#: +3 (kal) to +15 ms (slt); pocketsphinx-testdata likewise. Devdata 200 files: 21.95 ->
#: 20.71 ms mean, 64.2 -> 66.8 % within 20 ms; pocketsphinx-testdata single mode 79.9 ->
#: 85.3 % of word boundaries within 50 ms of pocketsphinx (83.7 % at -10 ms). 0: none
SINGLE_SHIFT_S = -0.005


#: typical phone durations relative to the mean phone (devdata's Festival voices, 6300
#: phones; close to TIMIT's): diphthongs and tense vowels long, DH / D / schwa short
REL_DUR = {
    "AA": 1.27, "AE": 1.55, "AH": 0.66, "AO": 1.61, "AW": 2.07, "AY": 1.81, "B": 1.01,
    "CH": 1.68, "D": 0.60, "DH": 0.40, "EH": 1.26, "ER": 1.12, "EY": 1.78, "F": 1.29,
    "G": 0.88, "HH": 0.86, "IH": 0.79, "IY": 1.27, "JH": 1.17, "K": 1.20, "L": 0.86,
    "M": 0.87, "N": 0.75, "NG": 0.94, "OW": 1.68, "OY": 2.2, "P": 1.20, "R": 0.70,
    "S": 1.33, "SH": 1.53, "T": 0.93, "TH": 1.46, "UH": 0.84, "UW": 1.42, "V": 0.64,
    "W": 0.69, "Y": 0.75, "Z": 1.17, "ZH": 1.0}
#: unstressed vowels (CMUdict stress 0) are this much shorter
UNSTRESSED = 0.8


def single_shift(unit) -> float:
    """Seconds a self-trained alignment's inner boundaries are moved: SINGLE_SHIFT_S
    under :func:`single_policy`, else 0."""
    return float(SINGLE_SHIFT_S or 0.0) if single_policy(unit) else 0.0


def rel_duration(sym):
    """Typical duration of phone ``sym`` (ARPAbet, stress digit allowed) relative to the
    mean phone (REL_DUR, unstressed vowels UNSTRESSED shorter; 1 when unknown)."""
    base = sym.rstrip("012")
    r = REL_DUR.get(base, 1.0)
    if sym.endswith("0") and base in VOWEL_LIKE:
        r *= UNSTRESSED
    return r


def duration_start(m, words, n_frames, quiet_share, strength=1.0):
    """Self loops of a flat start from typical phone durations (SINGLE_STARTS): each
    phone's states last r_p * d frames, d such that the utterance's phones fill its
    non-silent frames; ``strength`` in [0, 1] blends r_p with 1 (equal shares).

    Parameters
    ----------
    m : vqalign.hmm.TiedMixtureHMM
        Its ``self_loop_`` are set.
    words : list
        ``words[0]``: the utterance's words' units.
    n_frames : int
    quiet_share : float
        Share of the frames taken as silence.
    strength : float
    """
    syms = [s for w in words[0] for s in w]
    if not syms:
        return
    r = {s: (1 - strength) + strength * rel_duration(s) for s in set(syms)}
    spu = m.states_per_symbol if isinstance(m.states_per_symbol, int) else 1
    tot = sum(r[s] for s in syms) * spu
    d = (1.0 - quiet_share) * n_frames / max(tot, 1e-9)
    sil = m.optional_silence
    for (sym, _), col in m.emit_index_.items():
        if sym == sil or sym not in r:
            continue
        m.self_loop_[col] = 1.0 - 1.0 / max(r[sym] * d, 1.05)



#: MAP re-estimation of a model self-trained on one utterance: every M-step adds the flat
#: start's weights (WEIGHT_PRIOR frames' worth per column) to the E-step's Gaussian counts
#: and its self loops (TRANS_PRIOR frames' worth) to the transition counts (0: plain EM).
#: Devdata 40-file subset, start (0.75, 0.6): 21.9 ms mean word-boundary error plain, 20.9
#: with TRANS_PRIOR 10 (21.0 at 30), 21.5 with WEIGHT_PRIOR 3 on top (25.8 at 10, start
#: (0.5, 0.6)): the phone weights are left free
WEIGHT_PRIOR = 0.0
TRANS_PRIOR = 10.0
#: the same for the silence column's weights: silence keeps the look of the quiet frames it
#: was seeded from instead of soaking up stretches of speech (subset: 20.9 -> 20.6 ms at
#: 30, 20.3 at 100, 20.35 at 200)
SILENCE_PRIOR = 100.0


def map_prior(m, tau_w, tau_t, tau_sil=0.0):
    """Make ``m``'s M-steps MAP estimates around its current (flat-start) weights and self
    loops: Dirichlet-style pseudo-counts ``tau_w`` (weights; ``tau_sil`` for the silence
    column) and ``tau_t`` (self loops) per emission column are added to each E-step's
    statistics.

    Parameters
    ----------
    m : vqalign.hmm.TiedMixtureHMM
        Its ``mstep`` is wrapped.
    tau_w, tau_t, tau_sil : float
        Pseudo-counts (frames).
    """
    tau = np.full((m.weights_.shape[0], 1), float(tau_w))
    tau[m._silence_columns()] = float(tau_sil)
    w0 = m.weights_.astype(np.float64) * tau
    p0 = np.clip(m.self_loop_.astype(np.float64), 0.0, 0.999)
    t0 = np.zeros((p0.size, 3))
    t0[:, 0] = float(tau_t) * p0
    t0[:, 1] = float(tau_t) * (1.0 - p0)
    plain = m.mstep

    def mstep(stats, *, gaussians=False):
        s = copy.copy(stats)
        if tau_w or tau_sil:
            s.counts = stats.counts + w0
        if tau_t:
            s.trans = stats.trans + t0
        return plain(s, gaussians=gaussians)

    m.mstep = mstep



# --------------------------------------------------------------------------- the model
def dither(value, *, trained: bool, model_dither=None) -> float:
    """The dither RMS of the front end: ``value`` when given (checked), else the trained
    model's (``model_dither``, DITHER when none) or SELF_DITHER when self-training
    (:data:`vqalign.features.frontend.DITHER` says what was measured)."""
    if value is not None:
        if isinstance(value, bool) or not (isinstance(value, (int, float))
                                           and 0 <= value < 0.1):
            raise ParameterError(f"dither={value!r}; use a noise RMS in [0, 0.1), "
                                 f"e.g. {DITHER} (0: none)")
        return float(value)
    if trained:
        return float(DITHER if model_dither is None else model_dither)
    return SELF_DITHER


def default_hop(unit: str, trained: bool) -> float:
    """The frame hop (s) when ``hop_length`` is None: ``CORPUS_HOP_S`` for a trained model
    of phones, else ``SINGLE_HOP_S``."""
    return CORPUS_HOP_S if unit == "phones" and trained else SINGLE_HOP_S


def corpus_codes(n_codes: int, n_frames: int) -> int:
    """Gaussians of a model trained on a corpus of ``n_frames`` training frames:
    ``n_codes``, or one per CORPUS_FRAMES_PER_CODE frames when that is fewer (at least
    MIN_CORPUS_CODES)."""
    return int(min(n_codes, max(MIN_CORPUS_CODES, n_frames // CORPUS_FRAMES_PER_CODE)))


def codebook_size(k: int, n_frames: int) -> int:
    """The codebook size trained for ``k`` codes on ``n_frames`` frames (at least four
    frames per code, at least 2 codes)."""
    return min(k, max(2, n_frames // 4))


def draw_seed(rng) -> int:
    """The LBG seed a codebook draws from ``rng`` (a numpy Generator)."""
    return int(rng.integers(2**31 - 1))


def codebook(X, k: int, rng, *, cache=None):
    """The recipe's codebook of ``X`` (N, D) for ``k`` codes (:func:`codebook_size`), its
    LBG seed drawn from ``rng``.

    ``cache``: a dict in which the last codebook of at most CODEBOOK_CACHE_FRAMES frames
    is kept, keyed by the frames' digest, k and the seed (one utterance's models, the
    flat starts and the Sphinx-seeded one, share their codebook).

    Returns
    -------
    ndarray, shape (k', D), float32
    """
    k = codebook_size(k, X.shape[0])
    seed = draw_seed(rng)
    key = None
    if cache is not None and X.shape[0] <= CODEBOOK_CACHE_FRAMES:
        key = (hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=16).digest(),
               X.shape, k, seed)
        hit = cache.get("last")
        if hit is not None and hit[0] == key:
            return hit[1].copy()
    cb = lbg_codebook(X, k, seed)
    if key is not None:
        cache["last"] = (key, cb.copy())
    return cb


def lbg_codebook(X, k: int, seed: int):
    """The recipe's codebook of ``X`` (N, D): LBG doubling from the mean, refined per
    level, then one Lloyd pass over every frame (the settings the aligner was tuned with).

    Returns
    -------
    ndarray, shape (k, D), float32
    """
    from vqalign.lbg import lbg  # noqa: PLC0415
    return lbg(X, k, seed=seed, n_iter=6, final_passes=1, growth=2.0, last_iter=None)


def gaussians(codebook, X, top_n: int):
    """The shared diagonal Gaussians of a codebook (``GMM_VAR_FLOOR``, ``GMM_SHRINKAGE``,
    variances on ``GMM_FRAMES`` evenly spaced frames of ``X``).

    Parameters
    ----------
    codebook : ndarray, shape (K, D)
    X : ndarray, shape (N, D)
        Training frames.
    top_n : int
        Gaussians evaluated per frame (at most K).

    Returns
    -------
    vqalign.hmm.DiagGMM
    """
    from vqalign.hmm import DiagGMM  # noqa: PLC0415
    return DiagGMM.from_codebook(codebook, X, var_floor=GMM_VAR_FLOOR, shrinkage=GMM_SHRINKAGE,
                                 max_frames=GMM_FRAMES, top_n=min(top_n, codebook.shape[0]))


def make_hmm(gmm, *, corpus, seeded, states_per_unit, silence, top_n, n_iter, tol,
             weight_floor, update_gaussians, hop_s):
    """The engine's model (:class:`vqalign.hmm.TiedMixtureHMM`) with the recipe's settings.

    Parameters
    ----------
    gmm : vqalign.hmm.DiagGMM or None
    corpus : bool
        A corpus model (Gaussians re-estimated every ``update_gaussians`` steps) or one
        self-trained on one utterance.
    seeded : bool
        One utterance on a pretrained codebook: ``SEEDED_UPDATE``.
    states_per_unit, silence, top_n, n_iter, tol, weight_floor, update_gaussians, hop_s
        The :class:`vqalign.align.Aligner` parameters of the same names (``hop_s``: its
        frame hop).

    Returns
    -------
    vqalign.hmm.TiedMixtureHMM
    """
    from vqalign.hmm import TiedMixtureHMM  # noqa: PLC0415
    update = "wt" + ("mv" if corpus and update_gaussians else "")
    if not corpus and seeded:
        update = SEEDED_UPDATE  # the seed's recipe with a pretrained codebook
    return TiedMixtureHMM(
        gmm=gmm, states_per_symbol=states_per_unit,
        optional_silence=SIL if silence else None, top_n=top_n,
        n_iter=n_iter, tol=tol, min_iter=4, update=update,
        gaussians_every=max(1, update_gaussians), weight_floor=weight_floor,
        min_self_loop=0.05, max_self_loop=0.98, init_params="", p_silence=0.3,
        p_edge_silence=0.8, beam=1e-12, viterbi_beam=VITERBI_BEAM, min_post=1e-4,
        n_chunks=16, hop_s=hop_s)


# --------------------------------------------------------------------------- the schedule
def corpus_starts(seconds: float, unit: str) -> list:
    """The flat starts a corpus of ``seconds`` of training audio runs, in order:
    ``"durations"`` (self loops from the frames each state would get), ``"broad"`` (the
    same, each phone's weights from the frames of its broad class) and ``"short"`` (self
    loops ``SHORT_SELF_LOOP``). Under MULTI_START_S seconds: durations and broad-class
    (phones) or durations and short (chars); longer: short only.

    Returns
    -------
    list of str
    """
    if seconds >= MULTI_START_S:
        return ["short"]
    if BROAD_PRIOR is not None and unit == "phones":
        # a small corpus of phones: the plain and the broad-class durations start.
        # No short start: with corpus_codes Gaussians it won synthetic 12-utterance
        # corpora 1, 4 and 6 (of seeds 0-7) by likelihood, with utterances 331 and
        # 111 ms off on 1 and 4; without it, seeds 0-9: 9.4 ms mean, worst 29 ms
        return ["durations", "broad"]
    return ["durations", "short"]


def start_score(log_likelihood: float, model, X, offs, energy, words):
    """What a small corpus's starts are compared by: the final log-likelihood per frame
    less LOUD_SILENCE_COST times :func:`loud_in_silence` of ``model``.

    Returns
    -------
    score : float
    loud : float
        The :func:`loud_in_silence` share.
    """
    loud = loud_in_silence(model, X, offs, energy, words)
    return log_likelihood - LOUD_SILENCE_COST * loud, loud


def train(utts, X, energy, offs, base, *, unit, hop_s, corpus, quantile=QUIET_QUANTILE,
          n_iter=None, open_end=False, diagonal=0.0, on_step=None, seed=None, fit=None):
    """Flat start(s) and EM on prepared utterances: the model kept.

    The schedule (the policy the aligner was tuned with):

    - silence weights from each utterance's quietest ``quantile`` of frames, symbol
      weights from the others;
    - a corpus runs :func:`corpus_starts` and keeps the start with the highest
      :func:`start_score`;
    - a single utterance runs the durations start (broad-class for phones), or under
      :func:`single_policy` one start per SINGLE_STARTS entry (phone-duration self
      loops, the broad-class weights) kept by final likelihood, MAP re-estimation
      around it (:func:`map_prior`);
    - ``seed`` (one utterance): instead, one start from elsewhere, MAP re-estimation
      around it;
    - Gaussians re-estimated every ``update_gaussians`` steps in corpus mode
      (:func:`make_hmm`).

    Parameters
    ----------
    utts : list of vqalign.align.utterance.Utterance
    X : ndarray, shape (N, 39), float32
        Their frames end to end (:func:`vqalign.align.utterance.frames`).
    energy : ndarray, shape (N,)
        Raw c0 of the frames.
    offs : ndarray, shape (U + 1,), int64
        Frame offsets of the utterances.
    base : vqalign.hmm.TiedMixtureHMM
        The untrained model (:func:`make_hmm` on :func:`gaussians`).
    unit : {"phones", "chars"}
    hop_s : float
        Frame hop (s).
    corpus : bool
        A corpus model, or one self-trained on the audio it aligns.
    quantile : float
        Share of each utterance's frames that starts as silence.
    n_iter : int, optional
        EM steps (default: the model's).
    open_end : bool
    diagonal : float
        Corridor of the flat start around the diagonal (a long recording).
    on_step : callable, optional
        ``on_step(step, model, selection)`` after each EM step.
    seed : (str, callable), optional
        A start from elsewhere: its name (in the history) and ``fn(model, selection)``
        that sets the model's weights and self loops.
    fit : callable, optional
        ``fit(model, data, names, selection, on_step)``: runs the EM of the started model
        in place of ``model.fit`` (a long recording's resumable EM,
        :mod:`vqalign.align.windows`).

    Returns
    -------
    vqalign.hmm.TiedMixtureHMM
        The model kept (``history_``, ``_last_selection`` set by its fit).
    """
    words = [p.tokens.units for p in utts]
    if n_iter is not None:
        base.n_iter = n_iter
    base.open_end_ = open_end
    base.diagonal = diagonal
    base.gmm_ = base.gmm
    sel = base.select(X, candidates="m" in base.update)
    # the edge silence is for one utterance, the broad-class start for one utterance
    # or a small corpus (a long recording self-trained whole keeps the plain start:
    # devdata voices, 1.7 min, 28.0 ms mean word error plain, 33.1 ms with them)
    single = not corpus and sum(p.duration for p in utts) <= LONG_AUDIO_S
    quiet = quiet_masks(energy, offs, quantile)
    if EDGE_QUIET and single:
        for u, q in enumerate(quiet):
            if utts[u].y16 is not None:
                q |= edge_silence(utts[u].y16, q.size, hop_s)
    seconds = float(sum(p.duration for p in utts))
    data = [(p.X, w) for p, w in zip(utts, words)]
    names = [p.name or str(u) for u, p in enumerate(utts)]
    syms = sorted({s for w in words for ww in w for s in ww})
    broad = BROAD_PRIOR is not None and unit == "phones"
    if corpus:
        runs = [(SHORT_SELF_LOOP if s == "short" else None, s == "broad")
                for s in corpus_starts(seconds, unit)]
    else:
        runs = [(None, broad if single else False)]
    # one utterance: a flat start per duration-prior strength, the likeliest kept
    one = single and single_policy(unit)
    durs = list(SINGLE_STARTS) if one else [(None, BROAD_PRIOR)]
    runs = [(s, b, d if s is None else (None, BROAD_PRIOR)) for s, b in runs for d in durs]
    if seed is not None:  # one start from elsewhere only (a corpus's: no broad-class
        # start under it, as the streamed corpus, vqalign.pipeline.em, starts it)
        runs = [(None, not corpus, (None, BROAD_PRIOR))]
    best = None
    for start, broad_start, (dur, prior) in runs:
        m = copy.deepcopy(base) if len(runs) > 1 else base
        m.init_self_loop = start
        m.initialize(data, quiet=quiet, symbols=syms, selection=sel, quiet_fraction=QUIET_QUANTILE)
        if broad_start:
            broad_class_start(m, X, offs, quiet, sel, prior)
        if dur:
            duration_start(m, words, X.shape[0], QUIET_QUANTILE, dur)
        if seed is not None:
            seed[1](m, sel)
        if one and (WEIGHT_PRIOR or TRANS_PRIOR or SILENCE_PRIOR):
            map_prior(m, WEIGHT_PRIOR, TRANS_PRIOR, SILENCE_PRIOR)
        if fit is None:
            m.fit(data, names=names, selection=sel, on_step=on_step)
        else:
            fit(m, data, names, sel, on_step)
        h = m.history_
        h.name = (f"tied-mixture EM{'' if corpus else ' (one utterance)'}, "
                  f"{'durations' if start is None else 'short'}"
                  f"{' broad-class' if broad_start else ''} flat start"
                  f"{', ' + seed[0] if seed is not None else ''}")
        ll = h["log_likelihood"][-1] if len(h["log_likelihood"]) else -np.inf
        if corpus and len(runs) > 1 and np.isfinite(ll):
            ll = start_score(ll, m, X, offs, energy, words)[0]
        if best is None or ll > best[0]:
            best = (ll, m)
    return best[1]
