"""The estimator: a tied-mixture HMM forced aligner (parameters, fit, align, align_many).

Audio plus transcript in, word and phone (or character) timings out::

    from vqalign.align import Aligner, align
    a = align(y, "the cat sat on the mat", sr=16000)          # one utterance, self-trained
    model = Aligner(unit="phones").fit(corpus)                 # corpus: (y, sr, text) tuples
    result = model.align(y, text, sr=16000)
    result.tiers["words"]                                      # [Segment(start, end, label)]

The road of one file: :func:`vqalign.align.utterance.prepare` (checks, front end,
tokens) -> :mod:`vqalign.align.recipe` (codebook, flat starts, EM on the engine) ->
:func:`vqalign.align.decode.decode` (Viterbi, segments, confidences) -> the passes
(:mod:`~vqalign.align.selftrain`, :mod:`~vqalign.align.coverage`,
:mod:`~vqalign.align.second_opinion`, :mod:`~vqalign.align.longform`), which receive the
functions they need from this estimator. A fitted model is shared by every utterance
it aligns; an unfitted Aligner self-trains on each (:mod:`vqalign.align.selftrain`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from pathlib import Path

from vqalign._validation import check_hop, check_positive_int, check_random_state
from vqalign.align import corpus_start as CS
from vqalign.align import longform, model_io, prior, recipe, second_opinion, selftrain, windows
from vqalign.align import utterance as U
from vqalign.align.decode import decode, observations, restore_span
from vqalign.align.fitted import align_fitted
from vqalign.align.longfile import open_audio
from vqalign.align.refine import refine_prepared
from vqalign.align.text import UNITS
from vqalign.exceptions import AlignmentError, ParameterError, VQAlignError
from vqalign.features.frontend import DITHER, FEATURE_SR, recipe_settings
from vqalign.history import History
from vqalign.hmm.threads import threads

#: one utterance shorter than this is aligned on one thread: its kernel calls are too small
#: (a 3.4 s file: 111 E-step calls) to pay for a second thread, which on a busy machine
#: waits for a core at every call (vqalign align on a 3.4 s TIMIT file, load 9 on 2 cores:
#: 6.3 s wall with 2 threads, 3.0 s with 1; the same alignment)
PARALLEL_MIN_S = 20.0


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
        Frame hop in seconds. None: 5 ms for a trained model of phones, else 10 ms
        (:func:`vqalign.align.recipe.default_hop`, ``CORPUS_HOP_S`` and ``SINGLE_HOP_S``
        say what was measured).
    lexicon : Lexicon, optional
        Pronunciations merged over CMUdict (unit="phones").
    codebook : str, Path or array (n_codes, 39), optional
        A VQ codebook to start the shared Gaussians from instead of training one. An
        unfitted Aligner with a codebook aligns each utterance by the seed's recipe:
        the codebook's Gaussians, EM on the mixture weights only (``n_iter`` steps),
        self loops from durations.
    silence : bool
        Optional silence between words and at both ends.
    random_state : int or Generator
    n_jobs : int
        Threads for the engine's kernels.
    keep_paths : bool
        Keep every EM step's boundaries in ``diagnostics["em_paths"]`` (mode a).
    top_n : int
        Gaussians evaluated per frame (the rest are taken as zero).
    update_gaussians : int
        In corpus mode, re-estimate the shared Gaussians' means and variances every
        this many EM steps (0: never; dev set: 3 gives 13.2 ms mean word-boundary error,
        15.2 ms without, for 50 % more training time). One utterance keeps its Gaussians.
    oov : {"g2p", "error"}
        What to do with words missing from the lexicon.
    tol : float
        Relative change of the per-frame log-likelihood that stops EM.
    weight_floor : float
        Floor of the mixture weights, relative to 1 / n_codes.
    dither : float, optional
        RMS of the white noise added to the audio before the front end (digital silence
        otherwise collapses to one point). None: 0 for a corpus-trained model (kept in
        the saved model), 1e-3 when self-training on the audio being aligned.
    trim_silence : bool
        Leave long leading and trailing silence out of the alignment (audio up to 90 s):
        an edge without speech (energy VAD, :func:`vqalign.features.frontend.speech_span`)
        longer than 0.75 s is cut to 0.25 s before it reaches the model, and the times
        are shifted back (without it a self-trained model stretches the first and last
        words over the silence). ``diagnostics["speech_span_s"]`` gives the part aligned.
    reference : {"auto", "sphinx", "none", "flat"}
        A self-trained English alignment is the median of three opinions: "sphinx" the
        CMU Sphinx en-us model's two and vqalign's English prior's; "none" (None) the
        prior's two and the flat start's; "auto" "sphinx" when pocketsphinx is installed,
        else "none"; "flat" the flat-start model alone (:mod:`~vqalign.align.prior`,
        :mod:`~vqalign.align.second_opinion`; a small corpus's likewise; not with codebook).
    """

    #: fitted attributes (None until fit or load): the engine's model, its EM history,
    #: the seconds of training audio
    model_ = None
    history_ = None
    train_seconds_ = None

    def __init__(self, unit="phones", *, n_codes=256, states_per_unit=3, n_iter=30,
                 hop_length=None, lexicon=None, codebook=None, silence=True, random_state=0,
                 n_jobs=2, keep_paths=False, top_n=8, update_gaussians=3, oov="g2p",
                 tol=1e-4, weight_floor=1e-4, dither=None, trim_silence=True,
                 reference="auto"):
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
        self.dither = dither
        self.trim_silence = trim_silence
        self.reference = reference
        # caches (lexicon, features, codebook), the model's dither, the second opinion's helper
        self._lex_cache = None
        self._cache = None
        self._codebook_cache = {}
        self._model_dither = None
        self._helper = None

    # ------------------------------------------------------------------ validation
    def check_params(self, *, training=False):
        """Check the parameters and set ``hop_`` and ``dither_`` (those of a trained
        model when ``training`` or fitted, else those of self-training)."""
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
            hop = recipe.default_hop(self.unit, training or self.model_ is not None)
        self.hop_ = check_hop(hop, sr=FEATURE_SR)
        self.dither_ = recipe.dither(self.dither, trained=training or self.model_ is not None,
                                     model_dither=self._model_dither)
        if self.oov not in ("g2p", "error"):
            raise ParameterError(f"oov={self.oov!r}; use 'g2p' (guess from spelling, reported) "
                                 "or 'error'")
        prior.check_reference(self.reference)
        if self.lexicon is not None and self.unit == "chars":
            raise ParameterError("a lexicon is only used with unit='phones'; drop lexicon= or "
                                 "use unit='phones'")

    def _lexicon(self):
        """The user's lexicon (merged over CMUdict by the tokenizer) or None; cached."""
        if self.unit != "phones" or self.lexicon is None:
            return None
        if self._lex_cache is None or self._lex_cache[0] is not self.lexicon:
            self._lex_cache = (self.lexicon, U.user_lexicon(self.lexicon))
        return self._lex_cache[1]

    # ------------------------------------------------------------------ preparation
    def prepare(self, y, sr, text, name=None, lexicon=None, cache=None, *,
                tokens=None, own_audio=False) -> U.Utterance:
        """One utterance ready for the model (:func:`vqalign.align.utterance.prepare` with
        this Aligner's settings); the hook a subclass overrides to bring its own features
        (e.g. :class:`vqalign.pipeline.corpus.StoreAligner`).

        Parameters
        ----------
        y, sr, text, name, lexicon, cache, tokens, own_audio
            As :func:`vqalign.align.utterance.prepare` (``y``: (n_samples,) audio).

        Returns
        -------
        vqalign.align.utterance.Utterance
        """
        work = None if self.model_ is not None else windows.hooks(self)[1]
        return U.prepare(y, sr, text, unit=self.unit, hop_s=self.hop_, dither=self.dither_,
                         trim_silence=self.trim_silence, oov=self.oov, name=name, lexicon=lexicon,
                         cache=cache, tokens=tokens, own_audio=own_audio, work_folder=work)

    def n_states(self, units) -> int:
        """HMM states of a transcript's units (a list of words of units), silence aside."""
        return self.states_per_unit * sum(len(w) for w in units)

    def corpus_codes(self, n_frames: int) -> int:
        """Gaussians of a model trained on ``n_frames`` frames
        (:func:`vqalign.align.recipe.corpus_codes`)."""
        return recipe.corpus_codes(self.n_codes, n_frames)

    def _length_error(self, p):
        """ParameterError when the transcript of ``p`` needs more frames than it has."""
        return U.length_error(p, self.states_per_unit, self.hop_)

    def _hmm(self, gmm, *, corpus):
        """The engine's model with this Aligner's settings (:func:`recipe.make_hmm`)."""
        return recipe.make_hmm(
            gmm, corpus=corpus, seeded=self.codebook is not None,
            states_per_unit=self.states_per_unit, silence=self.silence, top_n=self.top_n,
            n_iter=self.n_iter, tol=self.tol, weight_floor=self.weight_floor,
            update_gaussians=self.update_gaussians, hop_s=self.hop_)

    def fit(self, corpus: Iterable, y=None):
        """Train the codebook and the tied-mixture HMM on a corpus.

        Parameters
        ----------
        corpus : iterable
            ``(audio, sr, transcript)`` or ``(path, transcript)`` items. Unusable ones
            (silent, empty transcript, transcript longer than the audio allows) are
            skipped and listed in ``fit_failures_``; with none usable a ParameterError.
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self
            With ``model_`` (:class:`vqalign.hmm.TiedMixtureHMM`), ``history_``,
            ``symbols_``, ``n_utterances_``, ``fit_failures_`` ((index, name, message)),
            ``oov_`` and ``alignments_`` (per item; None for a skipped one).
        """
        self.check_params(training=True)
        t_start = time.perf_counter()
        items = U.as_items(corpus)
        if not items:
            raise ParameterError("the corpus is empty; give at least one (audio, sr, "
                                 "transcript) item")
        lexicon = self._lexicon()
        self._cache = U.FeatureCache()
        prepared = U.prepare_all(items, self.prepare, lexicon, self._cache)
        errors = [p if isinstance(p, Exception) else None for p in prepared]
        prepared = [None if e is not None else p for p, e in zip(prepared, errors)]
        rng = check_random_state(self.random_state)
        ok = [i for i, p in enumerate(prepared) if p is not None]
        if not ok:
            raise ParameterError(f"no usable utterance in the corpus: {errors[0]}")
        for i in ok:
            errors[i] = self._length_error(prepared[i])
        ok = [i for i in ok if errors[i] is None]
        if not ok:
            raise ParameterError(f"no usable utterance in the corpus: "
                                 f"{next(e for e in errors if e is not None)}")
        train = [prepared[i] for i in ok]
        with threads(self.n_jobs):
            model, history, sel, X, offs = self.train_model(
                train, rng, corpus=True, **CS.keywords(self, train))
            self.set_model(model, history=history)
            results = self._decode(train, X, offs, sel, history=None)
        # utterances no path fitted during EM (named as train_model names them)
        where = {p.name or str(u): ok[u] for u, p in enumerate(train)}
        for name, msg in model.failures_:
            errors[where[name]] = AlignmentError(msg)
        self.train_seconds_ = float(sum(p.duration for p in train))
        self.alignments_ = [None] * len(items)
        for i, r, p in zip(ok, results, train):
            self.alignments_[i] = refine_prepared(
                self._corpus_opinion(p, restore_span(r, p), list(p.warnings)), p)
        self.fit_failures_ = [(i, items[i][3], str(errors[i])) for i in range(len(items))
                              if errors[i] is not None]
        self.oov_ = U.warn_oov(prepared)
        self.n_utterances_ = len(ok)
        self.fit_seconds_ = time.perf_counter() - t_start
        return self

    def set_model(self, model, *, history=None, train_seconds=None):
        """Make this Aligner a fitted one with the engine's ``model`` trained with its
        settings (e.g. by the streamed corpus EM), kept with the current dither; returns
        self with ``model_``, ``history_``, ``symbols_`` and ``train_seconds_`` set."""
        self.model_ = model
        self._model_dither = self.dither_
        self.history_ = history
        self.symbols_ = list(model.symbols_)
        if train_seconds is not None:
            self.train_seconds_ = float(train_seconds)
        return self

    def new_model(self, X, rng, *, k=None, corpus=True):
        """An untrained engine model: Gaussians (:func:`vqalign.align.recipe.gaussians`)
        from the given ``codebook`` (:func:`vqalign.align.model_io.codebook_array`) or an
        LBG codebook of ``X`` (N, 39) (:func:`vqalign.align.recipe.codebook`), in
        :func:`vqalign.align.recipe.make_hmm`."""
        if self.codebook is not None:
            cb = model_io.codebook_array(self.codebook, recipe_settings(self.hop_, self.dither_),
                                         X.shape[1])
        else:
            cb = recipe.codebook(X, self.n_codes if k is None else k, rng,
                                 cache=self._codebook_cache)
        return self._hmm(recipe.gaussians(cb, X, self.top_n), corpus=corpus)

    def train_model(self, train, rng, *, corpus, k=None, **kw):
        """The recipe (:func:`vqalign.align.recipe.train`, its keywords ``kw``: quantile,
        n_iter, open_end, diagonal, on_step, seed, fit) on prepared utterances: a corpus has
        ``corpus_codes`` Gaussians, one utterance ``k``. Returns (model, history,
        selection, X (N, 39), frame_off (U+1,))."""
        X, energy, offs = U.frames(train)
        if corpus and k is None:
            k = self.corpus_codes(X.shape[0])
        base = self.new_model(X, rng, k=k, corpus=corpus)
        model = recipe.train(train, X, energy, offs, base, unit=self.unit, hop_s=self.hop_,
                             corpus=corpus, **kw)
        return model, model.history_, model._last_selection, X, offs

    def _train_one(self, p, *, n_codes=None, diagonal=0.0, on_step=None, seed=None):
        """Codebook, flat start and EM on one utterance: (model, history, selection, X,
        frame_off); ``seed``: a start from elsewhere (:func:`recipe.train`)."""
        rng = check_random_state(self.random_state)
        T = p.X.shape[0]
        k = n_codes or min(self.n_codes, max(8, T // 12))
        return self.train_model([p], rng, corpus=False, k=k,
                                quantile=recipe.SINGLE_SILENCE_QUANTILE, diagonal=diagonal,
                                on_step=on_step, seed=seed)

    # ------------------------------------------------------------------ decoding
    def _decode(self, prepared, X, offs, sel, *, history, em_paths=None, warn_extra=None,
                model=None, shift=0.0):
        """:func:`vqalign.align.decode.decode` with this Aligner's settings (the fitted
        model and its history unless ``model`` is given)."""
        model = self.model_ if model is None else model
        if history is None:
            history = self.history_
        return decode(prepared, X, offs, sel, model, unit=self.unit, hop_s=self.hop_,
                      mode="corpus" if model is self.model_ else "self", history=history,
                      em_paths=em_paths, warn_extra=warn_extra, shift=shift)

    # ------------------------------------------------------------------ align
    def align(self, audio, transcript, *, sr=None, audio_name=None):
        """Align one utterance.

        Parameters
        ----------
        audio : ndarray, shape (n_samples,), or str or Path
            A float waveform with its sample rate ``sr`` (required), or a path (``sr`` ignored).
        transcript : str
        sr : int, optional
        audio_name : str, optional
            Shown in messages and kept in the alignment.

        Returns
        -------
        vqalign.align.alignment.Alignment
            An unfitted Aligner self-trains on the utterance, a fitted one uses its model;
            audio over 90 s is one long recording (:mod:`vqalign.align.longform`).
        """
        self.check_params()
        if own := isinstance(audio, (str, Path)):  # samples read here may change in place
            audio_name = audio_name or str(audio)  # a long file is read block by block:
            audio, sr = open_audio(audio, blocks=type(self).prepare is Aligner.prepare)
        elif sr is None:
            raise ParameterError("sr is required with an audio array: pass its sample rate, "
                                 f"e.g. align(y, text, sr={FEATURE_SR}), or pass a file path")
        lexicon = self._lexicon()
        p = self.prepare(audio, sr, transcript, audio_name, lexicon, self._cache, own_audio=own)
        with threads(self.n_jobs if p.duration >= PARALLEL_MIN_S else 1):
            if p.duration > U.LONG_AUDIO_S:
                del audio  # the long recording keeps its features, not its samples
                return self._align_long(p)
            if self.model_ is None:
                return self._self_train(p)
            res = self._align_prepared([p])[0]
        if isinstance(res, Exception):
            raise res
        return res

    def _align_long(self, p):
        train, work = windows.hooks(self, recipe.SINGLE_SILENCE_QUANTILE)
        return longform.align_long(p, unit=self.unit, hop_s=self.hop_, n_iter=self.n_iter,
                                   update_gaussians=self.update_gaussians, model=self.model_,
                                   train_one=self._train_one, train_windows=train, work_folder=work)

    def _align_prepared(self, prepared):
        return align_fitted(prepared, model=self.model_, hop_s=self.hop_, dither=self.dither_,
                            decode=self._decode, length_error=self._length_error,
                            opinion=self._corpus_opinion)

    def _self_train(self, p, *, n_codes=None):
        """Mode (a): self-trained on this utterance alone (:func:`selftrain.self_train`)."""
        opinion = None
        if (recipe.single_policy(self.unit) and self.reference != "flat"
                and self.codebook is None):   # a codebook asks for the seed's recipe
            def opinion(q, flat):
                return second_opinion.with_reference(
                    q, flat, hop_s=self.hop_, ref_name=prior.ref_name(self.reference),
                    opinions=functools.partial(self._opinions, n_codes=n_codes, short_pauses=True),
                    prior=prior.in_median(self.reference, Aligner.load))
        return selftrain.self_train(
            p, unit=self.unit, hop_s=self.hop_, dither=self.dither_,
            train_one=functools.partial(self._train_one, n_codes=n_codes),
            decode=self._decode, length_error=self._length_error,
            keep_paths=self.keep_paths, second_opinion=opinion)

    def _opinions(self, p, n_codes=None, short_pauses=False):
        """(seeded, reference) alignments of ``p`` (:func:`second_opinion.opinions`)."""
        return second_opinion.opinions(
            p, hop_s=self.hop_, train_one=functools.partial(self._train_one, n_codes=n_codes),
            decode=self._decode, required=self.reference == "sphinx", short_pauses=short_pauses,
            own=prior.for_setting(self.reference, Aligner.load))

    def _corpus_opinion(self, p, res, warns):
        """A fitted model's alignment ``res`` of ``p`` in the median of three, for English
        (:func:`second_opinion.corpus_opinion`, :mod:`vqalign.align.corpus_start`): with
        the prior's and the Sphinx model's (``reference="none"``: a self-trained helper's
        two); ``res`` unchanged otherwise."""
        if (isinstance(res, Exception) or self.reference == "flat" or self.unit != "phones"
                or self.train_seconds_ is None):
            return res
        if self._helper is None:
            self._helper = Aligner(unit=self.unit, lexicon=self.lexicon, oov=self.oov,
                                   random_state=self.random_state, n_jobs=1,
                                   reference=self.reference)
            self._helper.check_params()
        h = self._helper
        ops = (h._opinions if prior.uses_prior(h.reference)
               else CS.pretrained_opinions(h, Aligner.load))
        return second_opinion.corpus_opinion(p, res, warns, hop_s=self.hop_, prepare=h.prepare,
                                             length_error=h._length_error, opinions=ops,
                                             ref_name=prior.ref_name(h.reference))

    def align_many(self, items, *, n_jobs=None):
        """Align many utterances; per-utterance failures are returned, not raised.

        Parameters
        ----------
        items : iterable
            ``(audio, sr, transcript)`` or ``(path, transcript)`` tuples.
        n_jobs : int, optional
            Threads of the engine's kernels (default: ``n_jobs``).

        Returns
        -------
        list
            Per item an Alignment, or the exception of that utterance. A fitted Aligner
            decodes them all in one batch; an unfitted one self-trains on each.
        """
        self.check_params()
        n_jobs = self.n_jobs if n_jobs is None else check_positive_int(n_jobs, "n_jobs")
        norm = []
        for it in list(items):
            try:
                norm.append(U.as_items([it])[0])
            except VQAlignError as exc:
                norm.append(exc)
        lexicon = self._lexicon()
        fitted = self.model_ is not None
        prepared = U.prepare_all(norm, self.prepare, lexicon, self._cache)
        U.warn_oov(prepared)
        out = [p if isinstance(p, Exception) else None for p in prepared]
        with threads(n_jobs):
            batch = [i for i, p in enumerate(prepared)
                     if not isinstance(p, Exception) and fitted and p.duration <= U.LONG_AUDIO_S]
            if batch:
                res = self._align_prepared([prepared[i] for i in batch])
                for i, r in zip(batch, res):
                    out[i] = r
            for i, p in enumerate(prepared):
                if out[i] is not None:
                    continue
                try:
                    if p.duration > U.LONG_AUDIO_S:
                        out[i] = self._align_long(p)
                    else:
                        out[i] = self._self_train(p)
                except VQAlignError as exc:
                    out[i] = exc
        return out

    # ------------------------------------------------------------------ observations
    def observations(self, audio, transcript, *, sr=FEATURE_SR):
        """Per-frame emission log-likelihoods of every HMM state and the Viterbi path
        (:func:`vqalign.align.decode.observations`) with the fitted model, or a model
        self-trained on this utterance first.

        Returns
        -------
        dict
            ``log_emit`` (T, S) float32, ``path`` (T,) int32, ``labels`` (per state, e.g.
            "AH.1", "sil"), ``hop_s``.
        """
        self.check_params()
        p = self.prepare(audio, sr, transcript, None, self._lexicon(), self._cache)
        with threads(self.n_jobs):
            err = self._length_error(p)
            if err is not None:
                raise err
            if self.model_ is None:
                model = self._train_one(p)[0]
            else:
                model = self.model_
                model.add_symbols(sorted({u for w in p.tokens.units for u in w}))
            return observations(model, p, self.hop_)

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, overwrite=False):
        """Write the fitted model as ``.npz`` (:func:`vqalign.align.model_io.write_model`:
        the engine's arrays, the parameters, the feature settings, the user's lexicon).

        Parameters
        ----------
        path : str or Path
            Ends in ``.npz``.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        Path
        """
        if self.model_ is None:
            raise ParameterError("the Aligner is not fitted; call fit(corpus) before save()")
        state = self.model_.get_state()
        params = {k: getattr(self, k) for k in model_io.SAVED_PARAMS} | {"hop_length": self.hop_}
        header = model_io.aligner_header(params, recipe_settings(self.hop_, self.dither_),
                                         state["header"], self._lexicon(), self.history_,
                                         self.train_seconds_)
        return model_io.write_model(path, header, state["arrays"], overwrite=overwrite)

    @classmethod
    def load(cls, path):
        """An Aligner fitted earlier and written with :meth:`save`.

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Aligner
            Fitted.
        """
        header, arrays = model_io.read_model(path)
        self = cls(**header["params"])
        self.lexicon = model_io.saved_lexicon(header, Path(path).name)
        self.check_params(training=True)
        self.model_ = self._hmm(None, corpus=True).set_state({"arrays": arrays,
                                                              "header": header["model"]})
        self._model_dither = float(header.get("features", {}).get("dither", DITHER))
        self.check_params()
        self.symbols_ = list(self.model_.symbols_)
        self.history_ = History.from_dict(header["history"]) if header.get("history") else None
        self.train_seconds_ = header.get("train_seconds")
        return self

    @staticmethod
    def from_sphinx(model="en-us"):
        """An aligner on a CMU Sphinx acoustic model: ``"en-us"`` (the model inside the
        pocketsphinx wheel, ``pip install pocketsphinx``) or a model folder. Returns a
        :class:`vqalign.align.sphinx.SphinxAligner` (same ``align(y, text, sr=...)``)."""
        from vqalign.align.sphinx import SphinxAligner  # noqa: PLC0415
        return SphinxAligner(model)

    def __repr__(self):
        fitted = "fitted" if self.model_ is not None else "not fitted"
        return (f"Aligner(unit={self.unit!r}, n_codes={self.n_codes}, "
                f"states_per_unit={self.states_per_unit}, hop_length={self.hop_length}; "
                f"{fitted})")


def align(audio, transcript, *, sr=None, unit="phones", **aligner_kwargs):
    """Align one utterance with a model self-trained on it (see :class:`Aligner`).

    Parameters
    ----------
    audio : ndarray, shape (n_samples,), or str or Path
    transcript : str
    sr : int, optional
        Required with an array.
    unit : {"phones", "chars"}
    **aligner_kwargs
        Other :class:`Aligner` parameters.

    Returns
    -------
    vqalign.align.alignment.Alignment
    """
    return Aligner(unit=unit, **aligner_kwargs).align(audio, transcript, sr=sr)
