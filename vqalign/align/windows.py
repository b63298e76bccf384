"""Long recordings in time linear in their length: the self-training schedule, its
progress by stage and its resume state.

An unfitted Aligner trains its model on the recording it aligns. From a flat start the
model does not yet know where the words are, so the first forward-backward step must keep
every state that the words could occupy: a corridor around the chain's diagonal. A
corridor that is a share of the recording makes each frame's work grow with the length
(the first E-step of a 70-minute file took most of its 20 minutes). Here:

1. **anchor** -- the flat start and EM on the recording's frames with its long pauses
   shortened to ``PAUSE_KEEP_S`` (energy VAD): the chain's diagonal then follows the
   speech, not the clock, and the corridor stays ``ANCHOR_CORRIDOR_S`` seconds of speech
   wide whatever the length. Once the model knows the phones, the beam keeps a few states
   per frame.
2. **anchor path** -- the beam Viterbi of that model over every frame.
3. **windows** -- the path cut at pauses into windows of about ``CHUNK_S`` seconds; EM
   rounds on all windows at once (one model, statistics pooled over the windows, the
   windows shared among the cores), Gaussians re-estimated too.
4. **decode** -- the beam Viterbi of the final model over every frame.

Every stage reports its wall time (``progress``) and its work can be saved: the started
model and its Gaussian selection before the first EM step, every EM step, and the sums of
the windows stage's first E-step (every window's whole band: most of that stage's time)
per group of about ``GROUP_S`` seconds of windows. With a work folder, an interrupted run
started again on the same audio, transcript and settings continues from the last saved
piece and gives the same alignment. The folder of a
recording is named by the digest of its audio, its units and the settings; it is removed
when the alignment is done.

This module is policy on the engine (:mod:`vqalign.hmm`): it receives the functions that
train, decode and re-train (``train``, ``decode``, ``retrain``), never the Aligner.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import pickle
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vqalign.exceptions import ParameterError
from vqalign.io.atomic import atomic_write

#: half-width of the anchor pass's flat-start corridor, in seconds of shortened audio
#: (speech and pauses of at most PAUSE_KEEP_S). The diagonal of the shortened frames
#: follows the speech rate; see ``bench long`` for how far the words stray from it
#: (devdata synth 35 and 180 min: 12 s; TIMIT joined, 35 min: 3 s). Its first E-step,
#: the one piece of work a killed run cannot keep, costs in proportion: +-30 s instead
#: of +-60 s gave the same words tier on those three files and halved the anchor stage
#: (180 min: 20.6 s, 82 s in all)
ANCHOR_CORRIDOR_S = 30.0
#: the corridor is doubled when the anchor's path strays further than this share of it
CORRIDOR_EDGE = 0.75
#: pauses (energy VAD) longer than this are shortened to it for the anchor pass
PAUSE_KEEP_S = 0.3
#: the VAD's frame step (vqalign.align.aligner.speech_frames)
VAD_HOP_S = 0.010
#: bumped whenever a change makes saved steps of an older version unusable
RESUME_VERSION = 1
#: peak resident memory of ``vqalign align`` on a long self-trained recording: about
#: MEMORY_BASE_MB plus MEMORY_MB_PER_MIN per minute of audio. Measured with ``vqalign bench
#: long`` (devdata synth, the child's own ru_maxrss; the file read block by block,
#: vqalign.features.blockwise): 456 MB at 35 min, 1248 MB at 180 min, i.e. about 270 MB
#: plus 5.5 MB per minute (the features, the Gaussian selections, the alignment's
#: output); the base is rounded up to cover a first run that compiles the numba kernels
#: (a 7-minute file peaked at 645 MB then). With the English second opinions
#: (vqalign.align.longref: the Sphinx model and the prior loaded, the flat model's
#: alignment kept while the seeded model trains): 520 MB at 35 min, 1461 MB at 180 min,
#: about 6.5 MB per minute; 5.8 with the base keeps both under the estimate (1494 MB at
#: 180 min)
MEMORY_MB_PER_MIN = 5.8
MEMORY_BASE_MB = 450.0
#: the same for samples given as an array (the whole-signal front end, its dithered copy
#: and log-mel; measured before the file was read block by block: 1764 MB at 180 min
#: with the samples themselves)
MEMORY_MB_PER_MIN_ARRAY = 7.5
#: share of the memory the system reports available that a recording may plan to use
MEMORY_SHARE = 0.9


# --------------------------------------------------------------------------- frames
def shortened_frames(speech: np.ndarray, n_frames: int, hop_s: float,
                     keep_s: float = PAUSE_KEEP_S) -> np.ndarray:
    """Indices of the feature frames kept when every pause is shortened to ``keep_s``.

    Parameters
    ----------
    speech : ndarray of bool, shape (n_vad,)
        Energy-VAD speech flags of 10 ms frames (all False: no clear silence).
    n_frames : int
        Feature frames of the recording.
    hop_s : float
        Feature frame step (s).
    keep_s : float
        A run of non-speech frames longer than this keeps ``keep_s / 2`` at each end.

    Returns
    -------
    kept : ndarray of int64, shape (n_kept,)
        Ascending frame indices (all frames when the VAD found no speech).
    """
    if n_frames <= 0:
        return np.zeros(0, np.int64)
    speech = np.asarray(speech, bool)
    if speech.size == 0 or not speech.any():
        return np.arange(n_frames, dtype=np.int64)
    j = np.minimum(np.floor(np.arange(n_frames) * (hop_s / VAD_HOP_S) + 1e-6).astype(np.int64),
                   speech.size - 1)
    on = speech[j]
    half = max(1, int(round(keep_s / 2 / hop_s)))
    keep = on.copy()
    # distance (frames) to the nearest speech frame on either side, without a Python loop
    idx = np.arange(n_frames)
    last_on = np.where(on, idx, -1)
    np.maximum.accumulate(last_on, out=last_on)
    next_on = np.where(on, idx, n_frames * 4)
    next_on = np.minimum.accumulate(next_on[::-1])[::-1]
    d_prev = np.where(last_on >= 0, idx - last_on, n_frames * 4)
    d_next = next_on - idx
    keep |= (d_prev <= half) | (d_next <= half)
    return np.flatnonzero(keep).astype(np.int64)


def corridor_fraction(n_kept: int, n_states: int, hop_s: float,
                      corridor_s: float = ANCHOR_CORRIDOR_S) -> float:
    """The anchor corridor's half-width as the engine's ``diagonal`` (a share of the
    chain's states): ``corridor_s`` seconds of the ``n_kept`` shortened frames."""
    seconds = max(n_kept * hop_s, 1e-9)
    return float(min(1.0, corridor_s / seconds))


def stray_seconds(path: np.ndarray, hop_s: float) -> float:
    """How far (s) a state path strays from its chain's diagonal ``t * S / T`` at most
    (S: one more than the path's last state, the chain's end).

    Parameters
    ----------
    path : ndarray of int, shape (T,)
        Local state index of every frame (non-decreasing).
    hop_s : float
        Frame step of the path (s).
    """
    T = path.size
    if T == 0:
        return 0.0
    S = int(path[-1]) + 1
    diag = np.arange(T) * (S / T)
    return float(np.max(np.abs(path - diag)) / (S / T) * hop_s)


def available_mb() -> float | None:
    """MB of memory the system reports available (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def memory_check(duration_s: float, budget_mb: float | None = None, *,
                 per_min: float | None = None) -> None:
    """Raise a ParameterError when a recording of ``duration_s`` seconds would need more
    memory (``MEMORY_BASE_MB + per_min`` MB per minute, by default
    ``MEMORY_MB_PER_MIN``) than ``budget_mb``: by default env VQALIGN_MEMORY_MB, else
    ``MEMORY_SHARE`` of the memory available now (no check when neither is known). The
    message names the longest recording that fits."""
    per_min = MEMORY_MB_PER_MIN if per_min is None else float(per_min)
    if budget_mb is None:
        env = os.environ.get("VQALIGN_MEMORY_MB")
        if env:
            budget_mb = float(env)
        else:
            avail = available_mb()
            if avail is None:
                return
            budget_mb = MEMORY_SHARE * avail
    need = MEMORY_BASE_MB + per_min * duration_s / 60.0
    if need > budget_mb:
        longest = max(0.0, (budget_mb - MEMORY_BASE_MB) / per_min)
        raise ParameterError(
            f"the recording lasts {duration_s / 60:.1f} min and would need about "
            f"{need:.0f} MB, more than the memory budget of {budget_mb:.0f} MB; recordings "
            f"of up to {longest:.0f} min fit it: split the audio and its transcript, or "
            "set the budget (MB) with the environment variable VQALIGN_MEMORY_MB")


# --------------------------------------------------------------------------- resume
def resume_root() -> Path | None:
    """Folder under which recordings keep their resume state: env VQALIGN_RESUME_DIR
    ("" or "0": none), else ``$XDG_CACHE_HOME/vqalign/long`` (``~/.cache/vqalign/long``)."""
    env = os.environ.get("VQALIGN_RESUME_DIR")
    if env is not None:
        return None if env.strip() in ("", "0") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vqalign" / "long"


def recording_key(y16: np.ndarray | None, X: np.ndarray | None, units, settings: dict,
                  source: str | None = None) -> str:
    """Digest of a recording's audio (or features, or ``source``: a digest of the file it
    is read from), units and settings."""
    h = hashlib.blake2b(digest_size=16)
    if source is not None:
        h.update(f"file:{source}".encode())
    else:
        data = y16 if y16 is not None else X
        h.update(np.ascontiguousarray(data).reshape(-1).view(np.uint8))  # no copy
    h.update(json.dumps([[list(w) for w in units], settings, RESUME_VERSION],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()


class WorkFolder:
    """Atomically written steps of one recording's training (``None`` root: nothing kept).

    ``save(name, obj)`` pickles ``obj`` to ``root/key/name.pkl`` (the file appears whole or
    not at all); ``load(name)`` returns it or None; ``clear()`` removes the folder."""

    def __init__(self, root: Path | None, key: str):
        self.path = None if root is None else Path(root) / key
        self.key = key

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def save(self, name: str, obj) -> None:
        if self.path is None:
            return
        with atomic_write(self.path / f"{name}.pkl", "wb") as fh:
            pickle.dump({"key": self.key, "obj": obj}, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, name: str):
        if self.path is None:
            return None
        f = self.path / f"{name}.pkl"
        if not f.is_file():
            return None
        try:
            with open(f, "rb") as fh:
                rec = pickle.load(fh)  # noqa: S301 - our own file, keyed by digest
        except Exception:  # noqa: BLE001 - a damaged step is recomputed
            return None
        return rec["obj"] if isinstance(rec, dict) and rec.get("key") == self.key else None

    def cached(self, name: str, compute):
        """``compute()``, or its result saved as ``name`` by an earlier run."""
        got = self.load(name)
        if got is None:
            got = compute()
            self.save(name, got)
        return got

    def clear(self) -> None:
        if self.path is not None and self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)


def work_folder(estimator, y16, units, X=None, source=None) -> WorkFolder:
    """The WorkFolder of a recording (``resume_root()`` / its key): ``estimator``'s public
    parameters and settings (``vars``, without private names and ``n_jobs``) are part of
    the key; ``source``: the digest of the file the recording is read from
    (:func:`file_digest`), in place of its samples."""
    settings = {k: repr(v) for k, v in vars(estimator).items()
                if not k.startswith("_") and k not in ("n_jobs", "model_", "history_")}
    return WorkFolder(resume_root(), recording_key(y16, X, units, settings, source))


def file_digest(path, chunk: int = 1 << 23) -> str:
    """blake2b digest (hex) of a file's bytes, read in chunks of ``chunk`` bytes."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def window_trainer(estimator, quantile: float):
    """The ``train`` function of :func:`self_train_long` for an unfitted Aligner-like
    ``estimator``: its ``train_model`` (the single-utterance recipe, one codebook of
    ``min(n_codes, max(8, frames // 12))`` codes) on a list of windows; a coarse model has
    one state per unit at a hop ``COARSE`` times longer (on a shallow copy).

    Parameters
    ----------
    estimator : object
        With ``train_model``, ``n_codes``, ``hop_``, ``states_per_unit`` and
        ``random_state``.
    quantile : float
        Share of the quietest frames the silence is seeded from.

    Returns
    -------
    callable
        ``train(items, diagonal, on_step, coarse, fit=None, seed=None) -> model``
        (``fit``, ``seed``: the recipe's, :func:`vqalign.align.recipe.train`).
    """
    from vqalign._validation import check_random_state  # noqa: PLC0415
    coarse_est = copy.copy(estimator)
    coarse_est.states_per_unit, coarse_est.hop_ = 1, estimator.hop_ * COARSE

    def train(items, diagonal, on_step, coarse, fit=None, seed=None):
        a = coarse_est if coarse else estimator
        n = sum(it.X.shape[0] for it in items)
        return a.train_model(items, check_random_state(estimator.random_state), corpus=False,
                             k=min(a.n_codes, max(8, n // 12)), quantile=quantile,
                             diagonal=diagonal, on_step=on_step, fit=fit, seed=seed)[0]
    train.estimator = estimator
    return train


def hooks(estimator, quantile: float | None = None):
    """What an unfitted Aligner-like ``estimator`` hands the long-recording passes:
    ``(train, work_folder)``, :func:`window_trainer` (None without ``quantile``) and
    ``work_folder(y16, units, X=None)`` (:func:`work_folder` of ``estimator``)."""
    train = None if quantile is None else window_trainer(estimator, quantile)
    return train, functools.partial(work_folder, estimator)


def _bare(model):
    """A copy of ``model`` without its frame selections (the big per-frame arrays)."""
    keep = {k: v for k, v in model.__dict__.items()
            if k not in ("selection_", "_last_selection")}
    m = object.__new__(type(model))
    m.__dict__.update(keep)
    return m


# --------------------------------------------------------------------------- progress
def stderr_progress(stage: str, seconds: float | None, detail: str = "") -> None:
    """Print one progress line to stderr (env VQALIGN_PROGRESS=0 silences it)."""
    if os.environ.get("VQALIGN_PROGRESS", "1") == "0":
        return
    what = "started" if seconds is None else f"done in {seconds:.1f} s"
    print(f"vqalign long recording: {stage} {what}{'; ' + detail if detail else ''}",
          file=sys.stderr, flush=True)


@dataclass
class LongResult:
    """What :func:`self_train_long` hands back."""

    model: object
    history: object
    sel: object
    path: np.ndarray
    batch: object
    beam: float
    cells: int
    rounds: int
    n_windows: int
    stages: dict = field(default_factory=dict)
    resumed: list = field(default_factory=list)
    kept_share: float = 1.0
    corridor_s: float = ANCHOR_CORRIDOR_S
    stray_s: float = 0.0
    windows: list = field(default_factory=list)


# --------------------------------------------------------------------------- windows
def cut_windows(word_of_frame: np.ndarray, n_words: int, target: int,
                min_pause: int = 1) -> list:
    """Windows of about ``target`` frames cut in the middle of pauses of a path.

    Parameters
    ----------
    word_of_frame : ndarray of int, shape (T,)
        Word index of every frame on a path (-1: silence), non-decreasing where >= 0.
    n_words : int
        Words of the transcript.
    target : int
        Wanted window length (frames); a cut is made at the first pause at least this far
        from the previous cut and at least ``target // 2`` from the end.
    min_pause : int
        Pauses shorter than this (frames) are not cut in.

    Returns
    -------
    windows : list of (first frame, end frame, first word, end word)
        Contiguous frame ranges covering 0..T and word ranges covering 0..n_words, every
        window with at least one word.
    """
    w = np.asarray(word_of_frame, np.int64)
    T = w.size
    sil = w < 0
    edges = np.flatnonzero(np.diff(sil.astype(np.int8)) != 0) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [T]])
    mids = [(a + b) // 2 for a, b in zip(starts, ends)
            if sil[a] and a > 0 and b < T and b - a >= min_pause]
    # words seen before each frame (the path is monotonic in its words)
    seen = np.maximum.accumulate(np.where(sil, -1, w)) + 1 if T else np.zeros(0, np.int64)
    cuts, bounds = [0], [0]
    for c in mids:
        if c - cuts[-1] >= target and T - c >= target // 2:
            wb = int(seen[c])
            if bounds[-1] < wb < n_words:
                cuts.append(int(c))
                bounds.append(wb)
    cuts.append(T)
    bounds.append(int(n_words))
    return [(cuts[i], cuts[i + 1], bounds[i], bounds[i + 1]) for i in range(len(cuts) - 1)]


