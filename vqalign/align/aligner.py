"""Forced alignment with a tied-mixture (semi-continuous) HMM.

Audio plus transcript in, word and phone (or character) timings out::

    from vqalign.align import Aligner, align
    a = align(y, "the cat sat on the mat", sr=16000)          # one utterance, self-trained
    model = Aligner(unit="phones").fit(corpus)                 # corpus: (y, sr, text) tuples
    result = model.align(y, text, sr=16000)
    result.tiers["words"]                                      # [Segment(start, end, label)]

The recipe: 39-D MFCC + deltas with per-utterance CMVN; shared diagonal Gaussians
from a VQ codebook; per-state mixture weights over them; a linear-chain HMM per
utterance (``states_per_unit`` states per phone or character, an optional
one-state silence between words and at both ends, self-loop probabilities from
expected durations); EM with scaled forward-backward from a flat start (silence
from each utterance's quietest frames, every speech state from the rest); a final
Viterbi pass. A fitted model is shared by every utterance it aligns.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign._validation import (
    check_audio,
    check_positive_int,
    check_random_state,
    check_sample_rate,
)
from vqalign.align import _model as M
from vqalign.exceptions import AlignmentError, ParameterError, VQAlignError
from vqalign.history import History

MODEL_VERSION = 1
UNITS = ("phones", "chars")
# beyond this many seconds an utterance is aligned in overlapping windows
LONG_AUDIO_S = 90.0
# A model self-trained on one utterance (unfitted Aligner, phones, hop_length=None)
# works at a 10 ms hop and seeds its silence from the quietest 5 % of the frames (a
# corpus: 5 ms and 15 %). Measured on 8 synth utterances x 10 seeds (docs/accuracy.md):
# 73 -> 39 ms mean word-boundary error. With one utterance the silence column has no
# other data: a broader seed takes in stop closures and weak fricatives, which EM then
# labels as pauses and shifts the following words by one.
SINGLE_HOP_S = 0.010
SINGLE_SILENCE_QUANTILE = 0.05


# --------------------------------------------------------------------------- helpers
def _alignment_classes():
    from vqalign.align.alignment import Alignment, Segment  # noqa: PLC0415
    return Alignment, Segment


@dataclass
class _Tokens:
    words: list
    units: list
    unit: str
    oov: list = field(default_factory=list)


def _tokenize(text, unit, lexicon, oov):
    """Words and their units (phones or characters) via the shared tokenizer."""
    from vqalign.align.text import tokenize_transcript  # noqa: PLC0415
    if not isinstance(text, str):
        raise ParameterError(f"transcript must be a str, got {type(text).__name__}; read a "
                             "file with vqalign.align.text.read_transcript(path)")
    tr = tokenize_transcript(text, unit=unit, lexicon=lexicon, oov=oov)
    return _Tokens(list(tr.words), [list(u) for u in tr.units], unit, list(tr.oov))


def _audio_key(y: np.ndarray, sr: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(sr).encode())
    h.update(np.ascontiguousarray(y).view(np.uint8))
    return h.hexdigest()


def _load_audio(path):
    try:
        from vqalign.io.audio import load_audio  # noqa: PLC0415
    except ImportError:
        load_audio = None
    if load_audio is not None:
        return load_audio(path, sr=M.FEATURE_SR)
    import soundfile as sf  # noqa: PLC0415
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise ParameterError(f"cannot read audio file {path}: {exc}") from None
    return y.mean(axis=1).astype(np.float32), int(sr)


def _as_items(corpus):
    """Normalise corpus items to (audio, sr, text, name)."""
    out = []
    for i, item in enumerate(corpus):
        if not isinstance(item, (tuple, list)):
            raise ParameterError(f"corpus item {i} is a {type(item).__name__}; give "
                                 "(audio, sr, transcript) or (path, transcript) tuples")
        if len(item) == 3:
            y, sr, text = item
            name = None
            if isinstance(y, (str, Path)):
                name = str(y)
                y, sr = _load_audio(y)
        elif len(item) == 2:
            path, text = item
            if not isinstance(path, (str, Path)):
                raise ParameterError(f"corpus item {i}: a 2-tuple must be (path, transcript), "
                                     f"got ({type(path).__name__}, ...)")
            y, sr = _load_audio(path)
            name = str(path)
        else:
            raise ParameterError(f"corpus item {i} has {len(item)} fields; give (audio, sr, "
                                 "transcript) or (path, transcript)")
        out.append((y, sr, text, name))
    return out


class _Threads:
    """Run numba kernels on ``n`` threads inside the block."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import numba  # noqa: PLC0415
        self.old = numba.get_num_threads()
        numba.set_num_threads(max(1, min(self.n, numba.config.NUMBA_NUM_THREADS)))

    def __exit__(self, *exc):
        import numba  # noqa: PLC0415
        numba.set_num_threads(self.old)


