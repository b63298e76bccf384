"""Tied-mixture EM streamed from the feature store, one recorded step per iteration.

The corpus never sits in memory: the training utterances are cut once into tasks of
about :data:`TASK_FRAMES` frames (whole utterances, in store order). Every pass over
the corpus maps a task function over them on the scheduler (worker processes or a
Dask cluster); each task reads its rows from the store file, selects each frame's
top-n Gaussians under the current model and returns additive statistics; the driver
sums them in task order (so the sums do not depend on which worker finished first)
and updates the model.

    em-base     Gaussians from the codebook (DiagGMM.from_codebook on evenly spaced
                store frames) and the emission columns of the corpus's symbols;
    init pass   histograms of each frame's best Gaussian over the quiet frames (the
                quietest 15 % of each utterance) and over the others, frame and
                state counts: the flat start (vqalign.align.recipe's schedule);
    em-S-i      iteration i of flat start S: E-step statistics (weights, transitions,
                every ``update_gaussians`` steps the Gaussians' moments) summed,
                M-step on the driver, the model written atomically.

Every model is written to ``OUT/em/`` and recorded (with its digest) in
``stages.json`` as a chunk of the ``em`` stage before the next step starts. Every
step starts from the model *file* of the step before, in the driver and in the
workers alike, so a run killed at any point and started again continues from the
last recorded step and ends with the very model of an uninterrupted run.
"""

from __future__ import annotations

import operator
import time
import warnings
from pathlib import Path

import numpy as np

from vqalign.align import corpus_start as CS
from vqalign.align import recipe
from vqalign.align.aligner import Aligner
from vqalign.exceptions import AlignmentError, VQAlignError
from vqalign.io.atomic import atomic_write
from vqalign.pipeline import runtime
from vqalign.pipeline.runtime import open_store_cached, write_error

#: frames per E-step task (about 23 MB of 39-D float32 features)
TASK_FRAMES = 150_000
EM_DIR = "em"

_MODELS: dict = {}


# --------------------------------------------------------------------------- worker side
def _load_model(path, digest):
    """The TiedMixtureHMM saved at ``path`` (cached per process by digest)."""
    key = (str(path), digest)
    m = _MODELS.get(key)
    if m is None:
        _MODELS.clear()
        m = _MODELS[key] = Aligner.load(path).model_
    return m


def _read_task(store, uids):
    """(X (N, D) float32, energy (N,), frame_off (U+1,)) of ``uids``, read from the file."""
    spans = [store.span(u) for u in uids]
    offs = np.zeros(len(uids) + 1, np.int64)
    offs[1:] = np.cumsum([b - a for a, b in spans])
    if all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1)):
        X, side = store.read_rows(spans[0][0], spans[-1][1])
    else:
        parts = [store.read_rows(a, b) for a, b in spans]
        X = np.concatenate([p[0] for p in parts])
        side = np.concatenate([p[1] for p in parts])
    energy = side[:, store.extra_names.index("energy")]
    return np.ascontiguousarray(X), np.ascontiguousarray(energy), offs


def _gmm_key(gmm) -> str:
    """A digest of the Gaussians (which selection a frame's top-n list belongs to)."""
    import hashlib
    h = hashlib.sha256()
    for a in (gmm.means_, gmm.variances_):
        h.update(np.ascontiguousarray(a, np.float64).tobytes())
    return h.hexdigest()[:16]


def _sel_paths(sel_dir, k, key):
    d = Path(sel_dir)
    return d / f"task-{k:05d}-cand.npy", d / f"task-{k:05d}-{key}.npz"


def _index_dtype(n_components):
    return np.int16 if n_components <= np.iinfo(np.int16).max else np.int32


def _save_npy(path, arr):
    from vqalign.io.atomic import atomic_write
    with atomic_write(path, "wb", overwrite=True) as fh:
        np.save(fh, arr)