# --------------------------------------------------------------------------- schedule
#: the anchor pass keeps one frame in COARSE (a 30 ms hop at 10 ms) and one state per unit
COARSE = 3
#: window length (s) of the flat-start EM
WINDOW_S = 20.0


#: the flat start's first E-step of the windows stage (no corridor: every window's whole
#: band, most of the stage's time) is summed over groups of windows of about this many
#: seconds of audio, each group's sums saved: a run stopped inside it loses one group
GROUP_S = 300.0


def group_bounds(lengths, hop_s: float, group_s: float | None = None) -> list:
    """Utterance indices that cut consecutive windows into groups of about ``group_s``
    seconds (a group ends with the window that reaches the next multiple of it).

    Parameters
    ----------
    lengths : sequence of int, length U
        Frames of every window.
    hop_s : float
        Frame step (s).
    group_s : float, optional
        Wanted seconds of a group (default ``GROUP_S``).

    Returns
    -------
    bounds : list of int
        Ascending, from 0 to U: group g holds windows ``bounds[g]:bounds[g + 1]``.
    """
    group_s = GROUP_S if group_s is None else float(group_s)
    end_s = np.cumsum(np.asarray(lengths, np.int64)) * hop_s
    if end_s.size == 0:
        return [0]
    cuts = np.searchsorted(end_s, np.arange(group_s, end_s[-1], group_s)) + 1
    return sorted({0, int(end_s.size), *(int(c) for c in cuts if 0 < c < end_s.size)})


