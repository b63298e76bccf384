"""A feature store for corpora larger than memory: one float32 matrix on disk plus an index.

Layout of a store directory ``OUT``::

    OUT/settings.json   feature settings (and the vqalign version that wrote them)
    OUT/shards/*.npy    one file per utterance, written atomically as it is computed
    OUT/features.f32    all utterances' frames, row after row: (N, D) float32, C order
    OUT/index.json      [{"id", "path", "start", "n_frames"}, ...] in row order
    OUT/failed.json     files that could not be processed, with the reason

:func:`write_store` computes the shards in worker processes, skips shards that
already exist (so an interrupted run resumes where it stopped), then streams the
shards into ``features.f32`` without holding the corpus in memory.
:func:`open_store` maps it back as a read-only ``np.memmap``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from vqalign._validation import check_positive_int, check_sample_rate
from vqalign.exceptions import ParameterError, VQAlignError
from vqalign.io.atomic import atomic_write

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
_FEATURE_KEYS = ("sr", "n_mfcc", "n_mels", "convention", "win_length", "hop_length", "n_fft",
                 "fmin", "fmax", "deltas", "delta_width", "cmvn", "dim")


# --------------------------------------------------------------------------- settings

def store_settings(*, sr=16000, n_mfcc=13, n_mels=None, convention="librosa",
                   win_length=0.025, hop_length=0.010, n_fft=None, fmin=None, fmax=None,
                   deltas=0, delta_width=2, cmvn=None) -> dict:
    """The normalized settings dict a store records (and compares on resume)."""
    from vqalign import __version__

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
        "vqalign_version": __version__,
    }


def compute_features(y, settings: dict) -> np.ndarray:
    """Features of one waveform with a store's settings: (n_frames, settings["dim"]) float32."""
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
    return hashlib.sha1(uid.encode("utf-8")).hexdigest()[:20] + ".npy"


def _compute_shard(task):
    """Worker (top level, so it pickles under spawn): one file -> one shard file."""
    uid, path, shard, settings = task
    try:
        from vqalign.io.audio import load_audio
        y, _ = load_audio(path, settings["sr"])
        X = compute_features(y, settings)
        with atomic_write(shard, "wb") as fh:
            np.save(fh, X)
        return uid, int(X.shape[0]), None
    except VQAlignError as exc:
        return uid, None, str(exc)
    except Exception as exc:  # an unexpected failure in one file must not stop the corpus
        return uid, None, f"{type(exc).__name__}: {exc}"


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
                           shape=(n, self.dim))
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

    def __repr__(self) -> str:
        return (f"FeatureStore({str(self.path)!r}: {len(self)} utterances, "
                f"{self.n_frames} frames x {self.dim} features)")


def open_store(path) -> FeatureStore:
    """Open a store written by :func:`write_store` (features memory-mapped read-only)."""
    return FeatureStore(path)


def _settings_differ(old: dict, new: dict) -> list[str]:
    return [f"{k}: store has {old.get(k)!r}, asked {new.get(k)!r}"
            for k in _FEATURE_KEYS if old.get(k) != new.get(k)]


def write_store(sources, out_dir, *, sr=16000, n_mfcc=13, n_mels=None, convention="librosa",
                win_length=0.025, hop_length=0.010, n_fft=None, fmin=None, fmax=None,
                deltas=0, delta_width=2, cmvn=None, jobs=2, resume=True,
                progress=None) -> FeatureStore:
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
        Worker processes (1 computes in this process).
    resume : bool
        Reuse shards already in ``out_dir/shards`` (default); False recomputes all.
    progress : bool or None
        tqdm progress bar on stderr (default: when stderr is a terminal).

    Returns
    -------
    FeatureStore with ``n_computed``, ``n_reused`` and ``failed`` set.

    Raises
    ------
    ParameterError
        Bad settings, settings mismatch with ``out_dir``, or every file failed
        (the message lists why).
    """
    settings = store_settings(sr=sr, n_mfcc=n_mfcc, n_mels=n_mels, convention=convention,
                              win_length=win_length, hop_length=hop_length, n_fft=n_fft,
                              fmin=fmin, fmax=fmax, deltas=deltas, delta_width=delta_width,
                              cmvn=cmvn)
    jobs = check_positive_int(jobs, "jobs")
    # fail fast on settings mfcc() would refuse, before any worker starts
    compute_features(np.sin(np.arange(settings["sr"], dtype=np.float32)), settings)

    items = list_sources(sources)
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
        diff = _settings_differ(old, settings)
        if diff:
            raise ParameterError(
                f"{str(out)!r} already holds features computed with other settings ("
                + "; ".join(diff) + "); write to another folder, or delete it to start over")
    elif shard_dir.is_dir() and any(shard_dir.glob("*.npy")):
        raise ParameterError(f"{str(shard_dir)!r} holds shards but {str(settings_path)!r} is "
                             "missing, so their settings are unknown; delete the folder or "
                             "write to another one")
    shard_dir.mkdir(parents=True, exist_ok=True)
    if not settings_path.is_file():
        with atomic_write(settings_path) as fh:
            json.dump(settings, fh, indent=1)

    todo, done = [], {}
    for uid, path in items:
        shard = shard_dir / _shard_name(uid)
        if resume and shard.is_file():
            done[uid] = None            # frame count read at consolidation
        else:
            todo.append((uid, path, str(shard), settings))
    n_reused = len(done)
    failed: dict[str, str] = {}
    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc="features", unit="file", disable=not progress,
               file=sys.stderr)
    try:
        if jobs == 1 or len(todo) <= 1:
            results: Iterable = map(_compute_shard, todo)
            for uid, n, err in results:
                _record(uid, n, err, done, failed)
                bar.update(1)
        else:
            import multiprocessing as mp
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                     mp_context=mp.get_context("spawn")) as ex:
                futs = [ex.submit(_compute_shard, t) for t in todo]
                for f in as_completed(futs):
                    uid, n, err = f.result()
                    _record(uid, n, err, done, failed)
                    bar.update(1)
    finally:
        bar.close()

    paths = dict(items)
    fail_list = [(paths[u], failed[u]) for u, _ in items if u in failed]
    with atomic_write(out / "failed.json") as fh:
        json.dump([{"path": p, "reason": r} for p, r in fail_list], fh, indent=1)
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


def _consolidate(out: Path, ok, settings: dict) -> None:
    """Stream shards into features.f32 (atomic), then write index.json (atomic)."""
    dim = settings["dim"]
    index, start = [], 0
    with atomic_write(out / "features.f32", "wb") as fh:
        for uid, path in ok:
            shard = out / "shards" / _shard_name(uid)
            try:
                X = np.load(shard, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise ParameterError(f"shard {str(shard)!r} for {path!r} is unreadable ({exc}); "
                                     "delete it and re-run to recompute it") from None
            if X.ndim != 2 or X.shape[1] != dim or X.dtype != np.float32:
                raise ParameterError(f"shard {str(shard)!r} has shape {X.shape} {X.dtype}, "
                                     f"expected (n, {dim}) float32; delete it and re-run")
            fh.write(np.ascontiguousarray(X).tobytes())
            index.append({"id": uid, "path": path, "start": start, "n_frames": int(X.shape[0])})
            start += int(X.shape[0])
    with atomic_write(out / "index.json") as fh:
        json.dump(index, fh)


__all__ = ["FeatureStore", "open_store", "write_store", "list_sources", "store_settings",
           "compute_features", "AUDIO_EXTENSIONS"]