def _selection(model, X, sel_dir, k):
    """The task's Selection under ``model``'s Gaussians, as the in-memory fit keeps it:
    each frame's top-3n candidates are taken once under the first Gaussians (written by
    :func:`init_task`) and re-scored exactly under the current ones; the result is kept
    on disk, named by the Gaussians' digest, for the iterations until they change. A
    selection is thus a pure function of (candidates, Gaussians): a resumed or
    distributed run gets the very one of an uninterrupted local run."""
    from vqalign.hmm.train import Selection

    key = _gmm_key(model.gmm_)
    cpath, spath = _sel_paths(sel_dir, k, key)
    if spath.is_file():
        try:
            with np.load(spath) as z:
                idx, val = z["idx"], z["val"]
            if idx.shape[0] == X.shape[0]:
                return Selection.from_loglik(idx, val)
        except (OSError, ValueError, KeyError):
            pass  # a damaged file is recomputed
    cand = np.load(cpath)
    if cand.shape[0] != X.shape[0]:
        raise VQAlignError(f"{cpath} does not match its task ({cand.shape[0]} rows, "
                           f"{X.shape[0]} frames); re-run with --from-stage em")
    idx, val = model.gmm_.rescore(X, cand, min(model.top_n, model.gmm_.n_components))
    from vqalign.io.atomic import atomic_write
    with atomic_write(spath, "wb", overwrite=True) as fh:
        np.savez(fh, idx=idx.astype(_index_dtype(model.gmm_.n_components)), val=val)
    for old in Path(sel_dir).glob(f"task-{k:05d}-*.npz"):
        if old != spath:
            old.unlink(missing_ok=True)
    return Selection.from_loglik(idx, val)


def init_task(task):
    """Worker: the task's top-3n Gaussian candidates under the first Gaussians (written
    to the selection folder) and its flat-start counts (quiet / speech best-Gaussian
    histograms, frames, utterances, non-silence states)."""
    from vqalign.hmm.threads import threads

    store_path, model_path, digest, items, sel_dir, k = task
    store = open_store_cached(store_path)
    model = _load_model(model_path, digest)
    X, energy, offs = _read_task(store, [u for u, _ in items])
    quiet = (np.concatenate(recipe.quiet_masks(energy, offs, recipe.QUIET_QUANTILE)) if items
             else np.zeros(0, bool))
    gmm = model.gmm_
    Kc = gmm.n_components
    with threads(1):
        cand, _ = gmm.top_n_components(X, min(3 * min(model.top_n, Kc), Kc))
    cpath, _ = _sel_paths(sel_dir, k, "")
    cpath.parent.mkdir(parents=True, exist_ok=True)
    _save_npy(cpath, cand.astype(_index_dtype(Kc)))
    sil, sp = model.quiet_counts(cand[:, 0], quiet)
    batch = model.batch([units for _, units in items])
    return {"silence": sil, "speech": sp, "n_frames": int(X.shape[0]),
            "n_utterances": len(items), "n_speech": int(np.count_nonzero(~batch.skippable)),
            "n_quiet": int(quiet.sum())}


def sphinx_task(task):
    """Worker: the Sphinx model's phone segmentation of each utterance of a task, in its
    own frames (:func:`vqalign.align.corpus_start.segments`), its audio read and
    prepared again with the run's settings; a list with, per utterance, its segments or
    None (no audio, unreadable, another frame count than the store's, not aligned)."""
    from vqalign.align.utterance import Tokens, load_audio

    settings, _, _, items = task
    a = Aligner(unit=settings["unit"], hop_length=settings["hop"])
    a.check_params(training=True)
    a.dither_ = settings["dither"]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for uid, audio, words, units, n_frames in items:
            q = None
            if audio is not None:
                try:
                    y, sr = load_audio(audio)
                    tok = Tokens(list(words), [list(w) for w in units], a.unit, [])
                    q = a.prepare(y, sr, None, uid, tokens=tok)
                except VQAlignError:
                    q = None
            segs, missed = CS.segments([q], np.array([0, n_frames]), a.hop_)
            out.append(None if missed else segs)
    return out


def estep_task(task):
    """Worker: the E-step statistics of one task under the model file given."""
    from vqalign.hmm.threads import threads

    store_path, model_path, digest, items, sel_dir, k, gaussian_stats = task
    store = open_store_cached(store_path)
    model = _load_model(model_path, digest)
    X, _, offs = _read_task(store, [u for u, _ in items])
    with threads(1):
        sel = _selection(model, X, sel_dir, k)
        batch = model.batch([units for _, units in items])
        stats = model.estep(X, offs, batch, sel, gaussian_stats=gaussian_stats,
                            names=[u for u, _ in items])
    stats.status = stats.cells = None
    return stats


def _add_init(a, b):
    return {k: a[k] + b[k] for k in a}


# --------------------------------------------------------------------------- driver side
def plan_tasks(store, items, max_frames=None):
    """``items`` ((uid, units) in store order) cut into tasks of whole utterances of at
    most ``max_frames`` (default :data:`TASK_FRAMES`) frames each (an utterance longer
    than that is a task alone)."""
    max_frames = TASK_FRAMES if max_frames is None else int(max_frames)
    tasks, cur, n = [], [], 0
    for uid, units in items:
        a, b = store.span(uid)
        if cur and n + (b - a) > max_frames:
            tasks.append(cur)
            cur, n = [], 0
        cur.append((uid, units))
        n += b - a
    if cur:
        tasks.append(cur)
    return tasks