def _batch_rows(batch, a: int, b: int):
    """The ChainBatch of utterances ``a:b`` of ``batch`` (views of its state tables)."""
    s0, s1 = int(batch.state_off[a]), int(batch.state_off[b])
    return replace(batch, emit_ids=batch.emit_ids[s0:s1], skippable=batch.skippable[s0:s1],
                   unit_index=batch.unit_index[s0:s1],
                   state_off=batch.state_off[a:b + 1] - s0, units=batch.units[a:b])


def grouped_estep(model, bounds, work, name: str, kept: list | None = None):
    """An E-step function for ``model.fit(..., estep=...)`` whose first step (the flat
    start's) is the sum of ``model.estep`` over groups of utterances, each group's sums
    saved in ``work`` as ``name``-e0-g<group> and taken from there when a run before had
    them; later steps are ``model.estep`` itself.

    Parameters
    ----------
    model : vqalign.hmm.TiedMixtureHMM
        The model being fitted (its ``history_`` counts the steps done).
    bounds : list of int
        Group bounds over the utterances (:func:`group_bounds`).
    work : WorkFolder
    name : str
        The stage's name.
    kept : list, optional
        Gets the number of groups taken from ``work``.

    Returns
    -------
    callable
        With :meth:`vqalign.hmm.TiedMixtureHMM.estep`'s signature.
    """

    def estep(X, frame_off, batch, sel, *, gaussian_stats=False, names=None):
        if len(model.history_["log_likelihood"]) or len(bounds) <= 2:
            return model.estep(X, frame_off, batch, sel, gaussian_stats=gaussian_stats,
                               names=names)
        total = None
        for g in range(len(bounds) - 1):
            a, b = bounds[g], bounds[g + 1]
            st = work.load(f"{name}-e0-g{g}")
            if st is None:
                f0, f1 = int(frame_off[a]), int(frame_off[b])
                st = model.estep(X[f0:f1], frame_off[a:b + 1] - f0, _batch_rows(batch, a, b),
                                 sel.rows(f0, f1), gaussian_stats=gaussian_stats,
                                 names=None if names is None else names[a:b])
                st.status = st.cells = None   # per utterance of this group only
                work.save(f"{name}-e0-g{g}", st)
            elif kept is not None:
                kept.append(g)
            total = st if total is None else total + st
        return total
    return estep


