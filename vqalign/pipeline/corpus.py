"""``align-corpus`` as resumable stages over the feature store.

    features -> codebook -> em -> align

``features``  the corpus's aligner features (39-D MFCC + deltas, CMVN, and the raw
              c0 as a side column) written into the memory-mapped store
              ``OUT/store`` on the scheduler (:func:`vqalign.io.store.write_store`).
``codebook``  LBG (:func:`vqalign.lbg.lbg`) over the store's memmap, with the
              settings the aligner was tuned with; ``OUT/codebook.npz``.
``em``        tied-mixture EM from the codebook, streamed from the store
              (:class:`vqalign.pipeline.em.StreamingEM`): every pass maps an E-step
              over tasks of whole utterances on the scheduler and sums their additive
              statistics on the driver, which runs the M-step; every iteration's model
              is written to ``OUT/em/`` and recorded, so a killed run resumes at the
              last finished iteration. The model kept is ``OUT/aligner.npz``.
``align``     Viterbi with the saved model, in chunks of utterances on the
              scheduler; each worker reads its chunk from the store, writes each
              utterance's outputs atomically, and every finished chunk is recorded.

Every stage's result is written atomically and recorded in ``OUT/stages.json``
(:class:`vqalign.pipeline.records.StageRecords`) with the run's settings and inputs,
so a run killed at any point resumes at the last finished stage or chunk, and a
later run with other settings is refused. ``from_stage`` redoes a stage and all
that follows it. Finished alignments are never replaced without ``overwrite``.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign.align import recipe
from vqalign.align.aligner import Aligner
from vqalign.align.utterance import Tokens, Utterance, oov_warning, tokenize, too_short_message
from vqalign.exceptions import ParameterError, RunWriteError, VQAlignError
from vqalign.features.frontend import FEATURE_SR
from vqalign.io.atomic import atomic_write
from vqalign.pipeline.records import StageRecords, file_digest, inputs_identity, stable_hash
from vqalign.pipeline.runtime import WORKER_CACHE, open_store_cached, say, write_error

STAGES = ("features", "codebook", "em", "align")
STORE_DIR = "store"
CODEBOOK_FILE = "codebook.npz"
MODEL_FILE = "aligner.npz"
CHUNK_SIZE = 32


# --------------------------------------------------------------------------- store-backed aligner
@dataclass(frozen=True, eq=False)
class StoreRef:
    """Stands for an utterance's audio: its features are read from the store.

    ``tokens`` (words, units per word, OOV words), tokenized once on the driver,
    spare the workers the lexicon (loading CMUdict costs seconds per process).
    """

    uid: str
    tokens: tuple | None = None
    #: the audio file (read only when a small corpus's alignment needs the waveform)
    audio: str | None = None


class StoreAligner(Aligner):
    """Today's :class:`Aligner`, fed with features read from a feature store.

    Only the preparation step differs (its :meth:`prepare` hook): instead of
    computing the front end from audio, the utterance's frames, loudness and duration
    come from the store (written with the same front end, ``recipe="aligner"``).
    Training, decoding and the saved model are the Aligner's own.
    """

    #: the feature store the utterances' frames are read from (:meth:`attach`)
    store = None

    def attach(self, store):
        """Read the frames of :class:`StoreRef` utterances from ``store``; returns self."""
        self.store = store
        return self

    def prepare(self, y, sr, text, name=None, lexicon=None, cache=None, *,
                tokens=None, own_audio=False) -> Utterance:
        """:meth:`Aligner.prepare`, or for a :class:`StoreRef` ``y`` the utterance read
        from the store."""
        if not isinstance(y, StoreRef):
            return super().prepare(y, sr, text, name, lexicon, cache, tokens=tokens,
                                   own_audio=own_audio)
        st = self.store
        hop = float(st.settings["hop_length"])
        if abs(hop - self.hop_) > 1e-12:
            from vqalign.io.store import describe_settings
            raise ParameterError(
                f"the feature store {st.path} was written with {describe_settings(st.settings)}"
                f" but the model expects the aligner recipe at {1000 * self.hop_:g} ms hop; "
                "write the store with the model's settings (vqalign features --recipe aligner "
                f"--hop {self.hop_:g}) or use another store")
        if y.tokens is not None:
            words, units, oov = y.tokens
            tokens = Tokens(list(words), [list(u) for u in units], self.unit, list(oov))
        else:
            tokens = tokenize(text, self.unit, lexicon, self.oov)
        warn = st.warnings(y.uid)
        msg = oov_warning(tokens)
        if msg is not None:
            warn.append(msg)
        # read, not mapped: a worker aligning its share of the corpus keeps no pages
        X, side = st.read_rows(*st.span(y.uid))
        energy = np.ascontiguousarray(side[:, st.extra_names.index("energy")])
        key = ("store", y.uid, self.hop_) if cache is not None else None
        return Utterance(X, energy, tokens, st.duration(y.uid), int(st.settings["sr"]),
                         name or y.uid, warn, None, key, source=y.audio)


def aligner_hop(unit: str) -> float:
    """The hop a corpus-trained Aligner of ``unit`` works at (5 ms phones, 10 ms chars)."""
    return recipe.default_hop(unit, trained=True)


# --------------------------------------------------------------------------- worker caches
def _load_model_cached(model_path, digest, lexicon, store):
    key = ("model", str(model_path), digest, lexicon)
    a = WORKER_CACHE.get(key)
    if a is None:
        a = StoreAligner.load(model_path)
        if lexicon is not None:
            a.lexicon = lexicon
        a.n_jobs = 1
        WORKER_CACHE[key] = a
    return a.attach(store)


def _align_chunk(task):
    """Worker task: align a chunk of utterances from the store, write their outputs.

    Returns ``[(uid, stage_or_None, reason, n_frames, path_score)]``; a write error
    (disk full) is returned as stage ``"write-error"`` with the path and stops the run.
    """
    from vqalign.align.alignment import add_quality_warnings

    store_path, model_path, digest, lexicon, items = task
    store = open_store_cached(store_path)
    aligner = _load_model_cached(model_path, digest, lexicon, store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = aligner.align_many([(StoreRef(uid, tokens, audio), FEATURE_SR, "")
                                      for uid, tokens, audio, _ in items], n_jobs=1)
    out = []
    for (uid, _, audio, outputs), res in zip(items, results):
        if isinstance(res, BaseException):
            out.append((uid, "alignment", f"{type(res).__name__}: {res}", 0, 0.0))
            continue
        res.audio = audio
        add_quality_warnings(res)
        try:
            for path, fmt in outputs:
                res.write(path, overwrite=True, format=fmt)
        except OSError as exc:
            out.append((uid, "write-error", f"{exc.filename or path}\t{exc.strerror or exc}",
                        0, 0.0))
            return out
        except VQAlignError as exc:
            out.append((uid, "writing", str(exc), 0, 0.0))
            continue
        n = store.span(uid)
        out.append((uid, None, None, n[1] - n[0], float(res.diagnostics.get("path_score", 0.0))))
    return out


# --------------------------------------------------------------------------- the run
@dataclass
class CorpusReport:
    aligned: int = 0
    skipped: int = 0
    failures: list = field(default_factory=list)
    summaries: list = field(default_factory=list)
    failures_path: Path | None = None
    seconds: float = 0.0


def run_corpus(corpus, out_dir, *, unit="phones", jobs=2, scheduler="local", overwrite=False,
               from_stage=None, lexicon=None, oov="g2p", formats=("textgrid",), n_codes=256,
               n_iter=30, store_dir=None, chunk_size=CHUNK_SIZE, progress=None,
               quiet=False) -> CorpusReport:
    """Run (or resume) the stages on a corpus folder; see the module docstring.

    Returns a :class:`CorpusReport` (aligned count, failures, one summary per stage).
    Raises ParameterError for bad arguments, a folder holding another run's work, or
    a store with other feature settings; RunWriteError / StoreWriteError (naming
    the path) when the disk is full or a folder is not writable.
    """
    from vqalign.align.corpus import Failure, output_paths, pair_corpus, parse_formats
    from vqalign.align.text import read_transcript, tokenize_transcript
    from vqalign.pipeline.schedulers import get_scheduler

    formats = parse_formats(formats)
    if from_stage is not None and from_stage not in STAGES:
        raise ParameterError(f"--from-stage {from_stage!r} is not a stage; use one of "
                             f"{', '.join(STAGES)}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ParameterError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if lexicon is not None:
        from vqalign.align.lexicon import Lexicon
        Lexicon.from_file(lexicon)  # a bad lexicon stops the run before any work
        lexicon = str(Path(lexicon).resolve())
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} exists and is not a folder")
    if progress is None:
        progress = sys.stderr.isatty() and not quiet
    store_path = Path(store_dir) if store_dir is not None else out / STORE_DIR
    report = CorpusReport()

    items, failures = pair_corpus(corpus, exclude=[out, store_path])
    texts, ok = {}, []
    oov_words: dict = {}
    for it in items:
        try:
            text = read_transcript(it.transcript)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tr = tokenize_transcript(text, unit=unit, lexicon=lexicon, oov=oov)
        except VQAlignError as exc:
            failures.append(Failure(it.id, str(it.transcript), "transcript", str(exc)))
            continue
        for w in tr.oov:
            oov_words.setdefault(w, tr.units[tr.words.index(w)])
        texts[it.id] = (tuple(tr.words), tuple(tuple(u) for u in tr.units), tuple(tr.oov))
        ok.append(it)
    if oov_words:
        shown = ", ".join(f"{w} /{' '.join(p)}/" for w, p in list(oov_words.items())[:30])
        more = f" and {len(oov_words) - 30} more" if len(oov_words) > 30 else ""
        say(f"{len(oov_words)} word(s) not in the lexicon, pronounced by letter-to-sound "
             f"rules: {shown}{more} (give exact pronunciations with --lexicon FILE)", quiet)

    hop = aligner_hop(unit)
    from vqalign.io.store import aligner_settings
    feat = {k: v for k, v in aligner_settings(hop).items() if k != "vqalign_version"}
    lex_id = file_digest(lexicon) if lexicon else None
    settings = {"unit": unit, "n_codes": n_codes, "n_iter": n_iter, "oov": oov,
                "lexicon": lex_id, "random_state": 0, "features": stable_hash(feat),
                "hop_length": hop}
    inputs = inputs_identity([(it.id, it.audio, it.transcript) for it in items])

    try:
        out.mkdir(parents=True, exist_ok=True)
        records = StageRecords(out, STAGES)
        finished_outputs = [p for it in ok for p in output_paths(it, out, formats)
                            if p.exists()]
        if overwrite or from_stage is not None:
            if finished_outputs and not overwrite:
                raise ParameterError(
                    f"--from-stage {from_stage} would replace {len(finished_outputs)} finished "
                    f"alignment file(s) in {out} (e.g. {finished_outputs[0]}); add --overwrite "
                    "to replace them, or use another --out")
            records.invalidate_from(from_stage or "features")
        else:
            records.check_identity(settings, inputs)
        records.set_identity(settings, inputs)
    except OSError as exc:
        raise write_error(getattr(exc, "filename", None) or out, exc) from None

    redo_features = overwrite or from_stage == "features"
    t_run = time.perf_counter()
    try:
        with get_scheduler(scheduler, jobs) as sched:
            store, feat_fail = _features_stage(ok, store_path, hop, sched, records, report,
                                               redo=redo_features, progress=progress,
                                               quiet=quiet)
            failures.extend(Failure(uid, path, "features", reason)
                            for uid, path, reason in feat_fail)
            train = [it for it in ok if it.id in store]
            if train:
                cb = _codebook_stage(store, train, out, records, report, n_codes=n_codes,
                                     quiet=quiet)
                model_path, digest, _ = _em_stage(
                    store, train, texts, cb, out, records, report, sched, unit=unit,
                    n_codes=n_codes, n_iter=n_iter, lexicon=lexicon, oov=oov, jobs=jobs,
                    progress=progress, quiet=quiet)
                _align_stage(store, train, texts, out, formats, model_path, digest, lexicon,
                             sched, records, report,
                             overwrite=overwrite or from_stage is not None,
                             chunk_size=chunk_size, progress=progress, quiet=quiet)
    except OSError as exc:  # e.g. stages.json on a full disk: name the path, keep the rest
        raise write_error(getattr(exc, "filename", None) or out, exc) from None
    failures.extend(report.failures)
    report.failures = failures
    from vqalign.align.corpus import write_failures
    try:
        report.failures_path = write_failures(out, failures)
    except OSError as exc:
        raise write_error(out / "failures.tsv", exc) from None
    report.seconds = time.perf_counter() - t_run
    return report


# --------------------------------------------------------------------------- stages
def _features_stage(ok, store_path, hop, sched, records, report, *, redo, progress, quiet):
    from vqalign.io.store import open_store, write_store

    t0 = time.perf_counter()
    rec = records.get("features")
    ids = [it.id for it in ok]
    if not ok:
        return _EmptyStore(), []
    if records.is_finished("features") and not redo:
        try:
            store = open_store(store_path)
            if [u["id"] for u in store.utterances] == [i for i in ids if i not in
                                                       {f[0] for f in rec["failed"]}]:
                line = (f"features: reused {len(store)} utterances, {store.n_frames} frames "
                        f"(finished earlier), failed {len(rec['failed'])}")
                report.summaries.append(line)
                say(line, quiet)
                return store, [tuple(f) for f in rec["failed"]]
        except VQAlignError:
            pass
    try:
        store = write_store([str(it.audio) for it in ok], store_path, recipe="aligner",
                            hop_length=hop, ids=ids, scheduler=sched, resume=not redo,
                            progress=progress)
    except ParameterError as exc:
        if "all" in str(exc) and "files failed" in str(exc):
            by_path = {str(Path(it.audio).resolve()): it.id for it in ok}
            fails = []
            import json
            fj = store_path / "failed.json"
            for d in json.loads(fj.read_text()) if fj.is_file() else []:
                fails.append((by_path.get(str(Path(d["path"]).resolve()), d["path"]),
                              d["path"], d["reason"]))
            records.finish("features", failed=fails, n_utterances=0, n_frames=0)
            return _EmptyStore(), fails
        raise
    by_path = {str(Path(it.audio).resolve()): it.id for it in ok}
    fails = [(by_path.get(str(Path(p).resolve()), p), p, r) for p, r in store.failed]
    records.finish("features", failed=fails, n_utterances=len(store), n_frames=store.n_frames,
                   seconds=round(time.perf_counter() - t0, 3),
                   index=file_digest(store_path / "index.json"))
    dt = time.perf_counter() - t0
    line = (f"features: {len(store)} utterances ({store.n_computed} computed, "
            f"{store.n_reused} reused), {store.n_frames} frames, {dt:.1f} s, "
            f"failed {len(fails)}")
    report.summaries.append(line)
    say(line, quiet)
    return store, fails


class _EmptyStore:
    def __contains__(self, uid):
        return False


def _train_rows(store, train):
    """The store rows of the training utterances (all of the store in the usual case)."""
    ids = [it.id for it in train]
    if ids == [u["id"] for u in store.utterances]:
        return store.X
    return np.concatenate([store[i] for i in ids])


def _codebook_stage(store, train, out, records, report, *, n_codes, quiet):
    import json

    from vqalign._validation import check_random_state

    path = out / CODEBOOK_FILE
    rec = records.get("codebook")
    if records.is_finished("codebook") and path.is_file() and file_digest(path) == rec.get(
            "digest"):
        with np.load(path) as z:
            cb = np.asarray(z["codebook"], np.float32)
        line = f"codebook: reused K={cb.shape[0]} from {path} (finished earlier)"
        report.summaries.append(line)
        say(line, quiet)
        return cb
    t0 = time.perf_counter()
    X = _train_rows(store, train)
    # the aligner's own codebook size and recipe, and the seed Aligner.fit draws for it
    # (random_state=0), run on the store's memmap
    n = recipe.corpus_codes(n_codes, X.shape[0])
    K = recipe.codebook_size(n, X.shape[0])
    say(f"codebook: LBG K={K} over {X.shape[0]} frames x {X.shape[1]} from the store ...",
        quiet)
    cb = recipe.lbg_codebook(X, K, recipe.draw_seed(check_random_state(0)))
    store.release()
    header = {"format": "vqalign.codebook", "K": int(cb.shape[0]), "random_state": 0,
              "method": "lbg (vqalign.align.Aligner's recipe)", "features": store.settings}
    try:
        with atomic_write(path, "wb", overwrite=True) as fh:
            np.savez(fh, codebook=cb, header=np.array(json.dumps(header)))
    except OSError as exc:
        raise write_error(path, exc) from None
    dt = time.perf_counter() - t0
    records.finish("codebook", digest=file_digest(path), K=int(K), seconds=round(dt, 3))
    line = f"codebook: K={K} from {X.shape[0]} frames, {dt:.1f} s"
    report.summaries.append(line)
    say(line, quiet)
    return cb


def _em_stage(store, train, texts, cb, out, records, report, sched, *, unit, n_codes, n_iter,
              lexicon, oov, jobs, progress, quiet):
    """EM stage: :class:`vqalign.pipeline.em.StreamingEM` over the store, every
    iteration recorded; the model it keeps is copied to ``OUT/aligner.npz``."""
    import shutil

    from vqalign.pipeline.em import StreamingEM

    path = out / MODEL_FILE
    rec = records.get("em")
    if records.is_finished("em") and path.is_file() and file_digest(path) == rec.get("digest"):
        line = f"em: reused the model in {path} (finished earlier)"
        report.summaries.append(line)
        say(line, quiet)
        return path, rec["digest"], [tuple(x) for x in rec.get("skipped", [])]
    t0 = time.perf_counter()
    kwargs = {"unit": unit, "n_codes": n_codes, "n_iter": n_iter, "oov": oov, "n_jobs": jobs,
              "codebook": cb}
    if lexicon is not None:
        kwargs["lexicon"] = lexicon
    aligner = StoreAligner(**kwargs)
    aligner.check_params(training=True)
    # utterances whose transcript needs more states than they have frames
    items, skipped = [], []
    for it in train:
        a, b = store.span(it.id)
        n_states = aligner.n_states(texts[it.id][1])
        if n_states > b - a:
            skipped.append((it.id, str(it.audio), "training",
                            too_short_message(n_states, b - a, aligner.hop_)))
        else:
            items.append((it.id, texts[it.id][1]))
    if not items:
        raise ParameterError("no utterance can be trained on: every transcript is longer "
                             f"than its audio allows (e.g. {skipped[0][3]})")
    n_frames = int(sum(store.span(u)[1] - store.span(u)[0] for u, _ in items))
    say(f"em: training on {len(items)} utterances ({n_frames} frames) streamed from the "
         "store ...", quiet)
    em = StreamingEM(aligner, store, items, out, records, sched, progress=progress,
                     quiet=quiet, sources={it.id: (str(it.audio), texts[it.id][0])
                                           for it in train})
    best_path, best_digest, ll, start, n_done, fails = em.run()
    try:
        with atomic_write(path, "wb", overwrite=True) as fh, open(best_path, "rb") as src:
            shutil.copyfileobj(src, fh)
    except OSError as exc:
        raise write_error(path, exc) from None
    dt = time.perf_counter() - t0
    digest = file_digest(path)
    where = {it.id: str(it.audio) for it in train}
    skipped += [(uid, where.get(uid, ""), "training", msg) for uid, msg in fails]
    records.finish("em", digest=digest, iterations=n_done, start=start, log_likelihood=ll,
                   seconds=round(dt, 3), skipped=[list(s) for s in skipped])
    line = (f"em: {len(items)} utterances, {n_frames} frames, {len(em.tasks)} tasks, "
            f"{start} flat start, {n_done} iterations, log-likelihood/frame {ll:.3f}, "
            f"{dt:.1f} s, skipped {len(skipped)}")
    report.summaries.append(line)
    say(line, quiet)
    return path, digest, skipped


def _align_stage(store, train, texts, out, formats, model_path, digest, lexicon, sched,
                 records, report, *, overwrite, chunk_size, progress, quiet):
    from tqdm import tqdm

    from vqalign.align.corpus import Failure, output_paths

    t0 = time.perf_counter()
    done_chunks = records.chunks("align")
    tasks, keys, earlier = [], [], []
    for start in range(0, len(train), chunk_size):
        chunk = train[start:start + chunk_size]
        key = f"{start // chunk_size}:{stable_hash([digest, [it.id for it in chunk]])}"
        rec = done_chunks.get(key)
        if rec is not None and all(p.exists() for it in chunk if it.id in rec["aligned"]
                                   for p in output_paths(it, out, formats)):
            earlier.append(rec)
            continue
        work = []
        for it in chunk:
            outs = output_paths(it, out, formats)
            if not overwrite and all(p.exists() for p in outs):
                report.skipped += 1
                continue
            work.append((it.id, texts[it.id], str(it.audio),
                         [(str(p), f) for p, f in zip(outs, formats)]))
        if work:
            tasks.append((str(store.path), str(model_path), digest, lexicon, work))
            keys.append(key)
    for rec in earlier:
        report.skipped += len(rec["aligned"])
        report.failures.extend(Failure(*f) for f in rec["failures"])
    n_work = sum(len(t[4]) for t in tasks)
    frames, score = 0, 0.0
    write_err = []
    bar = tqdm(total=n_work, desc="align", unit="utt", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    paths = {it.id: str(it.audio) for it in train}

    def on_result(i, results):
        nonlocal frames, score
        aligned, fails = [], []
        for uid, stage, reason, n, sc in results:
            if stage == "write-error":
                write_err.append(reason)
            elif stage is None:
                aligned.append(uid)
                frames += n
                score += sc
            else:
                fails.append([uid, paths[uid], stage, reason])
        bar.update(len(results))
        if write_err:
            return
        report.aligned += len(aligned)
        report.failures.extend(Failure(*f) for f in fails)
        records.finish_chunk("align", keys[i], aligned=aligned, failures=fails)

    try:
        sched.map(_align_chunk, tasks, on_result=on_result)
    finally:
        bar.close()
    if write_err:
        path, msg = write_err[0].split("\t", 1)
        raise write_error(path, OSError(0, msg, path))
    records.finish("align", aligned=report.aligned)
    dt = time.perf_counter() - t0
    ll = f", Viterbi path score/frame {score / frames:.3f}" if frames else ""
    line = (f"align: {n_work} utterances aligned in this run ({len(earlier)} chunks finished "
            f"earlier), {frames} frames{ll}, {dt:.1f} s, failed "
            f"{sum(1 for f in report.failures if f.stage in ('alignment', 'writing'))}")
    report.summaries.append(line)
    say(line, quiet)


__all__ = ["run_corpus", "CorpusReport", "RunWriteError", "StoreAligner", "StoreRef", "STAGES", "aligner_hop"]