class StreamingEM:
    """The ``em`` stage of :func:`vqalign.pipeline.corpus.run_corpus`.

    ``aligner``: an unfitted :class:`vqalign.align.Aligner` with the run's settings
    (and the codebook); ``items``: (uid, units) of the training utterances in store
    order; ``records``: the run's :class:`StageRecords`.
    """

    def __init__(self, aligner, store, items, out, records, sched, *, progress=False,
                 quiet=False, say=None, sources=None):
        self.aligner = aligner
        #: uid -> (audio file, words): an English corpus's Sphinx start reads the audio
        self.sources = sources or {}
        self.store = store
        self.items = items
        self.dir = Path(out) / EM_DIR
        self.records = records
        self.sched = sched
        self.progress = progress
        self.quiet = quiet
        self.say = say or runtime.say
        self.tasks = plan_tasks(store, items)
        self.sel_dir = self.dir / "selection"
        #: seconds of training audio: the starts run (MULTI_START_S), kept in every model
        self.seconds = float(sum(store.duration(u) for u, _ in items))

    # ---------------------------------------------------------------- files
    def _save(self, name, model, history):
        from vqalign.pipeline.records import file_digest

        a = self.aligner.set_model(model, history=history, train_seconds=self.seconds)
        path = self.dir / f"{name}.npz"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            a.save(path, overwrite=True)
        except OSError as exc:
            raise write_error(path, exc) from None
        return path, file_digest(path)

    def _recorded(self, name):
        """(path, digest, record) of a step recorded earlier whose file is intact."""
        from vqalign.pipeline.records import file_digest

        rec = self.records.chunks("em").get(name)
        path = self.dir / f"{name}.npz"
        if rec is None or not path.is_file() or file_digest(path) != rec.get("digest"):
            return None
        return path, rec["digest"], rec

    def _finish(self, name, path, digest, **info):
        self.records.finish_chunk("em", name, digest=digest, **info)

    def _map(self, fn, tasks, reduce, desc):
        import sys

        from tqdm import tqdm

        bar = tqdm(total=sum(len(t[3]) for t in tasks), desc=desc, unit="utt",
                   disable=not self.progress, file=sys.stderr, dynamic_ncols=True,
                   leave=False)
        try:
            return self.sched.map_reduce(fn, tasks, reduce,
                                         on_result=lambda i, r: bar.update(len(tasks[i][3])))
        finally:
            bar.close()

    # ---------------------------------------------------------------- the stage
    def base(self):
        """The model before any data pass: Gaussians and emission columns (the
        Aligner's :meth:`~vqalign.align.Aligner.new_model` on its codebook)."""
        got = self._recorded("base")
        if got is not None:
            return got[:2]
        a = self.aligner
        # the evenly spaced frames recipe.gaussians would take, read here so that only
        # they are checked and held (the same Gaussians as passing every frame)
        X = self.store.X
        if X.shape[0] > recipe.GMM_FRAMES:
            from vqalign.lbg import take_rows
            X = take_rows(X, np.linspace(0, X.shape[0] - 1,
                                         recipe.GMM_FRAMES).astype(np.int64))
        model = a.new_model(X, None, corpus=True)   # the codebook given: no rng drawn
        syms = sorted({s for _, units in self.items for w in units for s in w})
        model.init_inventory(model.gmm, syms)
        path, digest = self._save("base", model, None)
        self._finish("base", path, digest)
        return path, digest

    def flat_start_counts(self, base_path, base_digest):
        from vqalign.pipeline.records import stable_hash

        plan = stable_hash([[t[0][0], t[-1][0], len(t)] for t in self.tasks])
        rec = self.records.chunks("em").get("init")
        if rec is not None and rec.get("base") == base_digest and rec.get("plan") == plan \
                and all(_sel_paths(self.sel_dir, k, "")[0].is_file()
                        for k in range(len(self.tasks))):
            c = rec["counts"]
            return {k: (np.asarray(v, np.int64) if isinstance(v, list) else v)
                    for k, v in c.items()}
        tasks = [(str(self.store.path), str(base_path), base_digest, t, str(self.sel_dir), k)
                 for k, t in enumerate(self.tasks)]
        c = self._map(init_task, tasks, _add_init, "em flat start")
        self.records.finish_chunk("em", "init", base=base_digest, plan=plan, counts={
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in c.items()})
        return c

    def run(self):
        """Train from every flat start; returns ``(path, digest, log-likelihood per
        frame, start, iterations, failures)`` of the start kept: the only one, or (a
        small corpus) the one with the highest final log-likelihood per frame less
        LOUD_SILENCE_COST times its loud frames in silence (:func:`vqalign.align.recipe.
        start_score`), as :func:`vqalign.align.recipe.train`."""
        base_path, base_digest = self.base()
        counts = self.flat_start_counts(base_path, base_digest)
        # the recipe's starts in corpus mode, in its order; English with the Sphinx model:
        # its segmentation alone (vqalign.align.corpus_start)
        starts = recipe.corpus_starts(self.seconds, self.aligner.unit)
        segs = self.sphinx_segments() if CS.wanted(self.aligner) and self.sources else None
        if segs:
            starts = ["sphinx"]
        # a small corpus's frames, read whole once for the broad start and the scores
        frames = (_read_task(self.store, [u for u, _ in self.items])
                  if len(starts) > 1 else None)
        results = []
        for start in starts:
            model = Aligner.load(base_path).model_
            model.init_self_loop = recipe.SHORT_SELF_LOOP if start == "short" else None
            model.init_inventory(model.gmm_, model.symbols_)
            model.init_weights(counts["silence"], counts["speech"])
            if start != "short":
                model.init_durations(counts["n_frames"], counts["n_utterances"],
                                     counts["n_speech"], recipe.QUIET_QUANTILE)
            if start == "broad":
                self._broad_start(model, *frames)
            if start == "sphinx":
                CS.seed(segs)[1](model, self._best(int(counts["n_frames"])))
            results.append(self._train(start, model))
        if len(results) == 1:
            return results[0]
        # as recipe.train: final log-likelihood per frame less the cost of loud frames put
        # in silence
        X, energy, offs = frames
        words = [units for _, units in self.items]
        scores = []
        for r in results:
            model = Aligner.load(r[0]).model_
            score, loud = recipe.start_score(r[2], model, X, offs, energy, words)
            scores.append(score)
            self.say(f"em {r[3]}: log-likelihood/frame {r[2]:.4f}, loud frames in silence "
                     f"{100 * loud:.2f} %, score {scores[-1]:.4f}", self.quiet)
        return results[int(np.argmax(scores))]

    def _best(self, n_frames):
        """Every training frame's best first Gaussian (its first candidate in the
        selection folder), in store order, as a selection of one candidate per frame
        (``idx`` (n_frames, 1)); an error when the folder holds another count of frames."""
        from types import SimpleNamespace

        best = np.concatenate([np.load(_sel_paths(self.sel_dir, k, "")[0])[:, 0]
                               for k in range(len(self.tasks))]).astype(np.int64)
        if best.shape[0] != n_frames:
            raise VQAlignError(f"the selection folder {self.sel_dir} does not match the "
                               "training frames; re-run with --from-stage em")
        return SimpleNamespace(idx=best[:, None])

    def sphinx_segments(self):
        """The Sphinx model's phone segmentation of the training utterances in the frames
        of the store end to end (:func:`vqalign.align.corpus_start.segments`), each
        utterance's audio read again by the workers (:func:`sphinx_task`, one task per
        EM task); kept in ``em/sphinx-segments.npz`` for a resumed run. None when no
        utterance could be segmented."""
        from vqalign.pipeline.records import file_digest

        path = self.dir / "sphinx-segments.npz"
        rec = self.records.chunks("em").get("sphinx-segments")
        if rec is not None and path.is_file() and file_digest(path) == rec.get("digest"):
            with np.load(path) as z:
                return list(zip(z["a"].tolist(), z["b"].tolist(), z["sym"].tolist()))
        a = self.aligner
        settings = {"unit": a.unit, "hop": a.hop_, "dither": a.dither_}
        n = {u: hi - lo for u, (lo, hi) in ((u, self.store.span(u)) for u, _ in self.items)}
        # (the utterances 4th, as _map counts them in every task)
        tasks = [(settings, None, None, [(u, *self.sources.get(u, (None, None)), units, n[u])
                                         for u, units in t]) for t in self.tasks]
        t0 = time.perf_counter()
        found = self._map(sphinx_task, tasks, lambda x, y: x + y, "em Sphinx segmentation")
        segs, off, missed = [], 0, 0
        for (u, _), got in zip(self.items, found):
            if got is None:
                missed += 1
            else:
                segs.extend((s + off, e + off, sym) for s, e, sym in got)
            off += n[u]
        if not segs:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_write(path, "wb", overwrite=True) as fh:
                np.savez(fh, a=np.array([x[0] for x in segs], np.int64),
                         b=np.array([x[1] for x in segs], np.int64),
                         sym=np.array([x[2] for x in segs]))
        except OSError as exc:
            raise write_error(path, exc) from None
        self._finish("sphinx-segments", path, file_digest(path), missed=missed)
        self.say(f"em sphinx segmentation: the Sphinx model's segmentation of "
                 f"{len(self.items) - missed} utterances ({missed} not segmented: they start "
                 f"as silence), {time.perf_counter() - t0:.1f} s", self.quiet)
        return segs

    def _broad_start(self, model, X, energy, offs):
        """The broad-class flat start (:func:`vqalign.align.recipe.broad_class_start`, on a
        corpus under MULTI_START_S seconds: a few MB of features, read whole): each
        frame's best first Gaussian is its first candidate in the selection folder."""
        quiet = recipe.quiet_masks(energy, offs, recipe.QUIET_QUANTILE)
        recipe.broad_class_start(model, X, offs, quiet, self._best(X.shape[0]))

    def _train(self, start, model):
        from vqalign.hmm.monitor import ConvergenceMonitor

        flags = model._flags()
        if int(model.n_iter) < 1:
            raise VQAlignError("n_iter must be at least 1 for corpus training")
        refresh = flags["m"] or flags["v"]
        n_iter = int(model.n_iter)
        # the last recorded step of this start, if any
        done = 0
        for i in range(n_iter, 0, -1):
            if self._recorded(f"{start}-{i}") is not None:
                done = i
                break
        if done == 0:
            prev_path, prev_digest = self._save(f"{start}-0", model, None)
            self._finish(f"{start}-0", prev_path, prev_digest)
        else:
            prev_path, prev_digest, rec = self._recorded(f"{start}-{done}")
            if rec.get("stop"):
                return self._result(start, prev_path, prev_digest, rec)
        monitor = ConvergenceMonitor(tol=model.tol, n_iter=n_iter,
                                     name=f"tied-mixture EM, {start} flat start (streamed "
                                          "from the feature store)",
                                     relative=True, min_iter=model.min_iter, drop_tol=1e-2)
        if done:
            monitor.resume(Aligner.load(prev_path).history_)
        for it in range(done, n_iter):
            gst = refresh and (it + 1) % model.gaussians_every == 0 and it + 1 < n_iter
            t_it = time.perf_counter()
            tasks = [(str(self.store.path), str(prev_path), prev_digest, t,
                      str(self.sel_dir), k, gst) for k, t in enumerate(self.tasks)]
            stats = self._map(estep_task, tasks, operator.add, f"em {start} {it + 1}/{n_iter}")
            if stats.n_utterances == 0:
                raise AlignmentError(
                    "forward-backward found no path through any utterance; check that the "
                    "audio and transcripts belong together: "
                    + (stats.failures[0][1] if stats.failures else ""))
            model = Aligner.load(prev_path).model_
            model.mstep(stats, gaussians=gst)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                monitor.report(stats.loglik, stats.n_frames, counts=stats.counts.sum(0),
                               level=1, n_codes=model.gmm_.n_components,
                               failed_utterances=len(stats.failures))
            stop = monitor.reached_tol or it + 1 == n_iter
            prev_path, prev_digest = self._save(f"{start}-{it + 1}", model, monitor.history)
            per_frame = stats.loglik / max(stats.n_frames, 1)
            rec = {"log_likelihood": per_frame, "stop": bool(stop),
                   "failures": [list(f) for f in stats.failures],
                   "seconds": round(time.perf_counter() - t_it, 3), "gaussians": bool(gst)}
            self._finish(f"{start}-{it + 1}", prev_path, prev_digest, **rec)
            self.say(f"em {start} {it + 1}/{n_iter}: log-likelihood/frame {per_frame:.4f}, "
                     f"{stats.n_frames} frames, {rec['seconds']:.1f} s, failed "
                     f"{len(stats.failures)}", self.quiet)
            if stop:
                break
        return self._result(start, prev_path, prev_digest,
                            self.records.chunks("em")[f"{start}-{it + 1}"])

    def _result(self, start, path, digest, rec):
        n = int(Path(path).stem.rsplit("-", 1)[1])
        return path, digest, float(rec["log_likelihood"]), start, n, rec.get("failures", [])


__all__ = ["StreamingEM", "plan_tasks", "init_task", "estep_task", "TASK_FRAMES"]