@dataclass
class _Prepared:
    """An utterance ready for the model: features, tokens, duration."""

    X: np.ndarray
    energy: np.ndarray
    tokens: _Tokens
    duration: float
    sr: int
    name: str | None
    warnings: list
    y16: np.ndarray | None = None
    key: str | None = None


# --------------------------------------------------------------------------- Aligner
class Aligner:
    """Tied-mixture HMM forced aligner.

    Parameters
    ----------
    unit : {"phones", "chars"}
        ``"phones"``: English words pronounced with CMUdict (or ``lexicon``), words
        missing from it guessed by letter-to-sound rules and reported. ``"chars"``:
        one unit per letter, any script, no lexicon.
    n_codes : int
        Shared Gaussians (size of the VQ codebook), e.g. 256-1024.
    states_per_unit : int
        HMM states per phone or character (left to right).
    n_iter : int
        Maximum EM iterations (stops earlier when the log-likelihood per frame
        changes by less than ``tol`` relatively).
    hop_length : float or None
        Frame hop in seconds. None: 5 ms for phones, 10 ms for chars. With phones,
        5 ms (and +-1-frame deltas) measured better boundaries on the dev set than
        10 ms (15.2 vs 15.7 ms mean word-boundary error, 77 vs 73 % within 20 ms)
        at about twice the cost; with chars (several letters per sound, e.g. "ll")
        the 3-states-per-letter minimum duration at 5 ms is too weak and whole words
        were squeezed, so chars keep 10 ms. An unfitted Aligner (a model self-trained
        on each utterance) uses 10 ms with phones too: measured on synthesized
        utterances, one utterance gives too few frames per state at 5 ms (see
        ``SINGLE_HOP_S``).
    lexicon : Lexicon, optional
        Pronunciations merged over CMUdict (unit="phones").
    codebook : str, Path or array (n_codes, 39), optional
        A VQ codebook to start the shared Gaussians from instead of training one.
    silence : bool
        Optional silence between words and at both ends.
    random_state : int or Generator
    n_jobs : int
        Threads for the numba kernels.
    keep_paths : bool
        Keep every EM step's boundaries in ``diagnostics["em_paths"]`` (mode a).
    top_n : int
        Gaussians evaluated per frame (the rest are taken as zero).
    update_gaussians : int
        In corpus mode, re-estimate the shared Gaussians' means and variances every
        this many EM steps (0: never). Measured on the dev set: 3 gives 13.2 ms mean
        word-boundary error and 80 % within 20 ms, against 15.2 ms and 77 % without,
        for about 50 % more training time. A single utterance (and the opening
        window of a long one) keeps its codebook Gaussians: too few frames per
        Gaussian, and no measured gain.
    oov : {"g2p", "error"}
        What to do with words missing from the lexicon.
    tol : float
        Relative change of the per-frame log-likelihood that stops EM.
    weight_floor : float
        Floor of the mixture weights, relative to 1 / n_codes.
    """

    def __init__(self, unit="phones", *, n_codes=256, states_per_unit=3, n_iter=30,
                 hop_length=None, lexicon=None, codebook=None, silence=True, random_state=0,
                 n_jobs=2, keep_paths=False, top_n=8, update_gaussians=3, oov="g2p",
                 tol=1e-4, weight_floor=1e-4):
        self.unit = unit
        self.n_codes = n_codes
        self.states_per_unit = states_per_unit
        self.n_iter = n_iter
        self.hop_length = hop_length
        self.lexicon = lexicon
        self.codebook = codebook
        self.silence = silence
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.keep_paths = keep_paths
        self.top_n = top_n
        self.update_gaussians = update_gaussians
        self.oov = oov
        self.tol = tol
        self.weight_floor = weight_floor

    # ------------------------------------------------------------------ validation
    def _check_params(self, *, training=False):
        if self.unit not in UNITS:
            raise ParameterError(f"unit={self.unit!r} is not supported; use 'phones' (English, "
                                 "CMUdict) or 'chars' (any script, no lexicon)")
        check_positive_int(self.n_codes, "n_codes", minimum=2)
        check_positive_int(self.states_per_unit, "states_per_unit")
        if self.states_per_unit > 8:
            raise ParameterError(f"states_per_unit={self.states_per_unit} is more than 8; "
                                 "use 1-5 states per unit")
        check_positive_int(self.n_iter, "n_iter", minimum=0)
        check_positive_int(self.top_n, "top_n")
        check_positive_int(self.n_jobs, "n_jobs")
        check_positive_int(self.update_gaussians, "update_gaussians", minimum=0)
        hop = self.hop_length
        if hop is None:
            fitted = getattr(self, "model_", None) is not None
            hop = 0.005 if self.unit == "phones" and (training or fitted) else SINGLE_HOP_S
        if not isinstance(hop, (int, float)) or isinstance(hop, bool) or not 0.002 <= hop <= 0.05:
            raise ParameterError(f"hop_length={hop!r} s is outside [0.002, 0.05]; use 0.010 "
                                 "(10 ms) or 0.005 (5 ms)")
        if round(hop * M.FEATURE_SR) != hop * M.FEATURE_SR:
            raise ParameterError(f"hop_length={hop} s is not a whole number of samples at "
                                 f"{M.FEATURE_SR} Hz; use e.g. 0.010 or 0.005")
        self.hop_ = float(hop)
        if self.oov not in ("g2p", "error"):
            raise ParameterError(f"oov={self.oov!r}; use 'g2p' (guess from spelling, reported) "
                                 "or 'error'")
        if self.lexicon is not None and self.unit == "chars":
            raise ParameterError("a lexicon is only used with unit='phones'; drop lexicon= or "
                                 "use unit='phones'")

    def _lexicon(self):
        """The user's lexicon (merged over CMUdict by the tokenizer) or None; cached."""
        if self.unit != "phones" or self.lexicon is None:
            return None
        cached = getattr(self, "_lex_cache", None)
        if cached is not None and cached[0] is self.lexicon:
            return cached[1]
        from vqalign.align.lexicon import Lexicon  # noqa: PLC0415
        if isinstance(self.lexicon, (str, Path)):
            lex = Lexicon.from_file(self.lexicon)
        elif isinstance(self.lexicon, Lexicon):
            lex = self.lexicon
        else:
            raise ParameterError(f"lexicon must be a Lexicon or a file path, got "
                                 f"{type(self.lexicon).__name__}")
        self._lex_cache = (self.lexicon, lex)
        return lex

    # ------------------------------------------------------------------ preparation
    def _prepare(self, y, sr, text, name=None, lexicon=None, cache=None) -> _Prepared:
        sr = check_sample_rate(sr)
        y = check_audio(y, sr, allow_silent=True, name=f"audio {name}" if name else "audio")
        warn = []
        if not np.any(y):
            raise ParameterError(
                f"{'audio ' + repr(name) if name else 'the audio'} is silent (all "
                f"{y.size} samples are zero; {y.size / sr:.2f} s); there is no speech to align")
        peak = float(np.max(np.abs(y)))
        if peak < 1e-4:
            raise ParameterError(
                f"{'audio ' + repr(name) if name else 'the audio'} is practically silent "
                f"(peak amplitude {peak:.1e}); there is no speech to align — check the file "
                "or its gain")
        tokens = _tokenize(text, self.unit, lexicon, self.oov)
        if tokens.oov:
            msg = (f"{len(tokens.oov)} word(s) not in the lexicon were pronounced by "
                   f"letter-to-sound rules: {', '.join(sorted(set(tokens.oov)))}")
            warn.append(msg)
        key = (_audio_key(y, sr), self.hop_) if cache is not None else None
        y16 = M.resample(y, sr)
        min_len = int(0.025 * M.FEATURE_SR)
        if y16.size < min_len:
            raise ParameterError(f"audio has {y16.size / M.FEATURE_SR * 1000:.1f} ms, "
                                 "shorter than one 25 ms analysis window")
        if key is not None and key in cache:
            X, energy = cache[key]
        else:
            X, energy = M.features(y16, self.hop_, 1)
            if key is not None:
                cache[key] = (X, energy)
        return _Prepared(X, energy, tokens, y.size / sr, sr, name, warn, y16, key)

    def _prepare_many(self, items, lexicon, cache, *, raise_errors):
        prepared, errors = [], []
        for y, sr, text, name in items:
            try:
                with warnings.catch_warnings():  # OOVs are reported once for the corpus
                    warnings.simplefilter("ignore", UserWarning)
                    prepared.append(self._prepare(y, sr, text, name, lexicon, cache))
                errors.append(None)
            except VQAlignError as exc:
                if raise_errors:
                    raise
                prepared.append(None)
                errors.append(exc)
        return prepared, errors

    @staticmethod
    def _frames(prepared):
        Xs = [p.X for p in prepared]
        offs = np.zeros(len(Xs) + 1, np.int64)
        offs[1:] = np.cumsum([x.shape[0] for x in Xs])
        return M.Frames(np.concatenate(Xs) if Xs else np.zeros((0, 39), np.float32),
                        np.concatenate([p.energy for p in prepared]) if Xs else np.zeros(0),
                        offs, [p.duration for p in prepared])

    def _length_errors(self, model, prepared):
        """ParameterError per utterance whose transcript needs more frames than it has."""
        out = []
        for p in prepared:
            n_states = sum(model.n_sub(u) for w in p.tokens.units for u in w)
            T = p.X.shape[0]
            out.append(ParameterError(M.too_short_message(n_states, T, self.hop_))
                       if n_states > T else None)
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, corpus: Iterable, y=None):
        """Train the codebook and the tied-mixture HMM on a corpus.

        ``corpus`` yields ``(audio, sr, transcript)`` or ``(path, transcript)``.
        Utterances that cannot be used (silent, empty transcript, transcript longer
        than the audio allows) are skipped and listed in ``fit_failures_``; if none
        is usable a ParameterError says why.

        Sets ``model_``, ``history_``, ``symbols_``, ``n_utterances_``,
        ``fit_failures_`` (list of (index, name, message)), ``oov_`` and
        ``alignments_`` (the training utterances' final alignments, in order; None
        for a skipped one).
        """
        self._check_params(training=True)
        t_start = time.perf_counter()
        items = _as_items(corpus)
        if not items:
            raise ParameterError("the corpus is empty; give at least one (audio, sr, "
                                 "transcript) item")
        lexicon = self._lexicon()
        self._cache = {}
        prepared, errors = self._prepare_many(items, lexicon, self._cache, raise_errors=False)
        rng = check_random_state(self.random_state)
        ok = [i for i, p in enumerate(prepared) if p is not None]
        if not ok:
            raise ParameterError(f"no usable utterance in the corpus: {errors[0]}")
        with _Threads(self.n_jobs):
            symbols = sorted({u for i in ok for w in prepared[i].tokens.units for u in w})
            model = self._new_model(symbols, [prepared[i] for i in ok], rng)
            for i, err in zip(ok, self._length_errors(model, [prepared[i] for i in ok])):
                if err is not None:
                    errors[i] = err
            ok = [i for i in ok if errors[i] is None]
            if not ok:
                raise ParameterError(f"no usable utterance in the corpus: "
                                     f"{next(e for e in errors if e is not None)}")
            train = [prepared[i] for i in ok]
            frames = self._frames(train)
            g = model.build_graph([p.tokens.units for p in train], silence=self.silence)
            cand = None
            if self.update_gaussians:
                # the 3n best Gaussians per frame: the first n now, all of them as the
                # candidates re-scored after each Gaussian update
                cand, val = model.gauss.top_n(frames.X, 3 * model.top_n)
                comp = model.components_from(np.ascontiguousarray(cand[:, :model.top_n]),
                                             val[:, :model.top_n])
            else:
                comp = model.frame_components(frames.X)
            model.init_weights_from_energy(comp, frames.energy, frames.frame_off)
            history, comp = _em_flat_starts(
                model, frames, g, comp, self.n_iter, History("tied-mixture EM"),
                short_start=True, update_gaussians_every=self.update_gaussians,
                tol=self.tol, cand=cand)
            self.model_ = model
            self.history_ = history
            self.symbols_ = list(model.symbols)
            results = self._decode(train, frames, g, comp, history=None)
            # the training frames' top-n Gaussians, reused when the same audio is aligned
            # again with this model (e.g. fit(corpus) then align_many(corpus))
            self._comp_cache = {}
            for u, p in enumerate(train):
                if p.key is not None:
                    a, b = frames.frame_off[u], frames.frame_off[u + 1]
                    self._comp_cache[p.key] = (comp[0][a:b], comp[1][a:b], comp[2][a:b])
            self._comp_model = model
        self.alignments_ = [None] * len(items)
        for i, r in zip(ok, results):
            self.alignments_[i] = r
        self.fit_failures_ = [(i, items[i][3], str(errors[i])) for i in range(len(items))
                              if errors[i] is not None]
        self.oov_ = sorted({w for p in prepared if p is not None for w in p.tokens.oov})
        if self.oov_:
            warnings.warn(f"{len(self.oov_)} word(s) not in the lexicon were pronounced by "
                          f"letter-to-sound rules: {', '.join(self.oov_[:20])}"
                          f"{' ...' if len(self.oov_) > 20 else ''}", stacklevel=2)
        self.n_utterances_ = len(ok)
        self.fit_seconds_ = time.perf_counter() - t_start
        return self

    def _new_model(self, symbols, prepared, rng):
        X = np.concatenate([p.X for p in prepared])
        if self.codebook is not None:
            cb = self.codebook
            if isinstance(cb, (str, Path)):
                cb = _read_codebook(cb)
            cb = np.asarray(cb, dtype=np.float32)
            if cb.ndim != 2 or cb.shape[1] != X.shape[1]:
                raise ParameterError(f"codebook has shape {cb.shape} but the features have "
                                     f"{X.shape[1]} dimensions (13 MFCC + deltas); train it "
                                     "on the aligner's features or leave codebook=None")
        else:
            from vqalign.lbg import lbg  # noqa: PLC0415

            # the recipe's codebook: LBG doubling from the mean, refined per level, then
            # one Lloyd pass over every frame (the settings the aligner was tuned with;
            # the codebook bench's defaults skip that pass for speed on 1M frames)
            cb = lbg(X, min(self.n_codes, max(2, X.shape[0] // 4)),
                     seed=int(rng.integers(2**31 - 1)), n_iter=6, final_passes=1)
        gauss = M.Gaussians.from_codebook(cb, X)
        return M.TiedMixtureModel(symbols, self.states_per_unit, gauss, top_n=self.top_n,
                                  weight_floor=self.weight_floor)

    # ------------------------------------------------------------------ decoding
    def _decode(self, prepared, frames, g, comp, *, history, em_paths=None, warn_extra=None):
        model = self.model_
        hop = self.hop_
        path, score, status, bl = M.viterbi(model, frames, g, comp)
        gmax = comp[2]
        Alignment, Segment = _alignment_classes()
        out = []
        sil_tier = "phones" if self.unit == "phones" else "chars"
        for u, p in enumerate(prepared):
            a, b = frames.frame_off[u], frames.frame_off[u + 1]
            if status[u] != 0:
                out.append(AlignmentError(
                    f"no alignment path for {p.name or 'the utterance'}: the transcript "
                    f"({sum(len(w) for w in p.tokens.units)} units) cannot be fitted to "
                    f"{(b - a) * hop:.2f} s of audio"))
                continue
            pu = path[a:b]
            cols = g.col[g.state_off[u] + pu]
            blu = bl[a:b]
            own = blu[np.arange(b - a), cols].astype(np.float64)
            best = blu.max(axis=1).astype(np.float64)
            frame_conf = own / np.maximum(best, 1e-300)
            frame_ll = np.log(np.maximum(own, 1e-300)) + gmax[a:b]
            units, words = M.path_segments(pu, g, u, hop, p.duration, frame_conf)
            seg_units = [Segment(s, e, lab, c) for s, e, lab, c in units]
            seg_words = [Segment(s, e, p.tokens.words[wi], c) for s, e, wi, c in words]
            wlist = list(p.warnings)
            if warn_extra:
                wlist.extend(warn_extra)
            diag = {
                "hop_s": hop,
                "frame_loglik": np.round(frame_ll, 3).tolist(),
                "path_score": float(score[u]),
                "warnings": wlist,
                "oov": sorted(set(p.tokens.oov)),
                "unit": self.unit,
                "n_states": int(g.state_off[u + 1] - g.state_off[u]),
                "model": "tied-mixture HMM",
            }
            if history is not None:
                diag["em_history"] = history.to_dict()
            elif getattr(self, "history_", None) is not None:
                diag["em_history"] = self.history_.to_dict()
            if em_paths is not None:
                diag["em_paths"] = em_paths
            aln = Alignment(tiers={"words": seg_words, sil_tier: seg_units}, audio=p.name,
                            sample_rate=int(p.sr), duration=float(p.duration), diagnostics=diag)
            _add_warnings(aln, wlist)
            out.append(aln)
        return out

    # ------------------------------------------------------------------ align
    def align(self, audio, transcript, *, sr=16000, audio_name=None):
        """Align one utterance; returns an Alignment.

        ``audio`` is a float waveform (or a path, then ``sr`` is ignored). An unfitted
        Aligner self-trains on this one utterance (EM from a flat start, then Viterbi);
        a fitted one uses its shared model. Audio longer than 90 s is aligned in
        overlapping windows (see ``vqalign.align._longform``).
        """
        self._check_params()
        if isinstance(audio, (str, Path)):
            audio_name = audio_name or str(audio)
            audio, sr = _load_audio(audio)
        lexicon = self._lexicon()
        p = self._prepare(audio, sr, transcript, audio_name, lexicon,
                          getattr(self, "_cache", None))
        if p.duration > LONG_AUDIO_S:
            from vqalign.align import _longform  # noqa: PLC0415
            with _Threads(self.n_jobs):
                return _longform.align_long(self, p)
        if getattr(self, "model_", None) is None:
            with _Threads(self.n_jobs):
                return self._self_train(p)
        with _Threads(self.n_jobs):
            res = self._align_prepared([p])[0]
        if isinstance(res, Exception):
            raise res
        return res

    def _align_prepared(self, prepared):
        model = self.model_
        syms = {u for p in prepared for w in p.tokens.units for u in w}
        new = sorted(syms - set(model.symbols))
        if new:
            model.add_symbols(new)
        errs = self._length_errors(model, prepared)
        out = [None] * len(prepared)
        keep = []
        for i, e in enumerate(errs):
            if e is not None:
                out[i] = e
            else:
                keep.append(i)
        if keep:
            sub = [prepared[i] for i in keep]
            frames = self._frames(sub)
            g = model.build_graph([p.tokens.units for p in sub], silence=self.silence)
            comp = self._components(model, sub, frames)
            extra = ([f"units never seen in training were given generic models: "
                      f"{', '.join(new)}"] if new else None)
            res = self._decode(sub, frames, g, comp, history=None, warn_extra=extra)
            for i, r in zip(keep, res):
                out[i] = r
        return out

    def _components(self, model, prepared, frames):
        """Top-n Gaussians of every frame, from the fit-time cache where possible."""
        cache = getattr(self, "_comp_cache", None)
        if not cache or getattr(self, "_comp_model", None) is not model:
            return model.frame_components(frames.X)
        parts = [cache.get(p.key) if p.key is not None else None for p in prepared]
        missing = [u for u, c in enumerate(parts) if c is None]
        if missing:
            Xm = np.concatenate([prepared[u].X for u in missing])
            cm = model.frame_components(Xm)
            off = 0
            for u in missing:
                n = prepared[u].X.shape[0]
                parts[u] = (cm[0][off:off + n], cm[1][off:off + n], cm[2][off:off + n])
                off += n
        return tuple(np.concatenate([c[i] for c in parts]) for i in range(3))

    def _self_train(self, p: _Prepared, *, n_codes=None):
        """Mode (a): codebook and weights learned from this utterance alone."""
        rng = check_random_state(self.random_state)
        T = p.X.shape[0]
        symbols = sorted({u for w in p.tokens.units for u in w})
        k = n_codes or min(self.n_codes, max(8, T // 12))
        trial = M.TiedMixtureModel(symbols, self.states_per_unit,
                                   M.Gaussians(np.zeros((1, p.X.shape[1])),
                                               np.ones((1, p.X.shape[1]))))
        err = self._length_errors(trial, [p])[0]
        if err is not None:
            raise err
        model, frames, g, comp, history, paths = self._train_one(p, symbols, k, rng)
        em_paths = None
        if self.keep_paths:
            em_paths = [_boundary_times(pp, g, 0, self.hop_, p.duration) for pp in paths]
        self.model_ = model  # temporarily, for _decode
        try:
            res = self._decode([p], frames, g, comp, history=history, em_paths=em_paths)[0]
        finally:
            del self.model_
        if isinstance(res, Exception):
            raise res
        return res

    def _train_one(self, p, symbols, k, rng):
        """Codebook, flat start and EM on one utterance: (model, frames, graph, comp,
        history, per-step paths)."""
        frames = self._frames([p])
        saved = self.n_codes
        try:
            self.n_codes = k
            model = self._new_model(symbols, [p], rng)
        finally:
            self.n_codes = saved
        g = model.build_graph([p.tokens.units], silence=self.silence)
        comp = model.frame_components(frames.X)
        model.init_weights_from_energy(comp, frames.energy, frames.frame_off,
                                       quantile=SINGLE_SILENCE_QUANTILE)
        history, comp, paths = _em_flat_starts(
            model, frames, g, comp, self.n_iter, History("tied-mixture EM (one utterance)"),
            short_start=False, keep_paths=self.keep_paths, tol=self.tol, return_paths=True)
        return model, frames, g, comp, history, paths

    def align_many(self, items, *, n_jobs=None):
        """Align many utterances; per-utterance failures are returned, not raised.

        ``items`` yields ``(audio, sr, transcript)`` or ``(path, transcript)``. A fitted
        Aligner decodes them all in one batch (in parallel); an unfitted one self-trains
        on each. Returns a list of Alignment or the exception of that utterance.
        """
        self._check_params()
        n_jobs = self.n_jobs if n_jobs is None else check_positive_int(n_jobs, "n_jobs")
        out = []
        raw = list(items)
        norm = []
        for it in raw:
            try:
                norm.append(_as_items([it])[0])
            except VQAlignError as exc:
                norm.append(exc)
        lexicon = self._lexicon()
        fitted = getattr(self, "model_", None) is not None
        prepared = []
        for it in norm:
            if isinstance(it, Exception):
                prepared.append(it)
                continue
            try:
                with warnings.catch_warnings():  # OOVs are reported once for the batch
                    warnings.simplefilter("ignore", UserWarning)
                    prepared.append(self._prepare(*it[:3], it[3], lexicon,
                                                  getattr(self, "_cache", None)))
            except VQAlignError as exc:
                prepared.append(exc)
        oov = sorted({w for p in prepared if not isinstance(p, Exception)
                      for w in p.tokens.oov})
        if oov:
            warnings.warn(f"{len(oov)} word(s) not in the lexicon were pronounced by "
                          f"letter-to-sound rules: {', '.join(oov[:20])}"
                          f"{' ...' if len(oov) > 20 else ''}", stacklevel=2)
        out = [p if isinstance(p, Exception) else None for p in prepared]
        with _Threads(n_jobs):
            batch = [i for i, p in enumerate(prepared)
                     if not isinstance(p, Exception) and fitted and p.duration <= LONG_AUDIO_S]
            if batch:
                res = self._align_prepared([prepared[i] for i in batch])
                for i, r in zip(batch, res):
                    out[i] = r
            for i, p in enumerate(prepared):
                if out[i] is not None:
                    continue
                try:
                    if p.duration > LONG_AUDIO_S:
                        from vqalign.align import _longform  # noqa: PLC0415
                        out[i] = _longform.align_long(self, p)
                    else:
                        out[i] = self._self_train(p)
                except VQAlignError as exc:
                    out[i] = exc
        return out

    # ------------------------------------------------------------------ observations
    def observations(self, audio, transcript, *, sr=16000):
        """Per-frame emission log-likelihoods of every HMM state and the Viterbi path.

        Returns dict(log_emit (T, S) float32, path (T,) int32, labels list[str] (per
        state, e.g. "AH.1", "sil"), hop_s). Uses the fitted model, or self-trains on
        this utterance first.
        """
        self._check_params()
        lexicon = self._lexicon()
        p = self._prepare(audio, sr, transcript, None, lexicon, getattr(self, "_cache", None))
        fitted = getattr(self, "model_", None) is not None
        with _Threads(self.n_jobs):
            if not fitted:
                saved = self.keep_paths
                self.keep_paths = False
                try:
                    model = self._train_single_model(p)
                finally:
                    self.keep_paths = saved
            else:
                model = self.model_
                model.add_symbols(sorted({u for w in p.tokens.units for u in w}
                                         - set(model.symbols)))
            err = self._length_errors(model, [p])[0]
            if err is not None:
                raise err
            frames = self._frames([p])
            g = model.build_graph([p.tokens.units], silence=self.silence)
            comp = model.frame_components(frames.X)
            path, _, status, bl = M.viterbi(model, frames, g, comp)
        if status[0] != 0:
            raise AlignmentError("no alignment path through the utterance")
        log_emit = (np.log(np.maximum(bl[:, g.col], 1e-30)) + comp[2][:, None]).astype(
            np.float32)
        inv = {c: f"{s}.{j}" if s != M.SIL else s for (s, j), c in model.columns.items()}
        labels = [inv[int(c)] for c in g.col]
        return {"log_emit": log_emit, "path": path.astype(np.int32), "labels": labels,
                "hop_s": self.hop_}

    def _train_single_model(self, p):
        rng = check_random_state(self.random_state)
        T = p.X.shape[0]
        symbols = sorted({u for w in p.tokens.units for u in w})
        return self._train_one(p, symbols, min(self.n_codes, max(8, T // 12)), rng)[0]

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, overwrite=False):
        """Write the fitted model as ``.npz`` (arrays plus a JSON header)."""
        model = getattr(self, "model_", None)
        if model is None:
            raise ParameterError("the Aligner is not fitted; call fit(corpus) before save()")
        from vqalign.io.atomic import atomic_write  # noqa: PLC0415
        path = Path(path)
        if path.suffix != ".npz":
            raise ParameterError(f"save() writes a .npz file, got {path.name!r}; use a name "
                                 "ending in .npz")
        header = {
            "format": "vqalign.Aligner", "version": MODEL_VERSION,
            "params": {k: getattr(self, k) for k in (
                "unit", "n_codes", "states_per_unit", "n_iter", "hop_length", "silence",
                "top_n", "update_gaussians", "oov", "tol", "weight_floor")} | {
                "hop_length": self.hop_},
            "features": {"kind": "mfcc+delta+delta2", "n_mfcc": 13, "n_mels": 40,
                         "win_length": 0.025, "hop_length": self.hop_, "cmvn":
                         "per-utterance", "sr": M.FEATURE_SR},
            "symbols": model.symbols, "columns": [[s, j, c] for (s, j), c in
                                                  model.columns.items()],
            "p_sil": model.p_sil, "p_sil_edge": model.p_sil_edge,
            "history": self.history_.to_dict() if getattr(self, "history_", None) else None,
        }
        with atomic_write(path, "wb", overwrite=overwrite) as fh:
            np.savez(fh, header=np.array(json.dumps(header)), means=model.gauss.means,
                     variances=model.gauss.variances, weights=model.weights,
                     p_self=model.p_self)
        return path

    @classmethod
    def load(cls, path):
        """An Aligner fitted earlier and written with :meth:`save`."""
        path = Path(path)
        try:
            data = np.load(path, allow_pickle=False)
            header = json.loads(str(data["header"]))
        except FileNotFoundError:
            raise ParameterError(f"model file {path} does not exist") from None
        except Exception as exc:  # noqa: BLE001
            raise ParameterError(f"{path} is not a vqalign Aligner model ({exc}); write one "
                                 "with Aligner.save()") from None
        if header.get("format") != "vqalign.Aligner":
            raise ParameterError(f"{path} is not a vqalign Aligner model")
        if header.get("version", 0) > MODEL_VERSION:
            raise ParameterError(f"{path} was written by a newer vqalign (model version "
                                 f"{header['version']}); upgrade vqalign")
        params = header["params"]
        self = cls(**params)
        gauss = M.Gaussians(data["means"], data["variances"])
        model = M.TiedMixtureModel(header["symbols"], params["states_per_unit"], gauss,
                                   top_n=params["top_n"], weight_floor=params["weight_floor"])
        model.columns = {(s, int(j)): int(c) for s, j, c in header["columns"]}
        model.weights = np.asarray(data["weights"], np.float32)
        model.p_self = np.asarray(data["p_self"], np.float64)
        model.p_sil = float(header["p_sil"])
        model.p_sil_edge = float(header["p_sil_edge"])
        self.model_ = model
        self.symbols_ = list(model.symbols)
        self.history_ = History.from_dict(header["history"]) if header.get("history") else None
        return self

    def __repr__(self):
        fitted = "fitted" if getattr(self, "model_", None) is not None else "not fitted"
        return (f"Aligner(unit={self.unit!r}, n_codes={self.n_codes}, "
                f"states_per_unit={self.states_per_unit}, hop_length={self.hop_length}; "
                f"{fitted})")


# --------------------------------------------------------------------------- flat starts
# Below this much training audio a second flat start is cheap (well under a second of
# EM) and needed: from a single start EM on a small corpus often converges to an
# optimum where the silence model swallows whole words (12 synth utterances: 350 ms
# mean word error from the short-duration start, 12 ms from the duration start).
MULTI_START_S = 300.0


def _snapshot(model):
    return (model.weights.copy(), model.p_self.copy(), model.p_sil, model.p_sil_edge,
            model.gauss.means.copy(), model.gauss.variances.copy())


def _restore(model, snap):
    (model.weights, model.p_self, model.p_sil, model.p_sil_edge, model.gauss.means,
     model.gauss.variances) = (snap[0].copy(), snap[1].copy(), snap[2], snap[3],
                               snap[4].copy(), snap[5].copy())


def _em_flat_starts(model, frames, g, comp, n_iter, history, *, short_start,
                    return_paths=False, **em_kwargs):
    """EM from the flat start(s); keeps the run with the highest final log-likelihood.

    Two starts share the energy-based mixture weights and differ in the initial
    self-loops: "durations" (each speech state gets its share of the utterance's
    frames, :meth:`TiedMixtureModel.init_durations`) and "short" (p_self = 0.6: the
    speech states start short, so the first E-step puts speech only where the
    emissions clearly favour it). On the 200-utterance dev corpus the short start
    gives better boundaries (13.4 vs 15.0 ms) at the same final likelihood; on small
    corpora it can end far worse. A corpus shorter than ``MULTI_START_S`` seconds
    (and every single utterance) is trained from the duration start, and, when
    ``short_start``, from the short start too; the higher final log-likelihood per
    frame wins. Longer corpora use the short start only (``short_start``) or the
    duration start. Returns (history, comp[, paths]).
    """
    seconds = float(sum(frames.durations))
    starts = []
    if not short_start or seconds < MULTI_START_S:
        starts.append("durations")
    if short_start:
        starts.append("short")
    snap = _snapshot(model)
    best = None
    for k, name in enumerate(starts):
        if k:
            _restore(model, snap)
        if name == "durations":
            model.init_durations(frames.frame_off, g)
        h = History(f"{history.name}, {name} flat start")
        h_out, paths, comp_k = M.run_em(model, frames, g, comp, n_iter, history=h,
                                        **em_kwargs)
        col = h_out.to_dict()["columns"].get("log_likelihood") or [-np.inf]
        ll = col[-1]
        if best is None or ll > best[0]:
            best = (ll, name, h_out, comp_k, paths, _snapshot(model) if len(starts) > 1
                    else None)
    ll, name, h_best, comp_best, paths, snap_best = best
    if snap_best is not None:
        _restore(model, snap_best)
    return (h_best, comp_best, paths) if return_paths else (h_best, comp_best)


# --------------------------------------------------------------------------- small helpers
def _read_codebook(path):
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path)
        data = np.load(path, allow_pickle=False)
        for key in ("codebook", "codebook_", "means", "arr_0"):
            if key in data:
                return data[key]
        raise ParameterError(f"{path} holds no 'codebook' array (keys: {list(data.keys())})")
    except FileNotFoundError:
        raise ParameterError(f"codebook file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read codebook {path} ({exc}); give a .npy array or a "
                             ".npz with a 'codebook' array (VectorQuantizer.save)") from None


def _boundary_times(path_u, g, u, hop_s, duration):
    """Unit boundary times (s) of one Viterbi path: every unit start and the last end."""
    units, _ = M.path_segments(path_u, g, u, hop_s, duration)
    times = [s for s, _, _, _ in units]
    if units:
        times.append(units[-1][1])
    return [round(t, 4) for t in times]


def _add_warnings(aln, extra):
    try:
        from vqalign.align.alignment import add_quality_warnings  # noqa: PLC0415
    except ImportError:
        return
    try:
        add_quality_warnings(aln)
    except Exception as exc:  # noqa: BLE001 - warnings must never break an alignment
        aln.diagnostics.setdefault("warnings", []).append(f"quality check failed: {exc}")


def align(audio, transcript, *, sr=16000, unit="phones", **aligner_kwargs):
    """Align one utterance with a model self-trained on it (see :class:`Aligner`)."""
    return Aligner(unit=unit, **aligner_kwargs).align(audio, transcript, sr=sr)