def _resumable_fit(work, name, first_fit, data, names, bounds=None):
    """The flat start and EM of one stage, resumable.

    ``first_fit(fit) -> model`` runs the flat start and hands its EM to
    ``fit(model, data, names, selection, on_step)`` (:func:`vqalign.align.recipe.train`),
    which saves the started model and its Gaussian selection (``name``-init,
    ``name``-selection) before the first step, the model after every step
    (``name``-step) and, with ``bounds`` (:func:`group_bounds`), the first step's sums
    per group of utterances (:func:`grouped_estep`). A run that finds them continues the
    EM on ``data`` / ``names`` from the last of them; the result is saved as ``name``.

    Returns
    -------
    (model, selection or None, resumed note or None)
    """
    done = work.load(name)
    if done is not None:   # its start's selection serves while the Gaussians stay
        fixed = not set(done["model"].update) & set("mv")
        return done["model"], work.load(name + "-selection") if fixed else None, name
    kept = []

    def fit(model, data, names, sel, on_step=None, resume=None):
        def step(it, m, s):
            work.save(name + "-step", {"model": _bare(m), "history": m.history_})
            if on_step is not None:
                on_step(it, m, s)

        if resume is None and work.load(name + "-init") is None:
            work.save(name + "-selection", sel)
            work.save(name + "-init", {"model": _bare(model)})
        estep = None if bounds is None else grouped_estep(model, bounds, work, name, kept)
        model.fit(data, names=names, selection=sel, on_step=step, resume=resume, estep=estep)

    state = work.load(name + "-step")
    from_step = state is not None
    state = state if from_step else work.load(name + "-init")
    sel = None if state is None else work.load(name + "-selection")
    if sel is not None:
        model = state["model"]
        fit(model, data, names, sel, resume=state["history"] if from_step else None)
        note = (f"{name} from EM step {len(state['history']['log_likelihood'])}" if from_step
                else f"{name} from its start")
        if kept:
            note += f", {len(kept)} of {len(bounds) - 1} groups of its first E-step"
    else:
        model = first_fit(fit)
        note = None
    work.save(name, {"model": _bare(model)})
    return model, model._last_selection, note


