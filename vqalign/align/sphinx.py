"""Forced alignment with a CMU Sphinx acoustic model (``en-us`` from the pocketsphinx wheel).

Policy only; the numbers come from the public pieces:
:func:`vqalign.features.sphinx.sphinx_features` (the model's front end),
:class:`vqalign.hmm.ptm.PTMEmissions` (per-stream top-N Gaussians with senone weights) and
:func:`vqalign.hmm.viterbi` (the banded Viterbi).

The graph of an utterance, like pocketsphinx's alignment:

* ``<s>`` and ``</s>``: the silence phone at both ends (3 states each);
* each word's pronunciation (the model's dictionary; out-of-vocabulary words through
  :func:`vqalign.align.lexicon.letter_to_sound`) as triphones with the word position
  the mdef defines (begin / internal / end / single) and cross-word context: the first
  phone's left context is the previous word's last phone, the last phone's right context
  the next word's first phone (fillers count as ``SIL``);
* before, between and after the words an optional filler. The band of the Viterbi
  allows skipping one state, so the first pass gives each optional filler one state
  scoring the best silence senone; the second pass puts the filler phone (``SIL``, or a
  noise filler of the noise dictionary when it beats silence by the insertion penalties
  of pocketsphinx, ``silprob`` and ``fillprob`` times the language weight) in every gap
  the first pass found of at least 3 frames, recomputes the neighbours' contexts and
  aligns again;
* with ``refine=True``, then, in place on the frames around them (a small chain decoded by the same
  Viterbi): every filler is kept only if its 3-state model with the contexts it implies
  beats joining the words directly by more than its insertion penalty, a filler is tried
  where the two phones meeting at a word boundary last 15 frames or more, and each word
  with alternate pronunciations (``word(2)`` in the dictionary, as pocketsphinx's
  alignment allows) takes the one that scores best between its neighbours; the
  utterance is aligned again when anything changed.

Gaussians are evaluated only on the frames where the alignment can reach a phone of
their codebook (after the fewest frames the phones before it need, before the fewest the
phones after it need): exact, not a beam.

Adaptation (:meth:`SphinxAligner.adapt`): MAP EM from the Sphinx model on the user's
corpus, senone mixture weights (and optionally the Gaussian means) under a prior of
weight ``tau`` frames centred on the Sphinx model; :meth:`SphinxAligner.save` writes the
result as a Sphinx model folder (s3 ``means`` / ``mixture_weights`` plus ``vqalign.json``
with the feature settings, checked against ``feat.params`` when it is loaded):
``vqalign align AUDIO TEXT --model sphinx:DIR``, or
``vqalign align-corpus DIR --model sphinx:en-us --adapt [means]``.

Word confidence is the mean over the word's frames of ``exp(score of the path's senone -
best score of any senone of the utterance)``: 1 when every frame's own senone is the best
one available, lower when other phones fit the audio better.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqalign._threads import one_blas_thread
from vqalign.align.sphinx_adapt import HOP_S, SphinxAdaptation
from vqalign.exceptions import AlignmentError, ParameterError
from vqalign.features.frontend import FEATURE_SR

__all__ = ["SphinxAligner", "load_sphinx_model"]

SILPROB = 0.005
FILLPROB = 1e-8
LW = 6.5
#: ``align(..., pause_bias=True)``: every filler senone's log-likelihood in a frame is
#: raised by up to PAUSE_BIAS where the frame's local SNR (:func:`vqalign.features.snr.
#: local_snr_db`) is 0 dB (the frame is at the noise's level), by 0 at PAUSE_BIAS_SNR_DB,
#: and lowered by up to PAUSE_BIAS from twice that on: the Sphinx model's silence was
#: trained on clean pauses and takes a pause filled with babble or white noise for speech.
#: Built-in synthesizer, 24 utterances, the Sphinx model alone, words mean (white noise
#: denoised first, as the aligner does), none -> 2 / 6 dB -> 4 / 8 dB: clean 13.1 -> 11.4 ->
#: 10.0 ms, white 10 dB 18.5 -> 14.3 -> 13.2, 0 dB 29.5 -> 23.7 -> 25.5, babble 10 dB 44.4 ->
#: 33.7 -> 23.2, 5 dB 63.0 -> 50.1 -> 47.2, 0 dB 151.7 -> 131.1 -> 127.8 (3 / 6, 3 / 8, 3 / 10
#: in between). 4 / 8 dB, the best there, made the 40 TIMIT dev files in white noise at
#: 0 dB worse (42.6 -> 49.8 ms); 2 / 6 dB improves every condition of both: TIMIT clean
#: 18.5 -> 18.3, white 10 dB 23.5 -> 23.2, 0 dB 42.6 -> 41.0, babble 10 dB 31.4 -> 30.9,
#: 0 dB 79.9 -> 76.8 (TIMIT measured only: it chose between the two synthetic bests)
PAUSE_BIAS = 2.0
PAUSE_BIAS_SNR_DB = 6.0


def load_sphinx_model(spec="en-us"):
    """Read a Sphinx model: ``"en-us"`` (in the pocketsphinx wheel) or a directory path."""
    from vqalign.io.sphinx import load_sphinx_model as _load

    return _load(spec)


@functools.lru_cache(maxsize=4)
def _dictionary(path: str):
    """The pronunciation dictionary, one per process, words looked up on demand."""
    from vqalign.io.sphinx import LazyDictionary

    return LazyDictionary(Path(path))


def _one_thread():
    """One utterance is one chain: the engine's batch Viterbi gains nothing from its
    parallel loop there, and launching it costs more than the decode (measured: 0.6 ms
    with one thread vs 14 ms with two on a loaded 2-core machine)."""
    from vqalign.hmm.threads import threads

    return threads(1)


class _Columns:
    """Emission columns of the senones an utterance uses, added as they are needed."""

    def __init__(self, em, top, bias=None):
        self.em, self.top = em, top
        self.bias = bias             # (frame bias (T,), filler senones) or None
        self.col_of: dict = {}
        self.lut = np.full(em.log_mixw.shape[2], -1, dtype=np.int64)
        self.le = np.empty((top["idx"].shape[1], 0), dtype=np.float32)

    def ensure(self, senones):
        u = np.unique(np.asarray(senones, dtype=np.int64))
        new = u[self.lut[u] < 0]
        if new.size:
            n0 = self.le.shape[1]
            block = self.em.senone_log_emit(self.top, new)
            if self.bias is not None:
                b, fill = self.bias
                hit = np.isin(new, fill)
                if hit.any():
                    block[:, hit] += b[:, None]
            self.le = np.concatenate([self.le, block], axis=1)
            self.lut[new] = n0 + np.arange(new.size)
            for i, x in enumerate(new.tolist()):
                self.col_of[x] = n0 + i

    def of(self, senones):
        return [self.col_of[int(x)] for x in senones]


@dataclass
class _Phone:
    ci: int
    word: int            # index of the word, -1 for a filler
    wpos: int = 0
    filler: bool = False


class SphinxAligner(SphinxAdaptation):
    """Align transcripts to audio with a Sphinx acoustic model.

    Parameters
    ----------
    model_dir_or_name : str or path
        ``"en-us"`` (the model in the pocketsphinx wheel: ``pip install pocketsphinx``)
        or a Sphinx model directory (mdef, means, variances, sendump or mixture_weights,
        transition_matrices, feat.params, noisedict).
    dictionary : path, optional
        Pronunciation dictionary (Sphinx format); default the model's (``cmudict-en-us.dict``
        beside the en-us model).
    topn : int
        Gaussians per codebook and stream (pocketsphinx: 4).
    filler_loop : float
        Self-loop probability of the one-state optional filler of the first pass.
    refine : bool
        After the second pass, re-decide fillers and alternate pronunciations in place
        (see the module docstring) and align again if anything changed. Measured on the
        193 dev utterances pocketsphinx aligns: word boundaries within 20 ms of
        pocketsphinx's in >= 90 % of them for 169 files (166 without), mean error to the
        truth 16.1 ms (16.4 without), 22 % more time; off by default.
    """

    #: set by :meth:`adapt` on the aligner it returns (None on one made from a model)
    history_ = None
    failures_ = None
    adapt_params_ = None

    def __init__(self, model_dir_or_name="en-us", *, dictionary=None, topn: int = 4,
                 filler_loop: float = 0.9, refine: bool = False):
        self.model_dir_or_name = model_dir_or_name
        self.dictionary = dictionary
        self.topn = topn
        self.filler_loop = filler_loop
        self.refine = refine

    # ------------------------------------------------------------------ setup
    @functools.cached_property
    def model_(self):
        from vqalign.io.sphinx import SphinxModel

        if isinstance(self.model_dir_or_name, SphinxModel):
            return self.model_dir_or_name
        return load_sphinx_model(self.model_dir_or_name)

    @functools.cached_property
    def emissions_(self):
        from vqalign.hmm.ptm import PTMEmissions

        return PTMEmissions.from_sphinx(self.model_, topn=self.topn)

    @functools.cached_property
    def front_end_(self):
        from vqalign.features.sphinx import front_end_from_params

        m = self.model_
        return front_end_from_params(m.feat_params, source=str(m.path / "feat.params"))

    @functools.cached_property
    def lexicon_(self) -> dict:
        path = self.dictionary or self.model_.dictionary_path
        if path is None:
            raise ParameterError(f"the Sphinx model {self.model_.path} has no pronunciation "
                                 "dictionary beside it; pass dictionary=PATH")
        return _dictionary(str(path))

    @functools.cached_property
    def fillers_(self):
        return self._fillers()

    def _fillers(self, silprob=SILPROB):
        """[(word, ci phone, log insertion penalty)] from the noise dictionary; silence at
        ``silprob``."""
        m = self.model_
        out = []
        for w, prons in m.noisedict.items():
            if w in ("<s>", "</s>"):
                continue
            ph = prons[0]
            if len(ph) != 1:
                continue
            ci = m.mdef.ci_index[ph[0]]
            pen = LW * math.log(silprob if ph[0] == "SIL" else FILLPROB)
            if all(c != ci for _, c, _ in out):
                out.append((w, ci, pen))
        if not any(c == m.mdef.sil for _, c, _ in out) and m.mdef.sil >= 0:
            out.insert(0, ("<sil>", m.mdef.sil, LW * math.log(silprob)))
        return out

    def pronounce(self, word: str) -> list[str]:
        """The model's pronunciation of ``word`` (its phones), or letter-to-sound for an OOV."""
        return self.pronunciations(word)[0]

    def pronunciations(self, word: str) -> list[list[str]]:
        """Every pronunciation the dictionary gives ``word`` (``word(2)`` ... alternates), or
        the letter-to-sound one for an out-of-vocabulary word."""
        lex = self.lexicon_
        m = self.model_
        for key in (word, word.lower()):
            if key in lex:
                prons = [list(p) for p in lex[key] if all(ph in m.mdef.ci_index for ph in p)]
                if prons:
                    return prons
        from vqalign.align import lexicon as L

        g2p = L.letter_to_sound
        try:
            phones = [p.upper() for p in g2p(word)]
        except ParameterError as exc:
            raise ParameterError(f"the word {word!r} is not in the model's dictionary and "
                                 f"cannot be pronounced by letter-to-sound ({exc}); add it "
                                 "to a dictionary file (dictionary=PATH)") from None
        bad = [p for p in phones if p not in m.mdef.ci_index]
        if not phones or bad:
            raise ParameterError(f"the word {word!r} is not in the model's dictionary and its "
                                 f"letter-to-sound pronunciation uses phones {bad} the model "
                                 "does not have; add it to a dictionary file (dictionary=PATH)")
        return [phones]

    # ------------------------------------------------------------------ graph
    def _units(self, words, gaps, prons=None):
        """Phones of the utterance. ``gaps`` (None, or one entry per position: before the
        first word, between words, after the last) holds the filler CI phone to put there,
        or None."""
        units = []

        def filler(k):
            if gaps is not None and gaps[k] is not None:
                units.append(_Phone(gaps[k], -1, filler=True))

        for k, w in enumerate(words):
            filler(k)
            units.extend(self._word_units(k, prons[k] if prons else self.pronounce(w)))
        filler(len(words))
        return units

    def _word_units(self, k, phones):
        ph = [self.model_.mdef.ci_index[p] for p in phones]
        n = len(ph)
        return [_Phone(ci, k, 3 if n == 1 else (1 if j == 0 else (2 if j == n - 1 else 0)))
                for j, ci in enumerate(ph)]

    def _senones(self, units, lc0=None, rc_end=None):
        """(senones (n_units, n_emit) int32, transition matrices (n_units, n_emit, n_emit + 1)).

        ``lc0`` / ``rc_end``: CI phones left of the first and right of the last unit
        (default silence, the utterance's edges)."""
        m = self.model_
        md = m.mdef
        sil = md.sil
        ci = np.array([u.ci for u in units], dtype=np.int64)
        lc = np.concatenate(([sil if lc0 is None else lc0], ci[:-1]))
        rc = np.concatenate((ci[1:], [sil if rc_end is None else rc_end]))
        wpos = np.array([u.wpos for u in units], dtype=np.int64)
        fill = np.array([u.filler for u in units], dtype=bool)
        pid = md.phone_ids(ci, np.where(fill, -1, lc), rc, wpos)
        return md.senones[pid], m.tmat[md.tmat[pid]]

    def _topology(self, units, sen_tm, col_of, *, optional_col=None, pen=None):
        """Banded topology: 3 states per phone (the mdef's senones and transition matrix);
        with ``optional_col`` a one-state optional filler reading that emission column
        before the first word, between words and after the last (log penalty ``pen``)."""
        from vqalign.hmm.topology import Topology

        m = self.model_
        sen, tm = sen_tm
        n_u, E = sen.shape
        q = math.exp(self.fillers_[0][2] if pen is None else pen)
        q = min(q / (1.0 + q), 0.5)
        loop = float(self.filler_loop)
        if isinstance(col_of, np.ndarray):
            lut = col_of
        else:
            lut = np.full(m.mdef.n_sen, -1, dtype=np.int64)
            lut[np.fromiter(col_of.keys(), np.int64)] = np.fromiter(col_of.values(), np.int64)
        j = np.arange(E)
        p = np.zeros((n_u, E, 3))
        p[:, :, 0] = tm[:, j, j]
        p[:, :, 1] = tm[:, j, j + 1]
        p[:, :E - 1, 2] = tm[:, j[:E - 1], j[:E - 1] + 2]
        emit = lut[sen]
        opt = optional_col is not None
        # optional filler after unit i: word boundaries (and the end); one before the start
        after = np.zeros(n_u, dtype=bool)
        if opt:
            word = np.array([u.word for u in units])
            fill = np.array([u.filler for u in units])
            after[:-1] = ~fill[:-1] & ~fill[1:] & (word[1:] != word[:-1])
            after[-1] = True
            exit_p = p[:, E - 1, 1].copy()
            exit_p[-1] = 1.0 - p[-1, E - 1, 0]
            p[after, E - 1, 1] = exit_p[after] * q
            p[after, E - 1, 2] = exit_p[after] * (1.0 - q)
        n_opt = int(after.sum()) + (1 if opt else 0)
        S = n_u * E + n_opt
        # state index of each phone state: phone states shift by the fillers before them
        shift = np.concatenate(([1 if opt else 0], 1 + np.cumsum(after[:-1]) if opt else
                                np.zeros(n_u - 1, np.int64)))
        pos = (np.arange(n_u)[:, None] * E + j[None, :] + shift[:, None]).ravel()
        trans = np.zeros((S, 3))
        trans[pos] = p.reshape(-1, 3)
        emit_ids = np.empty(S, dtype=np.int64)
        emit_ids[pos] = emit.ravel()
        unit_index = np.full(S, -1, dtype=np.int64)
        unit_index[pos] = np.repeat(np.arange(n_u), E)
        skippable = np.ones(S, dtype=bool)
        skippable[pos] = False
        if opt:
            opt_pos = np.flatnonzero(skippable)
            trans[opt_pos] = [loop, 1.0 - loop, 0.0]
            emit_ids[opt_pos] = optional_col
        names = [m.mdef.ciphones[u.ci] for u in units]
        labels = ["<filler>.0"] * S
        for k, i in enumerate(pos):
            labels[i] = f"{names[k // E]}.{k % E}"
        with np.errstate(divide="ignore"):
            lt = np.log(trans)
            log_start = np.full(S, -np.inf)
            log_end = np.full(S, -np.inf)
            if opt:
                log_start[0], log_start[1] = math.log(q), math.log1p(-q)
                # last phone state: its "skip" share ends the utterance directly
                log_end[-2] = lt[-2, 2]
                log_end[-1] = math.log(1.0 - loop)
            else:
                log_start[0] = 0.0
                log_end[-1] = math.log(max(1.0 - trans[-1, 0], 1e-12))
        lt[-1, 1:] = -np.inf
        if S > 1:
            lt[-2, 2] = -np.inf
        return Topology(labels=labels, symbols=names,
                        unit_index=unit_index.astype(np.int32),
                        emit_ids=emit_ids.astype(np.int32), log_trans=lt,
                        log_start=log_start, log_end=log_end, skippable=skippable)

    @staticmethod
    def _min_frames(tm) -> int:
        """Fewest frames a path through one phone's HMM (transition matrix ``tm``) takes."""
        E = tm.shape[0]
        best = [math.inf] * (E + 1)
        best[0] = 0
        for j in range(E):                      # left-to-right: relax forward
            for k in range(j + 1, E + 1):
                if tm[j, k] > 0:
                    best[k] = min(best[k], best[j] + 1)
        return int(best[E])

    def _windows(self, units, sen_tm, T, filler_cbs, fewer_phones: int = 0):
        """Codebooks the utterance needs and, for each, the frames where a path can be in
        one of its phones: after the fewest frames the phones before it take, before the
        fewest the phones after it need (exact, not a beam). Filler codebooks: all frames."""
        em = self.emissions_
        sen, tm = sen_tm
        need = np.array([self._min_frames(t) for t in tm], dtype=np.int64)
        before = np.concatenate(([0], np.cumsum(need)[:-1]))
        after = need.sum() - np.cumsum(need)
        slack = int(need.max()) * fewer_phones     # phones an alternate may drop
        lo_u, hi_u = np.maximum(before - slack, 0), np.minimum(T - after + slack, T)
        win = {}
        for i in range(len(units)):
            for c in np.unique(em.sen2cb[sen[i]]):
                a, b = win.get(int(c), (T, 0))
                win[int(c)] = (min(a, int(lo_u[i])), max(b, int(hi_u[i])))
        for c in np.unique(filler_cbs):
            win[int(c)] = (0, T)
        cbs = np.array(sorted(win), dtype=np.int64)
        return cbs, np.array([win[int(c)] for c in cbs], dtype=np.int64)

    # ------------------------------------------------------------------ align
    def features(self, y, sr):
        from vqalign.features.frontend import fill_digital_silence
        from vqalign.features.sphinx import sphinx_features
        return sphinx_features(fill_digital_silence(y, sr), sr, params=self.front_end_)

    def align(self, y, text, *, sr=FEATURE_SR, audio_name=None, pause_bias=False,
              pause_silprob=None):
        """Align ``text`` to the waveform ``y`` (float, mono, at the model's rate).

        ``pause_bias``: fillers are favoured where the audio is at its noise's level and
        disfavoured where it stands out (:data:`PAUSE_BIAS`; the single-file median's
        opinion, :mod:`vqalign.align.second_opinion`).
        ``pause_silprob``: silence inserted at this probability instead of SILPROB, between
        two words only where quiet (:data:`vqalign.align.second_opinion.SHORT_PAUSE_SILPROB`).

        Returns a :class:`vqalign.align.alignment.Alignment` with tiers ``words`` and
        ``phones`` (fillers and silences are gaps) and per-word confidences.

        Runs on one thread: BLAS is held to one thread for the whole call (its products
        here are small; measured on the 10 pocketsphinx-testdata recordings, OpenBLAS's
        idle threads otherwise burnt 0.2 s of CPU beside 0.3 s of work) and the Viterbi
        runs with one numba thread.
        """
        with one_blas_thread():
            return self._align(y, text, sr=sr, audio_name=audio_name, pause_bias=pause_bias,
                               pause_silprob=pause_silprob)

    def _pause_bias(self, y, T):
        """(T,) float32: the fillers' log-likelihood bias per frame (:data:`PAUSE_BIAS`)."""
        from vqalign.features.snr import local_snr_db

        fe = self.front_end_
        loc = local_snr_db(y, np.arange(T) * fe.frame_shift + fe.frame_size / 2.0)
        x = np.clip((PAUSE_BIAS_SNR_DB - loc) / PAUSE_BIAS_SNR_DB, -1.0, 1.0)
        return (PAUSE_BIAS * x).astype(np.float32)

    def _align(self, y, text, *, sr, audio_name, keep=None, pause_bias=False,
               pause_silprob=None):
        from vqalign.align.alignment import Alignment, Segment
        from vqalign.align.text import normalize_words

        if isinstance(y, (str, Path)):
            from vqalign.io.audio import load_audio

            audio_name = audio_name or str(y)
            y, sr = load_audio(y, sr=int(self.front_end_.samprate))
        if not isinstance(text, str):
            raise ParameterError(f"text must be a str, got {type(text).__name__}")
        words = normalize_words(text)
        if not words:
            raise ParameterError("the transcript holds no words to align")
        X = self.features(y, sr)
        T = X.shape[0]
        m = self.model_
        fillers = self.fillers_ if pause_silprob is None else self._fillers(pause_silprob)
        filler_cis = [c for _, c, _ in fillers]

        # pass 1: cross-word contexts, one-state optional filler between words
        alts = [self.pronunciations(w) for w in words]
        prons = [a[0] for a in alts]
        units = self._units(words, None, prons)
        sen_tm = self._senones(units)
        filler_sen = np.concatenate([m.mdef.senones[c] for c in filler_cis])
        n_min = 3 * len(units)
        if T < n_min:
            raise AlignmentError(
                f"the transcript needs at least {n_min} frames ({len(units)} phones with "
                f"3 states each, {n_min * HOP_S:.2f} s) but the audio has {T} frames "
                f"({T * HOP_S:.2f} s); shorten the transcript or check the audio")
        em = self.emissions_
        # alternate pronunciations are only tried by refine
        alt_ci = {m.mdef.ci_index[p] for a in alts for pr in a[1:] for p in pr} \
            if self.refine else set()
        full = np.concatenate([em.sen2cb[filler_sen]] +
                              [em.sen2cb[m.mdef.senones[c]] for c in sorted(alt_ci)])
        # a shorter alternate pronunciation moves the phones after (before) it earlier
        # (later): widen the windows by the frames the shortest ones would free
        short = sum(len(a[0]) - min(len(p) for p in a) for a in alts) if self.refine else 0
        cbs, windows = self._windows(units, sen_tm, T, full, fewer_phones=short)
        top = em.top_densities(X, cbs, frames=windows)
        bias = None
        if pause_bias:
            fill = np.unique(np.concatenate([m.mdef.senones[c] for _, c, _ in fillers]))
            bias = (self._pause_bias(np.asarray(y, np.float64), T), fill.astype(np.int64))
        cols = _Columns(em, top, bias)
        cols.ensure(np.concatenate([sen_tm[0].ravel(), filler_sen]))
        path1, topo1 = self._pass1(units, sen_tm, cols, pen=fillers[0][2])
        gaps = self._gaps(path1, topo1, len(words), cols.le, cols.col_of, fillers)
        if pause_silprob is not None:
            gaps = self._quiet_gaps(gaps, path1, topo1, y, sr)
        # pass 2: fillers where the first pass found pauses, contexts recomputed
        units2, topo2, path2, best = self._decode(words, gaps, prons, cols)
        # pauses: every filler kept or dropped, long boundaries tested for one, with the
        # filler's three states and the neighbours' contexts it implies, in place
        new_gaps = self._refine_gaps(gaps, units2, topo2, path2, cols, fillers) \
            if self.refine else gaps
        if new_gaps != gaps:
            gaps = new_gaps
            units2, topo2, path2, best = self._decode(words, gaps, prons, cols)
        # alternate pronunciations: each word's, scored in place between its neighbours
        if self.refine and any(len(a) > 1 for a in alts):
            new = self._choose_prons(words, alts, prons, units2, topo2, path2, cols)
            if new != prons:
                prons = new
                units2, topo2, path2, best = self._decode(words, gaps, prons, cols)
        le = cols.le

        # segments
        best_any = le.max(axis=1)
        good = np.exp(np.minimum(le[np.arange(T), topo2.emit_ids[path2]] - best_any, 0.0))
        ui = topo2.unit_index[path2]
        change = np.flatnonzero(np.diff(ui)) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [T]))
        n = len(y) if hasattr(y, "__len__") else T * 160
        duration = max(n / float(sr), T * HOP_S if T else 0.0)
        # a change of state between frames f - 1 and f lies between their centres
        off = self.front_end_.boundary_offset_s

        def at(f):
            return 0.0 if f <= 0 else duration if f >= T else min(f * HOP_S + off, duration)

        phones, wspan = [], {}
        for s, e in zip(starts, ends):
            u = units2[int(ui[s])]
            if u.filler:
                continue
            phones.append(Segment(at(s), at(e), m.mdef.ciphones[u.ci],
                                  float(good[s:e].mean())))
            a, b = wspan.get(u.word, (s, e))
            wspan[u.word] = (min(a, s), max(b, e))
        wsegs = []
        for k, w in enumerate(words):
            a, b = wspan[k]
            wsegs.append(Segment(at(a), at(b), w, float(good[a:b].mean())))
        inserted = [fillers[[c for _, c, _ in fillers].index(g)][0] if g is not None else None
                    for g in gaps]
        diag = {"model": str(m.path), "hop_s": HOP_S, "frame_loglik": best / T,
                "fillers": [x for x in inserted if x], "warnings": []}
        aln = Alignment(tiers={"words": wsegs, "phones": phones}, audio=audio_name,
                        sample_rate=int(sr), duration=duration, diagnostics=diag)
        from vqalign.align.alignment import add_quality_warnings
        from vqalign.align.refine import ENABLED, refine_pause_edges

        if ENABLED and keep is None:   # pause-adjacent boundaries where the sound is
            refine_pause_edges(aln, np.asarray(y, np.float32), int(sr))
        add_quality_warnings(aln)
        if keep is not None:           # what adaptation re-decodes: features and graph
            keep.update(X=X, units=units2, sr=sr)
        return aln

    # ------------------------------------------------------------------ passes
    def _pass1(self, units, sen_tm, cols, pen=None):
        """First pass: the words with a one-state optional filler (the best silence
        senone, log penalty ``pen``) before, between and after them: (path, topology)."""
        from vqalign.hmm import viterbi

        m = self.model_
        sil_cols = cols.of(m.mdef.senones[m.mdef.sil])
        topo = self._topology(units, sen_tm, cols.lut, optional_col=cols.le.shape[1], pen=pen)
        blob = cols.le[:, sil_cols].max(axis=1, keepdims=True)
        le1 = np.concatenate([cols.le, blob], axis=1)
        with _one_thread():
            path, _ = viterbi(le1, topo, hop_s=HOP_S)
        return path, topo

    def _decode(self, words, gaps, prons, cols):
        from vqalign.hmm import viterbi

        units = self._units(words, gaps, prons)
        sen_tm = self._senones(units)
        cols.ensure(sen_tm[0].ravel())
        topo = self._topology(units, sen_tm, cols.lut)
        with _one_thread():
            path, best = viterbi(cols.le, topo, hop_s=HOP_S)
        return units, topo, path, best

    def _chain_scores(self, jobs, cols) -> np.ndarray:
        """Scores of several ``(chain, lc0, rc_end, t0, t1)`` in one Viterbi call.

        The chains are laid end to end on their frames, each reading its own copy of its
        emission columns that is -inf outside its own frames, so the best path goes
        through each chain on exactly its frames and its part of the path is that chain's
        own best path; each part's score is read back from the path.
        """
        from vqalign.hmm import viterbi
        from vqalign.hmm.topology import Topology

        group = 8          # the joint matrix grows as (frames x states) of the group
        if len(jobs) > group:
            return np.concatenate([self._chain_scores(jobs[i:i + group], cols)
                                   for i in range(0, len(jobs), group)])
        out = np.full(len(jobs), -np.inf)
        parts = []
        for n, (chain, lc0, rc_end, t0, t1) in enumerate(jobs):
            if t1 - t0 >= 3 * len(chain):
                sen_tm = self._senones(chain, lc0, rc_end)
                parts.append((n, t0, t1, sen_tm))
        if not parts:
            return out
        cols.ensure(np.concatenate([p[3][0].ravel() for p in parts]))
        topos = [self._topology([_Phone(0, 0)] * p[3][0].shape[0], p[3], cols.lut)
                 for p in parts]
        S = sum(t.n_states for t in topos)
        L = sum(p[2] - p[1] for p in parts)
        le = np.full((L, S), -np.inf, dtype=np.float32)
        lt = np.full((S, 3), -np.inf)
        r = c = 0
        bounds = []
        for (_n, t0, t1, _), tp in zip(parts, topos):
            s_n = tp.n_states
            le[r:r + t1 - t0, c:c + s_n] = cols.le[t0:t1][:, tp.emit_ids]
            lt[c:c + s_n] = tp.log_trans
            # leave through the exit of the chain's last state into the next chain
            lt[c + s_n - 1, 1] = tp.log_end[-1]
            bounds.append((r, r + t1 - t0, c, c + s_n))
            r += t1 - t0
            c += s_n
        lt[-1, 1:] = -np.inf
        if S > 1:
            lt[-2, 2] = -np.inf
        log_start = np.full(S, -np.inf)
        log_start[0] = 0.0
        log_end = np.full(S, -np.inf)
        log_end[-1] = topos[-1].log_end[-1]
        topo = Topology(labels=[""] * S, symbols=[""], unit_index=np.zeros(S, np.int32),
                        emit_ids=np.arange(S, dtype=np.int32), log_trans=lt,
                        log_start=log_start, log_end=log_end, skippable=np.zeros(S, bool))
        try:
            with _one_thread():
                path, _ = viterbi(le, topo, hop_s=HOP_S, beam=-1e5)
        except AlignmentError:
            if len(parts) == 1:
                return out
            for n, (chain, lc0, rc_end, t0, t1) in enumerate(jobs):   # one by one
                out[n] = self._chain_scores([(chain, lc0, rc_end, t0, t1)], cols)[0]
            return out
        em = le[np.arange(L), path]
        step = np.diff(path)
        tr = lt[path[:-1], np.clip(step, 0, 2)]
        for (n, *_), (r0, r1, c0, c1) in zip(parts, bounds):
            sc = float(em[r0:r1].sum() + tr[r0:r1 - 1].sum())
            sc += lt[c1 - 1, 1] if r1 < L else log_end[-1]
            if path[r0] == c0 and path[r1 - 1] == c1 - 1 and np.isfinite(sc):
                out[n] = sc
        return out

    @staticmethod
    def _spans(units, topo, path):
        ui = topo.unit_index[path]
        T = path.size
        starts = np.full(len(units), T)
        ends = np.zeros(len(units), dtype=np.int64)
        idx = np.arange(T)
        ok = ui >= 0
        np.minimum.at(starts, ui[ok], idx[ok])
        np.maximum.at(ends, ui[ok], idx[ok] + 1)
        return starts, ends

    def _refine_gaps(self, gaps, units, topo, path, cols, fillers, *, min_test: int = 15,
                     reach: int = 2):
        """Keep a filler only where its 3-state model (with the neighbours' contexts it
        implies and its insertion penalty) beats going straight from one word to the next
        on the frames of the ``reach`` phones either side; also try one where the two phones
        meeting at a word boundary span at least ``min_test`` frames."""
        sil = self.model_.mdef.sil
        pen = {c: p for _, c, p in fillers}
        starts, ends = self._spans(units, topo, path)
        out = list(gaps)
        n = len(units)

        def around(i0, i1):
            """Phones left of unit i0 and right of unit i1 (up to ``reach``, no fillers)."""
            a = i0
            while a > 0 and i0 - a < reach and not units[a - 1].filler:
                a -= 1
            b = i1
            while b + 1 < n and b - i1 < reach and not units[b + 1].filler:
                b += 1
            lc0 = units[a - 1].ci if a > 0 else sil
            rc_end = units[b + 1].ci if b + 1 < n else sil
            return a, b, lc0, rc_end

        jobs, acts = [], []
        for i, u in enumerate(units):
            if u.filler:
                k = units[i + 1].word if i + 1 < n else len(gaps) - 1
                a, b, lc0, rc_end = around(i, i)
                left, right = units[a:i], units[i + 1:b + 1]
                if not (left or right):
                    continue
                t0, t1 = int(starts[a]), int(ends[b])
                jobs += [(left + [u] + right, lc0, rc_end, t0, t1),
                         (left + right, lc0, rc_end, t0, t1)]
                acts.append((k, None, pen.get(u.ci, pen[sil])))
            elif i > 0 and not units[i - 1].filler and units[i - 1].word != u.word:
                if int(ends[i]) - int(starts[i - 1]) < min_test:
                    continue
                a, b, lc0, rc_end = around(i - 1, i)
                left, right = units[a:i], units[i:b + 1]
                t0, t1 = int(starts[a]), int(ends[b])
                f = _Phone(sil, -1, filler=True)
                jobs += [(left + [f] + right, lc0, rc_end, t0, t1),
                         (left + right, lc0, rc_end, t0, t1)]
                acts.append((u.word, sil, pen[sil]))
        if not jobs:
            return out
        sc = self._chain_scores(jobs, cols).reshape(-1, 2)
        for (k, what, p), (with_f, without) in zip(acts, sc):
            if what is None and without > with_f + p:
                out[k] = None                     # drop the filler
            elif what is not None and with_f + p > without:
                out[k] = what                     # add one
        return out

    def _choose_prons(self, words, alts, prons, units, topo, path, cols):
        """For each word with alternates: the pronunciation whose phones, between the
        neighbouring phones of the current alignment, score best on the frames they span."""
        starts, ends = self._spans(units, topo, path)
        sil = self.model_.mdef.sil
        out = list(prons)
        jobs, who = [], []
        for k, a in enumerate(alts):
            if len(a) < 2:
                continue
            mine = [i for i, u in enumerate(units) if u.word == k]
            i0, i1 = mine[0], mine[-1]
            left = [units[i0 - 1]] if i0 > 0 else []
            right = [units[i1 + 1]] if i1 + 1 < len(units) else []
            j0 = i0 - len(left)
            j1 = i1 + len(right)
            lc0 = units[j0 - 1].ci if j0 > 0 else sil
            rc_end = units[j1 + 1].ci if j1 + 1 < len(units) else sil
            t0, t1 = int(starts[j0]), int(ends[j1])
            for j, pr in enumerate(a):
                jobs.append((left + self._word_units(k, pr) + right, lc0, rc_end, t0, t1))
                who.append((k, j))
        if not jobs:
            return out
        sc = self._chain_scores(jobs, cols)
        best: dict = {}
        for (k, j), v in zip(who, sc):
            if np.isfinite(v) and v > best.get(k, (-np.inf, 0))[0]:
                best[k] = (v, j)
        for k, (_, j) in best.items():
            out[k] = alts[k][j]
        return out

    def _quiet_gaps(self, gaps, path, topo, y, sr):
        """``gaps`` without the fillers between two words whose first-pass frames (``path``
        through ``topo``) are not quiet (:func:`vqalign.align.refine.quiet_spans`)."""
        from vqalign.align.refine import quiet_spans

        opt = np.flatnonzero(topo.skippable)     # the k-th optional state: position k
        inner = [k for k in range(1, len(gaps) - 1) if gaps[k] is not None]
        off = self.front_end_.boundary_offset_s
        spans = [(f[0] * HOP_S + off, (f[-1] + 1) * HOP_S + off)
                 for f in (np.flatnonzero(path == opt[k]) for k in inner)]
        quiet = quiet_spans(np.asarray(y, np.float64), int(sr), spans)
        return [None if k in inner and not quiet[inner.index(k)] else g
                for k, g in enumerate(gaps)]

    def _gaps(self, path, topo, n_words, le, col_of, fillers):
        """Filler CI phone per position (before the first word, between words, after the
        last) from the first pass: None where no pause of >= 3 frames was found."""
        m = self.model_
        gaps = [None] * (n_words + 1)
        opt = np.flatnonzero(topo.skippable)
        for k, s in enumerate(opt):              # the k-th optional state sits at position k
            frames = np.flatnonzero(path == s)
            if frames.size < m.mdef.n_emit_state:
                continue
            best_ci, best_score = None, -np.inf
            for _, ci, pen in fillers:
                cols = [col_of[int(x)] for x in m.mdef.senones[ci] if int(x) in col_of]
                if not cols:
                    continue
                sc = float(le[frames][:, cols].max(axis=1).sum()) + pen
                if sc > best_score:
                    best_ci, best_score = ci, sc
            gaps[k] = best_ci
        return gaps

    def __repr__(self):
        return f"SphinxAligner({self.model_dir_or_name!r})"
