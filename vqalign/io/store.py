"""A feature store for corpora larger than memory: one float32 matrix on disk plus an index.

Layout of a store directory ``OUT``::

    OUT/settings.json   feature settings (and the vqalign version that wrote them)
    OUT/shards/*.npz    one file per utterance (frames, n_samples, input warnings), atomic
    OUT/features.f32    all utterances' frames, row after row: (N, D) float32, C order
    OUT/extra.f32       per-frame side columns of the recipe (N, E) float32, if any
                        (the aligner recipe keeps each frame's raw c0 loudness here)
    OUT/index.json      [{"id", "path", "start", "n_frames", "duration"}, ...] in row order
    OUT/failed.json     files that could not be processed, with the reason

:func:`write_store` computes the shards in this process or on a scheduler it is given
(local worker processes or Dask, :mod:`vqalign.pipeline.schedulers`; workers read the
audio and write the shards through shared paths), skips shards that already exist (so an
interrupted run resumes where it stopped), then streams the shards into
``features.f32`` without holding the corpus in memory.
:func:`open_store` maps it back as a read-only ``np.memmap``.

Two recipes: ``"mfcc"`` (the settings below, for ``vqalign features``) and
``"aligner"`` (the aligner's own 39-D MFCC + deltas with per-utterance CMVN at its
hop, and the raw c0 as a side column: what ``align-corpus`` trains on).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vqalign._validation import check_hop, check_positive_int, check_sample_rate
from vqalign.exceptions import ParameterError, StoreWriteError, VQAlignError
from vqalign.features.frontend import (
    DC_OFFSET,
    DELTA_WIDTH,
    FEATURE_SR,
    N_MELS,
    N_MFCC,
    WIN_S,
    condition_audio,
    features,
)
from vqalign.io.atomic import atomic_write

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
_FEATURE_KEYS = ("recipe", "sr", "n_mfcc", "n_mels", "convention", "win_length", "hop_length",
                 "n_fft", "fmin", "fmax", "deltas", "delta_width", "cmvn", "dim", "extra",
                 "dc_offset")
RECIPES = ("mfcc", "aligner")
# stores written before these keys existed
_DEFAULTS = {"recipe": "mfcc", "extra": [], "dc_offset": None}


def write_error(path, exc: OSError) -> StoreWriteError:
    """A clear error for an OSError raised while writing ``path``."""
    what = exc.strerror or str(exc)
    return StoreWriteError(
        f"cannot write {str(exc.filename or path)!r}: {what}; free disk space or fix the "
        "folder's permissions, then re-run the same command: finished files are kept and "
        "the run resumes")


# --------------------------------------------------------------------------- settings

def aligner_settings(hop_length: float) -> dict:
    """Settings of the ``"aligner"`` recipe at ``hop_length`` seconds (see module doc)."""
    from vqalign import __version__

    check_hop(hop_length)
    # dc_offset: the aligner's input conditioning (a DC offset above this share of the RMS
    # is removed before the features, as Aligner does)
    return {
        "recipe": "aligner", "sr": FEATURE_SR, "n_mfcc": N_MFCC, "n_mels": N_MELS,
        "convention": "librosa", "win_length": WIN_S, "hop_length": float(hop_length),
        "n_fft": None, "fmin": None, "fmax": None, "deltas": 2, "delta_width": DELTA_WIDTH,
        "cmvn": "utterance", "dim": 3 * N_MFCC,
        "extra": ["energy"], "dtype": "float32", "dc_offset": DC_OFFSET,
        "vqalign_version": __version__,
    }


def describe_settings(settings: dict) -> str:
    """A short human description: ``aligner recipe, 39-D at 5 ms hop, 16000 Hz``."""
    st = dict(_DEFAULTS, **settings)
    return (f"{st['recipe']} recipe, {st.get('dim')}-D at {1000 * float(st['hop_length']):g} ms "
            f"hop, {st.get('n_mfcc')} MFCC, deltas {st.get('deltas')}, cmvn {st.get('cmvn')}, "
            f"{st.get('sr')} Hz")


def store_settings(*, sr=FEATURE_SR, n_mfcc=13, n_mels=None, convention="librosa",
                   win_length=0.025, hop_length=0.010, n_fft=None, fmin=None, fmax=None,
                   deltas=0, delta_width=2, cmvn=None, recipe="mfcc") -> dict:
    """The normalized settings dict a store records (and compares on resume).

    ``recipe="aligner"`` ignores every other argument but ``hop_length``
    (:func:`aligner_settings`).
    """
    from vqalign import __version__

    if recipe not in RECIPES:
        raise ParameterError(f"recipe={recipe!r} is not one of {RECIPES}")
    if recipe == "aligner":
        return aligner_settings(hop_length)
    sr = check_sample_rate(sr)
    n_mfcc = check_positive_int(n_mfcc, "n_mfcc")
    deltas = check_positive_int(deltas, "deltas", minimum=0)
    delta_width = check_positive_int(delta_width, "delta_width")
    if cmvn not in (None, "utterance"):
        if isinstance(cmvn, str):
            if not cmvn.isdigit():
                raise ParameterError(f"cmvn={cmvn!r}: use None, 'utterance' or a sliding "
                                     "window in frames (e.g. 300)")
            cmvn = int(cmvn)
        cmvn = check_positive_int(cmvn, "cmvn window (frames)")
    if convention not in ("librosa", "kaldi"):
        raise ParameterError(f"convention={convention!r} is not one of ('librosa', 'kaldi')")
    return {
        "sr": sr, "n_mfcc": n_mfcc, "n_mels": n_mels, "convention": convention,
        "win_length": win_length, "hop_length": hop_length, "n_fft": n_fft,
        "fmin": fmin, "fmax": fmax, "deltas": deltas, "delta_width": delta_width,
        "cmvn": cmvn, "dim": n_mfcc * (deltas + 1), "dtype": "float32",
        "vqalign_version": __version__, "recipe": "mfcc", "extra": [],
    }


def aligner_front_end():
    """The aligner's own feature function ``f(y16, hop_s, delta_width) -> (X, energy)``
    (:func:`vqalign.features.frontend.features`)."""
    return features


def compute_features(y, settings: dict) -> np.ndarray:
    """Features of one waveform with a store's settings: (n_frames, dim + len(extra)) float32.

    The ``"aligner"`` recipe is the aligner's own front end (``vqalign.align``), so
    a model trained from the store meets exactly the features it aligns with; its
    last column is the raw c0 (loudness) the aligner seeds silence from.
    """
    if settings.get("recipe", "mfcc") == "aligner":
        if y.size < int(0.025 * settings["sr"]):
            raise ParameterError(f"audio has {y.size / settings['sr'] * 1000:.1f} ms, shorter "
                                 "than one 25 ms analysis window")
        X, energy = aligner_front_end()(y, settings["hop_length"], settings["delta_width"])
        out = np.empty((X.shape[0], X.shape[1] + 1), np.float32)
        out[:, :-1] = X
        out[:, -1] = energy
        return out
    from vqalign.features import cmvn, delta, mfcc

    X = mfcc(y, settings["sr"], n_mfcc=settings["n_mfcc"], n_mels=settings["n_mels"],
             win_length=settings["win_length"], hop_length=settings["hop_length"],
             n_fft=settings["n_fft"], fmin=settings["fmin"], fmax=settings["fmax"],
             convention=settings["convention"], n_threads=1)
    if settings["deltas"]:
        X = delta(X, order=settings["deltas"], width=settings["delta_width"])
    if settings["cmvn"] is not None:
        X = cmvn(X, window=None if settings["cmvn"] == "utterance" else settings["cmvn"])
    return np.ascontiguousarray(X, dtype=np.float32)


# --------------------------------------------------------------------------- sources

def list_sources(sources) -> list[tuple[str, str]]:
    """``[(utterance_id, path)]`` from a folder, a text file of paths, or a list of paths.

    A folder is searched recursively for *.wav, *.flac and *.ogg. A list file
    holds one path per line (blank lines and lines starting with # skipped;
    relative paths are taken from the list file's folder). Ids are the paths
    relative to the folder (or the files' common folder) without extension.
    """
    if isinstance(sources, (str, os.PathLike)):
        src = Path(sources)
        if src.is_dir():
            paths = sorted(p for p in src.rglob("*")
                           if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            if not paths:
                raise ParameterError(f"no audio files (*.wav, *.flac, *.ogg) found under "
                                     f"{str(src)!r}; check the folder or pass a list file")
            root = src
        elif src.is_file():
            if src.suffix.lower() in AUDIO_EXTENSIONS:
                paths, root = [src], src.parent
            else:
                try:
                    lines = src.read_text(encoding="utf-8").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    raise ParameterError(f"cannot read the list file {str(src)!r} ({exc}); "
                                         "pass a folder or a UTF-8 text file with one audio "
                                         "path per line") from None
                paths = []
                for line in lines:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        p = Path(line)
                        paths.append(p if p.is_absolute() else src.parent / p)
                if not paths:
                    raise ParameterError(f"the list file {str(src)!r} names no audio files")
                root = None
        else:
            raise ParameterError(f"{str(src)!r} does not exist; pass a folder of audio files "
                                 "or a text file listing one audio path per line")
    else:
        paths = [Path(p) for p in sources]
        if not paths:
            raise ParameterError("no audio files given")
        root = None
    if root is None:
        try:
            root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
        except ValueError:
            root = Path("/")
        paths = [p.resolve() for p in paths]
        root = root.resolve()
    out, seen = [], {}
    for p in paths:
        try:
            rel = p.relative_to(root)
        except ValueError:
            rel = Path(p.name)
        uid = rel.with_suffix("").as_posix()
        if uid in seen:
            if seen[uid] == os.path.abspath(p):
                continue            # the same file listed twice
            uid = rel.as_posix()    # a.wav and a.flac side by side: keep the extension
        ap = os.path.abspath(p)       # the index stays valid from any working directory
        if uid in seen and seen[uid] == ap:
            continue
        seen[uid] = ap
        out.append((uid, ap))
    return out


def _shard_name(uid: str) -> str:
    return hashlib.sha1(uid.encode("utf-8")).hexdigest()[:20] + ".npz"


def _check_speech(y, settings, path):
    """The aligner recipe refuses audio it cannot align (silent), as the aligner does."""
    from vqalign._validation import check_audio
    y = check_audio(y, settings["sr"], allow_silent=True, name=f"audio {path!r}")
    if not np.any(y):
        raise ParameterError(f"audio {path!r} is silent (all {y.size} samples are zero; "
                             f"{y.size / settings['sr']:.2f} s); there is no speech to align")
    peak = float(np.max(np.abs(y)))
    if peak < 1e-4:
        raise ParameterError(f"audio {path!r} is practically silent (peak amplitude "
                             f"{peak:.1e}); there is no speech to align — check the file or "
                             "its gain")
    return y


def _compute_one(uid, path, shard, settings):
    """One file -> one shard file: ``(uid, n_frames, None)``, ``(uid, None, reason)``, or
    ``(uid, None, ("write", path, message))`` when the shard could not be written."""
    try:
        from vqalign.io.audio import load_audio
        y, _ = load_audio(path, settings["sr"])
        notes = []
        if settings.get("recipe") == "aligner":
            y = _check_speech(y, settings, path)
            if settings.get("dc_offset") is not None:
                y, notes = condition_audio(y, settings["sr"], Path(path).name)
        X = compute_features(y, settings)
    except VQAlignError as exc:
        return uid, None, str(exc)
    except Exception as exc:  # an unexpected failure in one file must not stop the corpus
        return uid, None, f"{type(exc).__name__}: {exc}"
    try:
        with atomic_write(shard, "wb") as fh:
            np.savez(fh, X=X, n_samples=np.int64(y.size), warnings=np.array(json.dumps(notes)))
    except OSError as exc:
        return uid, None, ("write", str(exc.filename or shard), exc.strerror or str(exc))
    return uid, int(X.shape[0]), None


def _compute_shards(task):
    """Worker task (top level, so it pickles under spawn and Dask): a chunk of files."""
    items, settings = task
    return [_compute_one(uid, path, shard, settings) for uid, path, shard in items]


# --------------------------------------------------------------------------- store

class FeatureStore:
    """A consolidated store opened read-only.

    Attributes
    ----------
    X : np.memmap (N, D) float32, read-only
        Every utterance's frames, in index order.
    utterances : list of dict
        ``{"id", "path", "start", "n_frames"}`` per utterance.
    settings : dict
        The feature settings the store was written with.

    ``store[utt_id]`` (or ``store[i]``) is that utterance's (n_frames, D) view;
    ``len(store)`` counts utterances; iterating yields utterance ids (like a
    dict), ``store.items()`` yields ``(id, features)`` pairs.
    After :func:`write_store`, ``n_computed``, ``n_reused`` and ``failed``
    (list of ``(path, reason)``) describe that run.
    """

    def __init__(self, path):
        self.path = Path(path)
        for name in ("settings.json", "index.json", "features.f32"):
            if not (self.path / name).is_file():
                raise ParameterError(
                    f"{str(self.path)!r} is not a complete feature store ({name} is missing); "
                    "write one with `vqalign features AUDIO OUT` (re-running it finishes an "
                    "interrupted store)")
        self.settings = json.loads((self.path / "settings.json").read_text())
        self.utterances = json.loads((self.path / "index.json").read_text())
        self.dim = int(self.settings["dim"])
        n = sum(int(u["n_frames"]) for u in self.utterances)
        size = (self.path / "features.f32").stat().st_size
        if size != n * self.dim * 4:
            raise ParameterError(
                f"{str(self.path / 'features.f32')!r} has {size} bytes but index.json "
                f"describes {n} frames x {self.dim} features ({n * self.dim * 4} bytes); the "
                "store is incomplete or was modified: re-run `vqalign features` on it")
        self.X = np.memmap(self.path / "features.f32", dtype=np.float32, mode="r",
                           shape=(n, self.dim)) if n else np.zeros((0, self.dim), np.float32)
        self.extra_names = list(self.settings.get("extra", []))
        self.extra = None
        if self.extra_names:
            e = len(self.extra_names)
            ep = self.path / "extra.f32"
            esize = ep.stat().st_size if ep.is_file() else -1
            if esize != n * e * 4:
                raise ParameterError(
                    f"{str(ep)!r} is missing or has {esize} bytes but index.json describes "
                    f"{n} frames x {e} side columns ({n * e * 4} bytes); the store is "
                    "incomplete: re-run `vqalign features` (or align-corpus) on it")
            self.extra = np.memmap(ep, dtype=np.float32, mode="r", shape=(n, e))
        self._pos = {u["id"]: i for i, u in enumerate(self.utterances)}
        self.n_computed = 0
        self.n_reused = 0
        self.failed: list[tuple[str, str]] = []

    @property
    def n_frames(self) -> int:
        return int(self.X.shape[0])

    def __len__(self) -> int:
        return len(self.utterances)

    def __contains__(self, uid) -> bool:
        return uid in self._pos

    def __iter__(self) -> Iterator[str]:
        return (u["id"] for u in self.utterances)

    def keys(self) -> list[str]:
        return [u["id"] for u in self.utterances]

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for u in self.utterances:
            yield u["id"], self.X[u["start"]:u["start"] + u["n_frames"]]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            u = self.utterances[key]
        else:
            if key not in self._pos:
                raise KeyError(f"no utterance {key!r} in the store at {str(self.path)!r} "
                               f"({len(self)} utterances, e.g. {self.keys()[:3]})")
            u = self.utterances[self._pos[key]]
        return self.X[u["start"]:u["start"] + u["n_frames"]]

    def span(self, key) -> tuple[int, int]:
        """``(start, stop)`` rows of an utterance (id or position) in ``X``."""
        u = self.utterances[key if isinstance(key, (int, np.integer)) else self._pos[key]]
        return int(u["start"]), int(u["start"]) + int(u["n_frames"])

    def read_rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Copies of rows ``start:stop`` of the features and of the side columns, read
        from the files (not through the memory map, so reading a corpus chunk by chunk
        keeps no pages of it resident in this process)."""
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= self.n_frames:
            raise ParameterError(f"rows {start}:{stop} are outside the store's "
                                 f"{self.n_frames} frames")
        n = stop - start
        X = np.fromfile(self.path / "features.f32", dtype=np.float32, count=n * self.dim,
                        offset=4 * start * self.dim).reshape(n, self.dim)
        side = None
        if self.extra_names:
            e = len(self.extra_names)
            side = np.fromfile(self.path / "extra.f32", dtype=np.float32, count=n * e,
                               offset=4 * start * e).reshape(n, e)
        return X, side

    def release(self) -> None:
        """Drop the memory-mapped pages read so far from this process's resident set."""
        from vqalign.lbg import release_pages
        release_pages(self.X)
        if self.extra is not None:
            release_pages(self.extra)

    def side(self, key, name: str = "energy") -> np.ndarray:
        """An utterance's side column ``name`` (e.g. the aligner recipe's ``energy``)."""
        if name not in self.extra_names:
            raise ParameterError(f"the store at {str(self.path)!r} has no side column "
                                 f"{name!r} (it has {self.extra_names}); it was written with "
                                 f"{describe_settings(self.settings)}")
        a, b = self.span(key)
        return self.extra[a:b, self.extra_names.index(name)]

    def warnings(self, key) -> list:
        """What the input conditioning reported about an utterance's audio (a DC offset
        removed, clipping) when its features were computed."""
        u = self.utterances[key if isinstance(key, (int, np.integer)) else self._pos[key]]
        return list(u.get("warnings", []))

    def duration(self, key) -> float:
        """Seconds of audio of an utterance (frames x hop when the index predates it)."""
        u = self.utterances[key if isinstance(key, (int, np.integer)) else self._pos[key]]
        if "duration" in u:
            return float(u["duration"])
        return int(u["n_frames"]) * float(self.settings["hop_length"])

    def __repr__(self) -> str:
        return (f"FeatureStore({str(self.path)!r}: {len(self)} utterances, "
                f"{self.n_frames} frames x {self.dim} features)")


def open_store(path) -> FeatureStore:
    """Open a store written by :func:`write_store` (features memory-mapped read-only)."""
    return FeatureStore(path)


def settings_differ(old: dict, new: dict) -> list[str]:
    """``["n_mfcc: store has 13, asked 20", ...]`` for every feature setting that differs."""
    old, new = dict(_DEFAULTS, **old), dict(_DEFAULTS, **new)
    return [f"{k}: store has {old.get(k)!r}, asked {new.get(k)!r}"
            for k in _FEATURE_KEYS if old.get(k) != new.get(k)]


class _InProcess:
    """The tasks of :func:`write_store` run one after another in this process."""

    n_workers = 1

    @staticmethod
    def map(fn, tasks, *, on_result=None):
        out = []
        for i, t in enumerate(tasks):
            out.append(fn(t))
            if on_result is not None:
                on_result(i, out[-1])
        return out


def write_store(sources, out_dir, *, sr=FEATURE_SR, n_mfcc=13, n_mels=None, convention="librosa",
                win_length=0.025, hop_length=0.010, n_fft=None, fmin=None, fmax=None,
                deltas=0, delta_width=2, cmvn=None, jobs=1, resume=True,
                progress=None, recipe="mfcc", scheduler=None, chunk_size=None,
                ids=None) -> FeatureStore:
    """Compute features for a corpus into ``out_dir`` and return the opened store.

    Parameters
    ----------
    sources : folder, list file, or iterable of paths (see :func:`list_sources`)
    out_dir : path
        Created if needed. If it already holds a store or shards written with
        other feature settings, :class:`ParameterError` is raised (stores never
        mix settings): pick another folder or delete it.
    sr, n_mfcc, n_mels, convention, win_length, hop_length, n_fft, fmin, fmax
        Passed to :func:`vqalign.features.mfcc` (audio is resampled to ``sr``).
    deltas : int
        Append delta orders up to this (0: none, 2: deltas and delta-deltas).
    cmvn : None, "utterance" or int
        Per-utterance mean/variance normalization, or a sliding window in frames.
    jobs : int
        Without ``scheduler`` only 1 (the shards are computed in this process); worker
        processes come with a scheduler, e.g. ``get_scheduler("local", jobs)`` of
        :mod:`vqalign.pipeline.schedulers` (the store knows no scheduler of its own).
    resume : bool
        Reuse shards already in ``out_dir/shards`` (default); False recomputes all.
    progress : bool or None
        tqdm progress bar on stderr (default: when stderr is a terminal).
    recipe : {"mfcc", "aligner"}
        ``"aligner"``: the aligner's front end at ``hop_length`` (other feature
        arguments are ignored), see the module docstring.
    scheduler : object with ``map(fn, tasks, on_result=...)`` and ``n_workers``, optional
        Where the shards are computed, e.g. a :mod:`vqalign.pipeline.schedulers` local or
        Dask scheduler (default: this process). Dask workers must see ``out_dir`` and the
        audio at the same paths.
    chunk_size : int, optional
        Files per task (default: about 8 tasks per worker, at most 64 files each).
    ids : list of str, optional
        Utterance ids, one per source (default: paths relative to their folder).

    Returns
    -------
    FeatureStore with ``n_computed``, ``n_reused`` and ``failed`` set.

    Raises
    ------
    ParameterError
        Bad settings, settings mismatch with ``out_dir``, or every file failed
        (the message lists why).
    StoreWriteError
        A shard, features.f32 or index.json could not be written (disk full,
        permissions): the message names the path; what was finished is kept and
        the next run resumes.
    """
    settings = store_settings(sr=sr, n_mfcc=n_mfcc, n_mels=n_mels, convention=convention,
                              win_length=win_length, hop_length=hop_length, n_fft=n_fft,
                              fmin=fmin, fmax=fmax, deltas=deltas, delta_width=delta_width,
                              cmvn=cmvn, recipe=recipe)
    jobs = check_positive_int(jobs, "jobs")
    if scheduler is None and jobs > 1:
        raise ParameterError(f"jobs={jobs} needs a scheduler: pass scheduler="
                             "vqalign.pipeline.schedulers.get_scheduler('local', jobs) (or "
                             "'dask'), or jobs=1 to compute in this process")
    # fail fast on settings mfcc() would refuse, before any worker starts
    compute_features(np.sin(np.arange(settings["sr"], dtype=np.float32)), settings)

    items = list_sources(sources)
    if ids is not None:
        ids = [str(x) for x in ids]
        if len(ids) != len(items) or len(set(ids)) != len(ids):
            raise ParameterError(f"ids: {len(ids)} distinct ids expected for {len(items)} "
                                 "files, one per file")
        items = [(u, p) for u, (_, p) in zip(ids, items)]
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output {str(out)!r} exists and is not a folder")
    shard_dir = out / "shards"
    settings_path = out / "settings.json"
    if settings_path.is_file():
        try:
            old = json.loads(settings_path.read_text())
        except (OSError, ValueError):
            old = {}
        diff = settings_differ(old, settings)
        if diff:
            raise ParameterError(
                f"{str(out)!r} already holds features computed with other settings ("
                + "; ".join(diff) + f"): the store has {describe_settings(old)}, this run "
                f"asks {describe_settings(settings)}; write to another folder, or delete it "
                "to start over")
    elif shard_dir.is_dir() and any(shard_dir.glob("*.np[yz]")):
        raise ParameterError(f"{str(shard_dir)!r} holds shards but {str(settings_path)!r} is "
                             "missing, so their settings are unknown; delete the folder or "
                             "write to another one")
    try:
        shard_dir.mkdir(parents=True, exist_ok=True)
        if not settings_path.is_file():
            with atomic_write(settings_path) as fh:
                json.dump(settings, fh, indent=1)
    except OSError as exc:
        raise write_error(settings_path, exc) from None

    todo, done = [], {}
    for uid, path in items:
        shard = shard_dir / _shard_name(uid)
        if resume and shard.is_file():
            done[uid] = None            # frame count read at consolidation
        else:
            todo.append((uid, path, str(shard)))
    n_reused = len(done)
    failed: dict[str, str] = {}
    if progress is None:
        progress = sys.stderr.isatty()
    if scheduler is None:
        scheduler = _InProcess()
    n_workers = max(1, scheduler.n_workers)
    if chunk_size is None:
        chunk_size = max(1, min(64, -(-len(todo) // (8 * n_workers))))
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    tasks = [(todo[i:i + chunk_size], settings) for i in range(0, len(todo), chunk_size)]
    write_errors = []
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc="features", unit="utt", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def on_result(_, results):
        for uid, n, err in results:
            if isinstance(err, tuple):
                write_errors.append(err)
            else:
                _record(uid, n, err, done, failed)
        bar.update(len(results))

    try:
        scheduler.map(_compute_shards, tasks, on_result=on_result)
    finally:
        bar.close()
    if write_errors:
        _, path, msg = write_errors[0]
        raise write_error(path, OSError(0, msg, path))

    paths = dict(items)
    fail_list = [(paths[u], failed[u]) for u, _ in items if u in failed]
    try:
        with atomic_write(out / "failed.json") as fh:
            json.dump([{"path": p, "reason": r} for p, r in fail_list], fh, indent=1)
    except OSError as exc:
        raise write_error(out / "failed.json", exc) from None
    ok = [(u, p) for u, p in items if u in done]
    if not ok:
        lines = "\n".join(f"  {p}: {r}" for p, r in fail_list[:20])
        raise ParameterError(f"all {len(items)} files failed; nothing was stored:\n{lines}")
    if not _up_to_date(out, ok, computed=len(todo) > 0):
        _consolidate(out, ok, settings)
    store = FeatureStore(out)
    store.n_computed = len(todo) - len(fail_list)
    store.n_reused = n_reused
    store.failed = fail_list
    return store


def _record(uid, n, err, done, failed):
    if err is None:
        done[uid] = n
    else:
        failed[uid] = err


def _up_to_date(out: Path, ok, computed: bool) -> bool:
    """True when nothing was computed and index.json already lists exactly these files."""
    if computed or not (out / "index.json").is_file() or not (out / "features.f32").is_file():
        return False
    try:
        index = json.loads((out / "index.json").read_text())
        FeatureStore(out)
    except (OSError, ValueError, VQAlignError):
        return False
    return [(u["id"], u["path"]) for u in index] == [tuple(x) for x in ok]


def _read_shard(shard: Path, path: str, width: int):
    """(frames, n_samples, warnings about the input) of one shard."""
    try:
        with np.load(shard) as z:
            X, n_samples = z["X"], int(z["n_samples"])
            notes = json.loads(str(z["warnings"])) if "warnings" in z.files else []
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ParameterError(f"shard {str(shard)!r} for {path!r} is unreadable ({exc}); "
                             "delete it and re-run to recompute it") from None
    if X.ndim != 2 or X.shape[1] != width or X.dtype != np.float32:
        raise ParameterError(f"shard {str(shard)!r} has shape {X.shape} {X.dtype}, "
                             f"expected (n, {width}) float32; delete it and re-run")
    return X, n_samples, notes


def _consolidate(out: Path, ok, settings: dict) -> None:
    """Stream shards into features.f32 (+ extra.f32) (atomic), then index.json (atomic).

    index.json is written last: until it names the new rows, a reader sees the old
    store or none (its size check refuses a half-replaced one).
    """
    dim = settings["dim"]
    n_extra = len(settings.get("extra", []))
    index, start = [], 0
    target = out / "features.f32"
    try:
        with contextlib.ExitStack() as stack:
            fh = stack.enter_context(atomic_write(target, "wb"))
            eh = None
            if n_extra:
                target = out / "extra.f32"
                eh = stack.enter_context(atomic_write(target, "wb"))
                target = out / "features.f32"
            for uid, path in ok:
                X, n_samples, notes = _read_shard(out / "shards" / _shard_name(uid), path,
                                                  dim + n_extra)
                fh.write(np.ascontiguousarray(X[:, :dim]).tobytes())
                if eh is not None:
                    eh.write(np.ascontiguousarray(X[:, dim:]).tobytes())
                entry = {"id": uid, "path": path, "start": start, "n_frames": int(X.shape[0]),
                         "duration": n_samples / settings["sr"]}
                if notes:
                    entry["warnings"] = notes
                index.append(entry)
                start += int(X.shape[0])
        target = out / "index.json"
        with atomic_write(target) as fh:
            json.dump(index, fh)
    except OSError as exc:
        raise write_error(target, exc) from None


__all__ = ["FeatureStore", "open_store", "write_store", "list_sources", "store_settings",
           "aligner_settings", "compute_features", "settings_differ", "describe_settings",
           "StoreWriteError", "AUDIO_EXTENSIONS", "RECIPES"]