def self_train_long(p, *, hop_s: float, speech: np.ndarray, train, select, decode,
                    retrain, rounds: int, work: WorkFolder | None = None,
                    progress=stderr_progress, windows: list | None = None, seed=None,
                    prefix: str = "", mute=()) -> LongResult:
    """Self-train one model on a long prepared recording and decode it.

    Stages: **anchor** (flat start and EM of a one-state-per-unit model on every
    ``COARSE``-th frame, pauses shortened, inside a corridor of ``ANCHOR_CORRIDOR_S``
    seconds: a fixed number of states per frame), **anchor path** (its Viterbi, cut in
    pauses into windows of about ``WINDOW_S`` s), **windows** (flat start and EM of the
    full model on all windows at once: one model, pooled statistics, the windows shared
    among the cores, no corridor), **path** (beam Viterbi over every frame), **windows EM**
    (``rounds`` re-training rounds with Gaussians on the path's windows) and **decode**.

    Parameters
    ----------
    p : prepared recording
        ``X`` (T, 39) float32 features, ``energy`` (T,), ``tokens`` (``units``: words of
        units), ``duration``, ``name``; copies of it (frames subsets) go to ``train``.
    hop_s : float
        Feature frame step (s).
    speech : ndarray of bool, shape (n_vad,)
        Energy-VAD speech flags of 10 ms frames (:func:`shortened_frames`).
    train : callable
        ``train(items, diagonal, on_step, coarse) -> model``: flat start and EM on a list
        of prepared items (``coarse``: one state per unit, a hop ``COARSE`` times longer),
        inside a diagonal corridor (0: none).
    select : callable
        ``select(model, X, candidates) -> Selection`` of frames ``X``.
    decode : callable
        ``decode(model, selection, X, coarse) -> (path (T,), batch, beam, cells)``: the
        beam Viterbi of the whole recording (its frames ``X``).
    retrain : callable
        ``retrain(model, path, batch, selection, on_step, resume) -> (selection,
        n_windows)``: EM rounds on the path's windows.
    rounds : int
        Re-training rounds.
    work : WorkFolder, optional
        Where the steps are saved and found again.
    progress : callable
        ``progress(stage, seconds or None, detail)``.
    windows : list, optional
        The windows (:func:`cut_windows`) to train on: no anchor pass.
    seed : (str, callable), optional
        The windows stage's start (``recipe.train``'s ``seed``) instead of a flat start.
    prefix : str
        Put before every stage's name and saved step (a second model in the same work
        folder).
    mute : sequence of (int, int)
        Frame spans left out (:mod:`vqalign.align.gaps`), cut from the windows' edges.

    Returns
    -------
    LongResult
    """
    work = work or WorkFolder(None, "")
    stages, resumed = {}, []
    T = p.X.shape[0]
    units = p.tokens.units
    n_words = len(units)

    def stage(name, t0, detail=""):
        name = prefix + name
        stages[name] = round(time.perf_counter() - t0, 3)
        progress(name, stages[name], detail)

    def note(n):
        if n:
            resumed.append(n)

    # 1. anchor: a coarse model on every COARSE-th frame of the shortened recording
    t0 = time.perf_counter()
    kept = shortened_frames(speech, T, hop_s)
    n_units = sum(len(w) for w in units)
    got = work.load("anchor-path")  # a resumed run needs only the anchor's windows
    if windows is not None:
        wins, stray, corridor = windows, 0.0, 0.0
    elif got is not None:
        wins, stray, corridor = got["windows"], got["stray"], got["corridor"]
        resumed.append("anchor path")
        stage("anchor path", t0, f"{len(wins)} windows, kept from the run before")
    else:
        factor = COARSE if kept.size // COARSE >= 2 * n_units + 2 else 1
        idx = kept[::factor]
        pc = replace(p, X=np.ascontiguousarray(p.X[idx]), energy=p.energy[idx], y16=None)
        progress("anchor", None, f"{T * hop_s / 60:.1f} min, pauses shortened to "
                 f"{kept.size * hop_s / 60:.1f} min, {factor * hop_s * 1000:.0f} ms hop, "
                 f"corridor +-{ANCHOR_CORRIDOR_S:.0f} s")
        # the corridor is doubled while the anchor's path comes near its edge (a recording
        # whose speech rate wanders further from its mean than ANCHOR_CORRIDOR_S)
        wins, stray, corridor = _anchor_windows(
            work, pc, idx, factor, n_units, n_words, T, hop_s, units, p.name, train, select,
            decode, progress, stage, note, t0)
        work.save("anchor-path", {"windows": wins, "stray": stray, "corridor": corridor})
        pc = None

    # 3. flat start and EM of the full model on all windows at once
    t0 = time.perf_counter()
    tok = p.tokens
    # frames left out cut from the windows' edges unless under half would be left (120 s
    # of silence, half at each window's edge, drew words 120 s early: tests/test_gaps.py)
    cut = [(*(t if 2 * (t[1] - t[0]) >= b - a else (a, b)), wa, wb)
           for a, b, wa, wb in wins for t in [trimmed(a, b, mute)]]
    items = [replace(p, X=p.X[a:b], energy=p.energy[a:b], y16=None,
                     tokens=replace(tok, units=units[wa:wb], words=tok.words[wa:wb]),
                     duration=(b - a) * hop_s, name=f"{a * hop_s:.1f}-{b * hop_s:.1f} s")
             for a, b, wa, wb in cut]
    data = [(it.X, it.tokens.units) for it in items]
    names = [it.name for it in items]

    # (the windows cover every frame in order: end to end p.X, no copy; else a copy)
    bounds = group_bounds([b - a for a, b, _, _ in cut], hop_s)
    kw = {} if seed is None else {"seed": seed}
    model, wsel, n = _resumable_fit(
        work, prefix + "windows", lambda fit: train(items, 0.0, None, False, fit=fit, **kw),
        data, names, bounds)
    note(n)
    wsel = wsel if [c[:2] for c in cut] == [w[:2] for w in wins] else None  # (not all)
    history = model.history_
    stage("windows", t0, f"{len(wins)} windows, {len(history['log_likelihood'])} EM steps, "
          f"{len(getattr(model, 'failures_', []) or [])} without a path")

    # 4. its path over every frame (kept for a run resumed inside the re-training; not
    # needed once the first round is done)
    t0 = time.perf_counter()
    got = work.load(prefix + "path") if rounds else None
    if got is not None:
        path, batch, beam, cells = got["path"], got["batch"], got["beam"], got["cells"]
        resumed.append(prefix + "path")
    elif rounds and work.load(prefix + "windows-em-0") is not None:
        path = batch = None
    else:
        # the windows' own selection (their Gaussians do not move), else a new one
        sel = wsel if wsel is not None else select(model, p.X, False)
        path, batch, beam, cells = decode(model, sel, p.X, False)
        stage("path", t0, f"{cells / max(T, 1):.0f} states per frame")
        if rounds:
            work.save(prefix + "path", {"path": path, "batch": batch, "beam": beam,
                                        "cells": cells})

    # 5. re-training rounds (Gaussians too) on windows of that path, and decoding
    n_windows = len(wins)
    sel = wsel = items = data = None  # each round makes its own selection
    done_rounds = 0
    for r in range(rounds):
        t0 = time.perf_counter()
        name = f"{prefix}windows-em-{r}"
        got = work.load(name)
        if got is not None:
            model, n_windows, start = got["model"], got["n_windows"], got["start_model"]
            resumed.append(name)
            history = model.history_
            sel = _selection_after(model, p.X, select(start, p.X, True), history)
        else:
            start = copy.deepcopy(_bare(model))   # the EM moves its Gaussians in place
            step = work.load(name + "-step")
            resume = None
            if step is not None:
                model, resume, start = step["model"], step["history"], step["start_model"]
                resumed.append(f"{name} from EM step {len(resume['log_likelihood'])}")
            sel0 = select(start, p.X, True)
            sel_in = sel0 if resume is None else _selection_after(model, p.X, sel0, resume)

            def save_step(it, m, s, _name=name, _start=start):
                work.save(_name + "-step", {"model": _bare(m), "history": m.history_,
                                            "start_model": _start})

            model.selection_ = model._last_selection = None  # the windows stage's
            _, n_windows = retrain(model, path, batch, sel_in, save_step, resume)
            history = model.history_
            sel = model._last_selection
            work.save(name, {"model": _bare(model), "n_windows": n_windows,
                             "start_model": start})
        stage(f"windows EM {r + 1}", t0, f"{n_windows} windows, "
              f"{len(history['log_likelihood'])} EM steps")
        t0 = time.perf_counter()
        path, batch, beam, cells = decode(model, sel, p.X, False)
        stage("decode", t0, f"{cells / max(T, 1):.0f} states per frame")
        done_rounds += 1
    return LongResult(model, history, sel, path, batch, beam, cells, done_rounds, n_windows,
                      stages, resumed, kept.size / max(T, 1), corridor, stray, wins)



def _anchor_windows(work, pc, idx, factor, n_units, n_words, T, hop_s, units, name0, train,
                    select, decode, progress, stage, note, t0):
    """The anchor stage: its resumable fit (the corridor doubled while its path strays
    near the edge), its path and the windows cut in that path's pauses; (windows, stray
    seconds, corridor seconds)."""

    corridor = ANCHOR_CORRIDOR_S
    while True:
        diag = corridor_fraction(idx.size * factor, n_units, hop_s, corridor)
        name = "anchor" if corridor == ANCHOR_CORRIDOR_S else f"anchor-{corridor:g}s"
        anchor, sel, n = _resumable_fit(
            work, name, lambda fit, d=diag: train([pc], d, None, factor > 1, fit=fit),
            [(pc.X, units)], [name0 or "0"])
        note(n)
        stage(name, t0, f"{len(anchor.history_['log_likelihood'])} EM steps")
        t0 = time.perf_counter()
        sel = sel if sel is not None else select(anchor, pc.X, False)
        path_c, batch_c, _, cells_c = decode(anchor, sel, pc.X, factor > 1)
        sel = None
        stray = stray_seconds(path_c, factor * hop_s)
        if stray <= CORRIDOR_EDGE * corridor or diag >= 1.0:
            break
        progress(name, None, f"its path strays {stray:.0f} s from the diagonal: the "
                 f"corridor is widened to +-{2 * corridor:.0f} s")
        corridor *= 2
        t0 = time.perf_counter()
    wc = batch_c.unit_index[path_c]
    word_of_unit = np.array([w for w, _ in batch_c.units[0]], np.int64)
    wc = np.where(wc >= 0, word_of_unit[np.maximum(wc, 0)], -1)
    wo = np.full(T, -1, np.int64)
    for o in range(factor):
        wo[np.minimum(idx + o, T - 1)] = wc
    wins = cut_windows(wo, n_words, int(round(WINDOW_S / hop_s)))
    stage("anchor path", t0, f"{len(wins)} windows of about {WINDOW_S:.0f} s; the path "
          f"strays up to {stray:.0f} s from the diagonal")
    return wins, stray, corridor

def trimmed(a: int, b: int, spans) -> tuple[int, int]:
    """The frames ``a:b`` without the frame ``spans`` at their start or end."""
    for f0, f1 in spans:
        if f0 <= a < f1:
            a = min(f1, b)
        if f0 < b <= f1:
            b = max(f0, a)
    return a, b


def _selection_after(model, X, sel0, history):
    """The Gaussian selection an uninterrupted window EM held after the steps of
    ``history``: ``sel0`` (its start's candidates) re-scored once the Gaussians moved."""
    n = len(history["log_likelihood"])
    every = max(1, int(getattr(model, "gaussians_every", 1)))
    moved = "m" in model.update or "v" in model.update
    if not moved or all((it + 1) % every != 0 or it + 1 >= model.n_iter for it in range(n)):
        return sel0
    return model.rescore(X, sel0)
